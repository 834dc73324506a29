// Public entry points to the store's decoders, for inspection tools (`txlog dump`) and fuzzing: they
// decode bytes that may or may not be store records or snapshots, without exposing the types.

import LogStore
import TransactionManager

/// The one-line form of a store stream record (kind, transaction, write count), or nil when `bytes`
/// are not a record this build can decode.
public func describeKVRecord(_ bytes: [UInt8]) -> String? { ((try? decodeKVRecordSummary(bytes)) ?? nil)?.text }

/// What one store stream record says, for display. Produced by ``decodeKVRecordSummary(_:)``.
public struct KVRecordSummary: Sendable, Equatable {
    /// `prepare`, `commit`, `abort`, `commit-one-phase` or `checkpoint`.
    public var kind: String
    /// The transaction concerned (not for a checkpoint).
    public var transactionID: GUID?
    /// Writes logged (prepare, commit-one-phase).
    public var writes: Int?
    /// Every transaction the record names: one for the per-transaction kinds, those pending for a checkpoint.
    public var transactionIDs: [GUID]
    /// The one-line form, as ``describeKVRecord(_:)`` returns it.
    public var text: String
}

/// A summary of a store stream record: nil when `bytes` do not start with the store records' magic
/// (another program's data); otherwise the summary, or a `corrupt` / `unsupported-version` error for a
/// damaged or newer record.
public func decodeKVRecordSummary(_ bytes: [UInt8]) throws -> KVRecordSummary? {
    var magic = KVReader(bytes, what: "kv record")
    guard (try? magic.u32()) == KVRecord.magic else { return nil }
    switch try KVRecord.decode(bytes) {
    case .prepare(let id, let w):
        return KVRecordSummary(kind: "prepare", transactionID: id, writes: w.count, transactionIDs: [id], text: "kv prepare tx \(id)  \(w.count) writes")
    case .commit(let id):
        return KVRecordSummary(kind: "commit", transactionID: id, transactionIDs: [id], text: "kv commit tx \(id)")
    case .abort(let id):
        return KVRecordSummary(kind: "abort", transactionID: id, transactionIDs: [id], text: "kv abort tx \(id)")
    case .commitOnePhase(let id, let w):
        return KVRecordSummary(
            kind: "commit-one-phase", transactionID: id, writes: w.count, transactionIDs: [id], text: "kv commit-one-phase tx \(id)  \(w.count) writes")
    case .checkpoint(let c):
        return KVRecordSummary(
            kind: "checkpoint", transactionIDs: c.pending.map(\.id),
            text: "kv checkpoint store \(c.store)  snapshot \(c.snapshotFile)  covers \(c.coveredThrough)  \(c.pending.count) pending")
    }
}

/// Validates the bytes of a whole snapshot file (magic, version, CRC32C, every length, count and key
/// order) and returns its owner and entry count, or throws `corrupt` / `unsupported-version`.
public func validateKVSnapshot(_ bytes: [UInt8]) throws -> (store: GUID, entries: Int) {
    var n = 0
    _ = try KVSnapshotFile.parse(bytes, path: "(bytes)", store: nil) { _, _ in n += 1 }
    var r = KVReader(bytes, what: "snapshot", offset: 8)
    return (try r.guid(), n)
}
