// `txlog dump --stats` (after `pg_waldump --stats=record`): counts and data bytes per stream and per
// decoded record kind over the records a dump selects, instead of the records.

import Foundation
import LogStore

struct DumpStats {
    struct KindKey: Hashable, Comparable {
        var stream: UInt16
        var kind: String
        static func < (a: KindKey, b: KindKey) -> Bool { (a.stream, a.kind) < (b.stream, b.kind) }
    }

    var streams = StreamTally()
    var kinds: [KindKey: StreamTally.Row] = [:]
    var records = 0, bytes = 0, undecodable = 0
    var first = LSN.null, last = LSN.null
    /// Why the dump stopped before the end (damage, an I/O error): the counts cover the records before it.
    var stoppedBy: String?
    /// The log's base (at the last read), and how many selected records lie below it: kept for archiving.
    var base = LSN.null, belowBase = 0

    mutating func add(_ r: LogRecord, _ d: DecodedRecord, belowBase isBelow: Bool) {
        if isBelow { belowBase += 1 }
        streams.add(r.stream, records: 1, bytes: r.data.count)
        kinds[KindKey(stream: r.stream, kind: d.kind ?? "raw"), default: StreamTally.Row()].records += 1
        kinds[KindKey(stream: r.stream, kind: d.kind ?? "raw"), default: StreamTally.Row()].bytes += r.data.count
        records += 1
        bytes += r.data.count
        if d.note != nil { undecodable += 1 }
        if first == .null { first = r.lsn }
        last = r.lsn
    }

    private func percent(_ n: Int, of total: Int) -> Double { total == 0 ? 0 : rounded(Double(n) * 100 / Double(total), 2) }

    func json(_ names: [UInt16: String]) -> [String: Any] {
        [
            "records": records, "dataBytes": bytes, "undecodable": undecodable, "complete": stoppedBy == nil,
            "firstLSN": records == 0 ? NSNull() : first.description, "lastLSN": records == 0 ? NSNull() : last.description,
            "baseLSN": base.description, "belowBase": belowBase,
            "streams": streams.json(names, blocks: false),
            "kinds": kinds.keys.sorted().map { k -> [String: Any] in
                let row = kinds[k]!
                return [
                    "streamID": Int(k.stream), "streamName": names[k.stream] ?? NSNull(), "kind": k.kind, "records": row.records,
                    "dataBytes": row.bytes, "recordsPercent": percent(row.records, of: records), "dataBytesPercent": percent(row.bytes, of: bytes),
                ]
            },
        ].merging(stoppedBy.map { ["error": $0] } ?? [:]) { a, _ in a }
    }

    /// Prints the counts as JSON or as text.
    func printCounts(json: Bool, _ names: [UInt16: String]) {
        if json { printJSON(self.json(names)) } else { printText(names) }
    }

    func printText(_ names: [UInt16: String]) {
        print("records      \(records), \(formatBytes(UInt64(bytes))) of record data" + (records == 0 ? "" : ", from \(first) to \(last)")
            + (undecodable > 0 ? "; \(undecodable) not decodable (shown raw by dump)" : ""))
        if belowBase > 0 { print("below base   \(belowBase) records below the log's base \(base), kept for archiving (an archive tail keeps them)") }
        print("streams")
        streams.printText(names, blocks: false)
        print("kinds")
        for k in kinds.keys.sorted() {
            let row = kinds[k]!
            print("  \(k.stream)\t\(streamLabel(k.stream, names))\t\(k.kind)\t\(row.records) records"
                + String(format: " (%.2f%%)", percent(row.records, of: records)) + "\t\(formatBytes(UInt64(row.bytes)))"
                + String(format: " (%.2f%%)", percent(row.bytes, of: bytes)))
        }
        if stoppedBy != nil { print("partial      the dump stopped at the error below: these counts cover the records before it") }
    }
}
