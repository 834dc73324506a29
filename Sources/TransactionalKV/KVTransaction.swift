// A transaction's view of one store: buffered writes, read-your-writes, and what it read (for
// validation at prepare).

import LogStore
import TransactionManager

/// One transaction's work in one ``KVStore``. Get it with ``KVStore/begin(_:)``. Writes are buffered
/// until commit; reads see the transaction's own writes. Isolation is serializable, by optimistic
/// validation at prepare: if another transaction changed what this one read, commit throws `conflict`
/// and the transaction can be retried. Its operations throw `invalid-state` once the transaction prepared
/// or ended in this store, and `closed` once the store (or its transaction manager) is closed.
public final class KVTransaction: @unchecked Sendable {
    let store: KVStore
    /// The transaction this view belongs to.
    public let transactionID: GUID
    let enlistment: Enlistment
    let startSeq: UInt64

    // Guarded by store.lock.
    var writes: [Key: [UInt8]?] = [:]
    var readVersions: [Key: UInt64] = [:]
    var ranges: [(start: Key, end: Key?)] = []
    var state: State = .active

    /// `preparing`: validated, its prepare record being appended (see `KVStore.prepare`).
    enum State { case active, preparing, prepared, done }

    init(store: KVStore, transactionID: GUID, enlistment: Enlistment, startSeq: UInt64) {
        self.store = store
        self.transactionID = transactionID
        self.enlistment = enlistment
        self.startSeq = startSeq
    }

    /// The value of `key`, seeing this transaction's own writes. The latest committed value otherwise; if a
    /// commit changed the key since this transaction first read it, the commit of this one is a `conflict`.
    public func get(_ key: [UInt8]) throws -> [UInt8]? {
        let k = Key(key)
        return try store.lock.withLock {
            try requireActive()
            if let w = writes[k] { return w }
            let entry = store.values[k]
            // The first read's version is the one validated: a later read of a key changed meanwhile
            // returns the new value, and keeping its version instead let the transaction commit having
            // seen both values (no serial order has that).
            if readVersions[k] == nil { readVersions[k] = entry?.version ?? 0 }
            return entry?.value.map(Array.init)
        }
    }

    /// Sets `key` to `value` (visible to others once committed).
    public func put(_ key: [UInt8], _ value: [UInt8]) throws {
        guard key.count <= KVRecord.maxKey, value.count <= KVRecord.maxValue else {
            throw LogError(.invalidArgument, "key over \(KVRecord.maxKey) bytes or value over \(KVRecord.maxValue) bytes")
        }
        try store.lock.withLock {
            try requireActive()
            writes[Key(key)] = .some(value)
        }
    }

    /// Deletes `key`.
    public func delete(_ key: [UInt8]) throws {
        guard key.count <= KVRecord.maxKey else { throw LogError(.invalidArgument, "key over \(KVRecord.maxKey) bytes") }
        try store.lock.withLock {
            try requireActive()
            writes[Key(key)] = .some(nil)
        }
    }

    /// Keys and values in `[start, end)` in ascending key order (`end` nil: to the end), at most `limit`,
    /// seeing this transaction's own writes. The whole range is validated at prepare (no phantoms).
    ///
    /// - Throws: `invalidArgument` for a negative `limit`.
    public func scan(from start: [UInt8] = [], to end: [UInt8]? = nil, limit: Int = .max) throws -> [(key: [UInt8], value: [UInt8])] {
        guard limit >= 0 else { throw LogError(.invalidArgument, "scan limit \(limit) is negative") }
        let s = Key(start)
        let e = end.map(Key.init)
        return try store.lock.withLock {
            try requireActive()
            if limit == 0 { return [] }
            ranges.append((s, e))
            // Committed keys in range, merged with this transaction's writes in range (enough committed
            // keys that `limit` remain after the writes that delete some of them).
            let (wanted, overflow) = limit.addingReportingOverflow(writes.count)
            var keys = Set(store.index.keys(from: s, to: e, limit: overflow ? .max : wanted))
            for k in writes.keys where !(k < s) && (e.map { k < $0 } ?? true) { keys.insert(k) }
            var out: [(key: [UInt8], value: [UInt8])] = []
            for k in keys.sorted() {
                let value: [UInt8]?
                if let w = writes[k] { value = w } else { value = store.values[k]?.value.map(Array.init) }
                if let value { out.append((k.bytes, value)) }
                if out.count >= limit { break }
            }
            return out
        }
    }

    private func requireActive() throws {
        // Closing the store (or its TM) rolls back its transactions that had not prepared, without a
        // rollback notification to this instance: the view would otherwise go on taking writes and
        // answering reads for a transaction that is over.
        if store.closed || store.rmClosed { throw LogError(.closed, "store \(store.id) is closed") }
        guard state == .active else { throw LogError(.invalidState, "transaction \(transactionID) is past its active phase in this store") }
    }

    /// The buffered writes in key order, as logged.
    var loggedWrites: [KVWrite] {
        writes.keys.sorted().map { KVWrite(key: $0.bytes, value: writes[$0] ?? nil) }
    }
}
