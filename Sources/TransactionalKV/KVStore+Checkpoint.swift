// Loading a store from its snapshot and stream, and writing checkpoints.

import LogStore
import TransactionManager

extension KVStore {
    /// Loads the last snapshot named by the stream's restart area, then replays the stream after it.
    func loadFromLog() throws {
        var covered = LSN.null
        var loaded: [Key: Entry] = [:]
        var keys: [Key] = []
        var pendingWrites: [GUID: [KVWrite]] = [:]
        if let restart = try stream.readRestartArea() {
            guard case .checkpoint(let cp) = try KVRecord.decode(restart.data), cp.store == id else {
                throw LogError(.corrupt, "store \(id): its restart area is not a KV checkpoint of this store", lsn: restart.lsn)
            }
            covered = cp.coveredThrough
            for p in cp.pending { pendingWrites[p.id] = p.writes }
            let snapshotCovers = try KVSnapshotFile.read(
                io: io, path: directory + "/" + cp.snapshotFile, store: id,
                reserve: { n in
                    loaded.reserveCapacity(n)
                    keys.reserveCapacity(n)
                },
                each: { k, v in
                    // Version 1, not 0: an absent (deleted) key reads as 0, so a key loaded with 0 and
                    // deleted later would look unchanged to a transaction that read it.
                    loaded[k] = Entry(value: v, version: 1)
                    keys.append(k)
                })
            // The checkpoint writes both with the same LSN. A file that says otherwise is not the one this
            // restart area was written for (copied or restored from elsewhere): its table does not match
            // the records replayed after `covered`.
            guard snapshotCovers == covered else {
                throw LogError(.corrupt, "store \(id): snapshot \(cp.snapshotFile) covers the stream through \(snapshotCovers), its checkpoint through \(covered)", lsn: restart.lsn)
            }
            if let g = UInt64(cp.snapshotFile.split(separator: "-").last?.split(separator: ".").first ?? "") { snapshotGeneration = g }
        }
        lock.withLock {
            // Moved, not copied: a second reference would make the first write copy the whole table.
            values = CommittedTable(loaded)
            loaded = [:]
            commitSeq = max(commitSeq, 1)  // the snapshot's version: replayed commits come after it
            index = SortedKeyIndex(sortedUnique: keys)
            keys = []
        }
        var cursor = try stream.records(from: covered)
        while let r = try cursor.next() {
            if r.type == .restart || (covered != .null && r.lsn <= covered) { continue }
            let record = try KVRecord.decode(r.data)
            lock.withLock {
                switch record {
                case .prepare(let tx, let writes): pendingWrites[tx] = writes
                case .commit(let tx):
                    if let w = pendingWrites.removeValue(forKey: tx) { applyLocked(w) }
                case .abort(let tx): pendingWrites[tx] = nil
                case .commitOnePhase(_, let writes): applyLocked(writes)
                case .checkpoint: break
                }
            }
        }
        // The next checkpoint's room first: on a nearly full log it is what lets the log recycle.
        reserveRestartRoom()
        // Reservations do not outlive the log's open: each transaction still prepared gets room for its
        // outcome record again. One the full log cannot give room to is left without; if its commit
        // record then cannot be appended, it stays prepared and unacknowledged (see `commit`).
        var reserved: Set<GUID> = []
        for tx in pendingWrites.keys {
            guard (try? stream.reserve(recordSizes: [KVRecord.outcomeSize])) != nil else { break }
            reserved.insert(tx)
        }
        let closedMeanwhile = lock.withLock { () -> Bool in
            pending = pendingWrites
            for (tx, writes) in pendingWrites {
                for w in writes {
                    let k = Key(w.key)
                    // Written by two undecided prepares (see `unlockPendingLocked`).
                    if let other = locks.updateValue(tx, forKey: k), other != tx { sharedPendingKeys.insert(k) }
                }
            }
            // The RM closed with its TM during this open: its reservations were given back already.
            if rmClosed { return true }
            outcomeReserved = reserved
            return false
        }
        if closedMeanwhile, !reserved.isEmpty {
            try? stream.release(recordSizes: [Int](repeating: KVRecord.outcomeSize, count: reserved.count))
        }
    }

    /// Writes a checkpoint: every committed key to a new snapshot file, then a restart area naming it,
    /// then moves the stream's base so older records can be recycled. Returns the restart area's LSN.
    /// The writes of transactions prepared and not yet decided are appended again, one `prepare` record
    /// each, just above the LSN the snapshot covers, so the base can move past their first `prepare`
    /// records and the restart area stays small however many there are.
    ///
    /// Runs alongside transactions. Under the store's lock it only freezes the committed table (see
    /// `CommittedTable`) and notes what is in flight; the keys are sorted and gathered outside the lock,
    /// then the table is thawed, folding in the commits made meanwhile. No commit copies the table.
    ///
    /// - Throws: `closed` once the store is closed, or its TM (which closes its resource manager) is.
    @discardableResult
    public func checkpoint() throws -> LSN {
        let lsn = try checkpointLock.withLock {
            // Room for the restart area: held since open or the last checkpoint, else (the log could not
            // give it then) asked for now, through the log's full-log handling. Then room for the next
            // one, whether this one used it or failed before it could. Under `checkpointLock`, so a
            // `close()` (which waits for it) finds it to give back.
            reserveRestartRoom()
            defer { reserveRestartRoom() }
            return try Self.withInstanceLock(id: id) { try checkpointHoldingLocks() }
        }
        // It may have given the log room back for commit records a full log refused.
        if lock.withLock({ failure != nil }) { catchUpWithTheLog() }
        return lsn
    }

