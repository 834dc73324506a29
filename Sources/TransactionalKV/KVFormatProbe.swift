// Public entry points to the store's decoders, for inspection tools (`txlog dump`) and fuzzing: they
// decode bytes that may or may not be store records or snapshots, without exposing the types.

import LogStore
import TransactionManager

/// The one-line form of a store stream record (kind, transaction, write count), or nil when `bytes`
/// are not a record this build can decode.
public func describeKVRecord(_ bytes: [UInt8]) -> String? {
    guard let r = try? KVRecord.decode(bytes) else { return nil }
    switch r {
    case .prepare(let id, let w): return "kv prepare tx \(id)  \(w.count) writes"
    case .commit(let id): return "kv commit tx \(id)"
    case .abort(let id): return "kv abort tx \(id)"
    case .commitOnePhase(let id, let w): return "kv commit-one-phase tx \(id)  \(w.count) writes"
    case .checkpoint(let c): return "kv checkpoint store \(c.store)  snapshot \(c.snapshotFile)  covers \(c.coveredThrough)  \(c.pending.count) pending"
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
