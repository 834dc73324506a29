// How `txlog dump` decodes records: TM records in the streams of transaction managers, key-value store
// records in the streams of resource managers; the kind and transaction that `--kind`, `--xid` and
// `--stats` select and count by.

import Foundation
import LogStore
import TransactionManager
import TransactionalKV

/// One record as `dump` shows it: decoded, or raw (with a note when it should have decoded and did not).
struct DecodedRecord {
    var tm: TMRecordSummary?
    var kv: KVRecordSummary?
    /// Why a record that carries the TM or key-value record magic did not decode (damaged, or newer than
    /// this build). The record is shown raw; the dump goes on.
    var note: String?

    /// `tm:<kind>`, `kv:<kind>`, or nil for a record shown raw.
    var kind: String? { tm.map { "tm:" + $0.kind } ?? kv.map { "kv:" + $0.kind } }
    /// The one transaction the record is about (nil for checkpoints and raw records).
    var transaction: GUID? { tm?.transactionID ?? kv?.transactionID }
    /// Every transaction the record names: its own, or those a checkpoint carries.
    var transactions: [GUID] { tm?.transactionIDs ?? kv?.transactionIDs ?? [] }
}

struct DumpDecoder {
    static let tmKinds = ["rm-registered", "prepared", "outcome", "end", "forced", "checkpoint", "checkpoint-part", "checkpoint-index"]
    static let kvKinds = ["prepare", "commit", "abort", "commit-one-phase", "checkpoint"]
    /// What `--kind` accepts: `tm:KIND`, `kv:KIND`, a bare KIND (either family), or `raw`.
    static let kindArguments = ["raw"] + tmKinds.map { "tm:" + $0 } + kvKinds.map { "kv:" + $0 } + Array(Set(tmKinds + kvKinds)).sorted()

    let names: [UInt16: String]
    /// Streams whose records are decoded as TM records: those whose restart area is a TM checkpoint, and
    /// the default TM stream name ("ktm") in any case (a TM that never checkpointed, or a damaged restart area).
    let tmStreams: Set<UInt16>
    /// Streams whose records are decoded as key-value store records: resource managers' streams ("rm-<id>")
    /// and any stream whose restart area is a store checkpoint.
    let kvStreams: Set<UInt16>

    init(_ log: LogStore) {
        let streams = log.streams()
        names = Dictionary(streams.map { ($0.id, $0.name) }, uniquingKeysWith: { a, _ in a })
        let tmNames = Set(TransactionManager.list(log: log).map(\.stream) + [TransactionManager.defaultStreamName])
        tmStreams = Set(streams.filter { tmNames.contains($0.name) }.map(\.id))
        kvStreams = Set(
            streams.filter { s in
                if s.name.hasPrefix("rm-") { return true }
                guard s.restartLSN != .null, let r = try? log.read(s.restartLSN) else { return false }
                return (try? decodeKVRecordSummary(r.data))??.kind == "checkpoint"
            }.map(\.id))
    }

    /// Never throws and never traps, whatever the bytes: a record that does not decode is shown raw.
    func decode(_ r: LogRecord) -> DecodedRecord {
        if tmStreams.contains(r.stream) {
            do { return DecodedRecord(tm: try decodeTMRecordSummary(r.data)) } catch {
                return DecodedRecord(note: "not decodable as a TM record: \(error)")
            }
        }
        if kvStreams.contains(r.stream) {
            do { return DecodedRecord(kv: try decodeKVRecordSummary(r.data)) } catch {
                return DecodedRecord(note: "not decodable as a key-value record: \(error)")
            }
        }
        return DecodedRecord()
    }

    /// Whether a record of `kind` (nil: raw) is one `--kind wanted` selects.
    static func kind(_ kind: String?, matches wanted: String) -> Bool {
        guard let kind else { return wanted == "raw" }
        return kind == wanted || kind.split(separator: ":", maxSplits: 1).last.map(String.init) == wanted
    }
}