    /// The checkpoint, with `checkpointLock` and the store's instance lock (see `withInstanceLock`) held.
    private func checkpointHoldingLocks() throws -> LSN {
        var inFlight: [Key: ArraySlice<UInt8>?] = [:]
        // `appendLock` throughout: no record of the store is being appended while `covered` is noted (a
        // single-phase commit appended but not yet in `onePhaseInFlight` would be below it and lost), and
        // no commit is applied until the table is frozen (only a single-phase commit's flush may apply one
        // meanwhile, whose writes `inFlight` holds already).
        let (covered, frozen, keys, generation) = try appendLock.withLock {
            () throws -> (LSN, [Key: Entry], SortedKeyIndex, UInt64) in
            let (covered, undecided, generation) = try lock.withLock {
                () throws -> (LSN, [(id: GUID, writes: [KVWrite])], UInt64) in
                // A closed instance must not write one: a reopened instance of this store may have appended
                // to the stream since, and this table does not hold those commits.
                if closed { throw LogError(.closed, "store \(id) is closed") }
                // Its RM closed with its TM (`tm.close()` closes every RM): the same holds, as the store may
                // be open again on a new TM object by now. (Lock order store → TM, as everywhere: the TM
                // never calls into a store while it holds its lock.)
                if rm.currentState == .closed { throw LogError(.closed, "store \(id): its resource manager was closed with its transaction manager") }
                // Read back from the restart area's file name (a u64 that may be the largest): only a name
                // other than the current one matters (older files are found by name, not by number), so it
                // wraps to 0 rather than trap.
                snapshotGeneration &+= 1
                // Single-phase commits whose record is appended count as committed (see commitSinglePhase).
                for writes in onePhaseInFlight.values {
                    for w in writes { inFlight[Key(w.key)] = .some(w.value.map { $0[...] }) }
                }
                // Transactions prepared here and not decided: each one's writes go into a new `prepare`
                // record above `covered`, which replay reads like the first one (the later one wins, with
                // the same writes). Appended holding `appendLock`, as every record of the store is, so a
                // transaction's `commit` cannot land between `covered` and its new `prepare` (replay would
                // then see the decision first, and the `prepare` last), and no rollback decides meanwhile.
                // Carrying them in the restart area instead (format v1 allows it) bounded them all together
                // by one record.
                var p = pending.map { (id: $0.key, writes: $0.value) }
                for v in active.values where v.state == .prepared && !v.writes.isEmpty { p.append((id: v.transactionID, writes: v.loggedWrites)) }
                return (stream.lastLSN, p.sorted(by: { $0.id < $1.id }), snapshotGeneration)
            }
            // Outside `lock`: these appends may wait (back-pressure, a full log), and reads must not.
            for t in undecided { try stream.append(KVRecord.prepare(t.id, t.writes).encode()) }
            return lock.withLock { (covered, values.freeze(), index, generation) }
        }
        whileFrozenForTesting?()
        // `consume`: the frozen dictionary must be released before the thaw, or the thaw copies it.
        let entries = Self.snapshotEntries(consume frozen, keys: consume keys, inFlight: inFlight)
        // Fold the overlay back in steps, releasing the lock between them (see `thawStep`).
        while !lock.withLock({ values.thawStep(limit: Self.thawStepKeys) }) {}
        let name = KVSnapshotFile.name(store: id, generation: generation)
        try KVSnapshotFile.write(io: io, directory: directory, name: name, store: id, coveredThrough: covered, slices: entries)
        // The base moves to `covered`, or to the restart record itself when no record of the stream came
        // after `covered` (no prepare carried across, no commit meanwhile): the stream then holds nothing
        // older than its restart area.
        let lsn = try writeRestartArea(KVCheckpoint(store: id, snapshotFile: name, coveredThrough: covered, pending: []))
        // Older snapshots of this store are no longer referenced. No directory fsync follows: an
        // unlink lost in a crash leaves an unreferenced file, which recovery ignores (it opens only
        // the file the restart area names) and the next checkpoint deletes. So are temporary files a
        // checkpoint that failed or crashed left (this store's checkpoints run one at a time).
        let prefix = "kv-\(id)-"
        for file in (try? io.listDirectory(directory)) ?? []
        where file.hasPrefix(prefix) && file != name && (file.hasSuffix(".snap") || file.hasSuffix(".snap.tmp")) {
            // Freed in steps: a large file freed at once holds up the log's fdatasyncs.
            try? io.unlinkFreeingGradually(directory + "/" + file)
        }
        return lsn
    }

    /// Overlay entries folded back per hold of the store's lock at the end of a checkpoint (~0.5 ms).
    static let thawStepKeys = 1024

    /// The snapshot's keys in order with their values: the frozen table, overridden by single-phase
    /// commits appended but not yet applied.
    private static func snapshotEntries(
        _ frozen: consuming [Key: Entry], keys: consuming SortedKeyIndex, inFlight: [Key: ArraySlice<UInt8>?]
    ) -> [(Key, ArraySlice<UInt8>)] {
        var ordered = keys.all
        let added = inFlight.keys.filter { frozen[$0] == nil }
        if !added.isEmpty {
            ordered.append(contentsOf: added)
            ordered.sort()
        }
        return ordered.compactMap { k in
            if let o = inFlight[k] { return o.map { (k, $0) } }
            return frozen[k]?.value.map { (k, $0) }
        }
    }
}
