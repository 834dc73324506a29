import ArgumentParser
import Foundation
import LogStore
import TransactionManager
import TransactionalKV

extension RecordType: ExpressibleByArgument {
    public init?(argument: String) {
        switch argument {
        case "data": self = .data
        case "restart": self = .restart
        default: return nil
        }
    }
    public static var allValueStrings: [String] { ["data", "restart"] }
}

struct DumpCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dump", abstract: "Print records with their previous and undo-next links (read-only).",
        discussion: """
            Prints records in LSN order from the base of the log (or --from) to the end (or --to): one line each with
            LSN, type, stream, previous LSN, undo-next LSN, length and a preview of the data. --hex adds a hex dump
            of each record's data; --json prints one JSON object per line (schema: docs/tools/txlog.md).
            Stops with exit code 1 at a damaged block, after printing the records before it.

            Exit codes: 0 success, 1 corruption found, 2 cannot open, 4 I/O error, 64 usage error (all: txlog --help).

            Examples:
              txlog dump LOG --limit 20
              txlog dump LOG --stream ktm --type restart
              txlog dump LOG --from 1:4096:0 --to 1:65536:0 --hex
              txlog dump LOG --json | jq -r 'select(.stream == 1) | .lsn'
            """)

    @Argument(help: "The log directory.") var path: String
    @Option(help: "First LSN, a record's (default: the base of the log or of the stream).") var from: LSN?
    @Option(help: "Stop after this LSN.") var to: LSN?
    @Option(help: "Only this stream: its name, 'default', or its numeric id.") var stream: String?
    @Option(help: "Only records of this type: data or restart.") var type: RecordType?
    @Option(help: "At most this many records.") var limit: Int?
    @Flag(help: "Add a hex dump of each record's data.") var hex = false
    @Flag(help: "Print one JSON object per line.") var json = false

    func validate() throws {
        if let limit, limit < 0 { throw ValidationError("--limit must be at least 0") }
        if let from, let to, to < from { throw ValidationError("--to \(to) is before --from \(from)") }
    }

    func run() throws {
        let log = try openForReading(path)
        let info = log.info()
        let names = Dictionary(info.streams.map { ($0.id, $0.name) }, uniquingKeysWith: { a, _ in a })
        let tmStreams = tmStreamIDs(log, info)
        var streamID: UInt16?
        if let stream {
            let wanted = stream == "default" ? "" : stream
            if let s = info.streams.first(where: { $0.name == wanted }) {
                streamID = s.id
            } else if let id = UInt16(stream), names[id] != nil {
                streamID = id
            } else {
                FileHandle.standardError.write(Data("txlog: no stream named \(escaped(stream)) (see txlog streams)\n".utf8))
                throw ToolExit.usage
            }
        }
        let bar = ProgressBar("dump", workBytes: info.usedBytes)
        defer { bar.finish() }
        let data = info.containers.filter { $0.state != .inactive }.map(\.logicalID)
        let (low, high) = (data.min() ?? 1, data.max() ?? 1)
        do {
            var cursor: LogCursor
            do {
                if let streamID {
                    let name = names[streamID] ?? ""
                    cursor = try (name.isEmpty ? log.defaultStream : log.openStream(name)).records(from: from ?? .null)
                } else {
                    cursor = try log.records(from: from ?? .null)
                }
            } catch let e as LogError where e.code == .notFound && from != nil {
                throw badFrom(e)
            }
            var n = 0
            var first = true
            while let r = try nextRecord(&cursor, first: first) {
                first = false
                if let to, r.lsn > to { break }
                if let limit, n >= limit { break }
                if let type, r.type != type { continue }
                if let streamID, r.stream != streamID { continue }
                n += 1
                let span = Double(high - low + 1)
                bar.update((Double(r.lsn.container - low) + Double(r.lsn.blockOffset) / Double(info.containerSize)) / span)
                let tm = tmStreams.contains(r.stream) ? summarizeTMRecord(r.data) : nil
                // Records of resource-manager streams ("rm-<id>") that are key-value store records.
                let kv = tm == nil && (names[r.stream] ?? "").hasPrefix("rm-") ? describeKVRecord(r.data) : nil
                if json {
                    printLine(r, names, tm, kv)
                } else {
                    let preview = tm.map { "tm: \(escaped($0.text))" } ?? kv.map(escaped) ?? printable(r.data.prefix(48))
                    print("\(r.lsn)\t\(r.type)\tstream \(r.stream)\tprev \(r.previous)\tundo \(r.undoNext)\t\(r.data.count) B\t\(preview)")
                    if hex { print(hexDump(r.data), terminator: "") }
                }
            }
        } catch let e as ExitCode {
            bar.finish()
            throw e
        } catch {
            bar.finish()
            throw fail(error)
        }
    }

    /// The cursor's next record; nil at the end, and also where a live writer has recycled the records
    /// since the dump began (`notFound` from the cursor): that is noted on stderr, not damage.
    /// A `--from` that names no record (below the log's base, or where no record is; a stream's cursor may
    /// find that only at its first read) is a bad value, exit 64: exit 1 says the log is damaged.
    private func nextRecord(_ cursor: inout LogCursor, first: Bool) throws -> LogRecord? {
        do { return try cursor.next() } catch let e as LogError where e.code == .notFound && first && from != nil {
            throw badFrom(e)
        } catch let e as LogError where e.code == .notFound {
            FileHandle.standardError.write(Data("txlog: dump stopped: \(escaped(e.message))\n".utf8))
            return nil
        }
    }

    private func badFrom(_ e: LogError) -> ExitCode {
        FileHandle.standardError.write(Data("txlog: \(escaped(e.description)) (--from must be the LSN of a record in the log; see txlog dump without --from)\n".utf8))
        return ToolExit.usage
    }

    private func printLine(_ r: LogRecord, _ names: [UInt16: String], _ tm: TMRecordSummary?, _ kv: String?) {
        var object: [String: Any] = [
            "lsn": r.lsn.description, "type": "\(r.type)", "stream": Int(r.stream), "streamID": Int(r.stream), "streamName": names[r.stream] ?? NSNull(),
            "previous": r.previous.description, "undoNext": r.undoNext.description, "length": r.data.count,
            "data": r.data.map { String(format: "%02x", $0) }.joined(),
        ]
        if let tm {
            object["tm"] = [
                "kind": tm.kind, "clock": tm.clock, "text": tm.text, "transaction": tm.transactionID?.description ?? NSNull(),
                "outcome": tm.outcome?.description ?? NSNull(), "enlistments": tm.enlistments ?? NSNull(),
            ] as [String: Any]
        }
        if let kv { object["kv"] = kv }
        if let d = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) {
            FileHandle.standardOutput.write(d + Data("\n".utf8))
        }
    }

    /// Streams whose records are decoded as TM records: those whose restart area is a TM checkpoint, and
    /// the default TM stream name ("ktm") in any case (a TM that never checkpointed, or a damaged restart area).
    private func tmStreamIDs(_ log: LogStore, _ info: LogInfo) -> Set<UInt16> {
        let tmNames = Set(((try? TransactionManager.list(log: log)) ?? []).map(\.stream) + [TransactionManager.defaultStreamName])
        return Set(info.streams.filter { tmNames.contains($0.name) }.map(\.id))
    }

    private func printable<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        String(bytes.map { (0x20..<0x7f).contains($0) ? Character(UnicodeScalar($0)) : "." })
    }

    /// `xxd -g1` style: offset, 16 bytes in hex, the printable characters.
    private func hexDump(_ bytes: [UInt8]) -> String {
        var out = ""
        var i = 0
        while i < bytes.count {
            let row = bytes[i..<min(i + 16, bytes.count)]
            let hexes = row.map { String(format: "%02x", $0) }.joined(separator: " ")
            out += "    " + String(format: "%08x: ", i) + pad(hexes, 47) + "  " + printable(row) + "\n"
            i += 16
        }
        return out
    }
}
