// The store as a resource manager: validation at prepare, logging, applying outcomes, recovery.

import LogStore
import TransactionManager

extension KVStore {
    func handle(_ n: TransactionNotification) {
        switch n.kind {
        case .recoveryComplete: presumeAbortUnnotified()
        case .tmOnline: return
        default: break
        }
        guard let e = n.enlistment, let tx = n.transactionID else { return }
        switch n.kind {
        case .prePrepare: try? e.prePrepareComplete()
        case .prepare: prepare(e, tx)
        case .singlePhaseCommit: commitSinglePhase(e, tx)
        case .commit: commit(e, tx)
        case .rollback: rollback(e, tx)
        case .recover:
            lock.withLock { _ = recoverNotified.insert(tx) }
            try? e.recover()
        case .inDoubt: return  // keys stay locked until the outcome arrives
        default: return
        }
    }

    /// Checks that nothing this transaction read changed, and that no key it read or writes is locked
    /// by another prepared transaction. Lock held.
    func validateLocked(_ v: KVTransaction) -> LogError? {
        for (k, seen) in v.readVersions {
            if (values[k]?.version ?? 0) != seen { return conflict(v, "a key it read was changed") }
            if let owner = locks[k], owner != v.transactionID { return conflict(v, "a key it read is held by a prepared transaction") }
        }
        for k in v.writes.keys {
            if let owner = locks[k], owner != v.transactionID { return conflict(v, "a key it writes is held by a prepared transaction") }
        }
        for r in v.ranges {
            func inRange(_ k: Key) -> Bool { !(k < r.start) && (r.end.map { k < $0 } ?? true) }
            for w in recentWrites where w.seq > v.startSeq && w.keys.contains(where: inRange) {
                return conflict(v, "a range it scanned was written")
            }
            for (k, owner) in locks where owner != v.transactionID && inRange(k) {
                return conflict(v, "a range it scanned holds a prepared write")
            }
        }
        return nil
    }

    private func conflict(_ v: KVTransaction, _ why: String) -> LogError {
        stats.conflicts += 1
        return LogError(.conflict, "transaction \(v.transactionID) conflicts in store \(id): \(why); retry it")
    }

    /// Validates, locks the write set and appends the prepare record (not flushed: the TM's decision
    /// record comes later in the same log and its flush covers this one).
    private func prepare(_ e: Enlistment, _ tx: GUID) {
        enum Step { case readOnly, veto(LogError), prepared }
        let step: Step = lock.withLock {
            guard let v = active[tx], v.state == .active else { return .readOnly }
            if let c = validateLocked(v) {
                active[tx] = nil
                v.state = .done
                return .veto(c)
            }
            if v.writes.isEmpty {
                active[tx] = nil
                v.state = .done
                return .readOnly
            }
            let writes = v.loggedWrites
            do {
                try stream.append(KVRecord.prepare(tx, writes).encode())
            } catch {
                active[tx] = nil
                v.state = .done
                return .veto((error as? LogError) ?? LogError(.io, "\(error)"))
            }
            for w in writes { locks[Key(w.key)] = tx }
            v.state = .prepared
            return .prepared
        }
        switch step {
        case .readOnly: try? e.readOnly()
        case .veto(let err): try? e.rollback(reason: err)
        case .prepared: try? e.prepareComplete()
        }
    }

    /// Single-phase commit: validate, append one record with the writes, flush it, apply, answer.
    private func commitSinglePhase(_ e: Enlistment, _ tx: GUID) {
        enum Step { case readOnly, veto(LogError), flush(LSN, [KVWrite]) }
        let step: Step = lock.withLock {
            guard let v = active[tx], v.state == .active else { return .readOnly }
            if let c = validateLocked(v) {
                active[tx] = nil
                v.state = .done
                return .veto(c)
            }
            active[tx] = nil
            v.state = .done
            if v.writes.isEmpty { return .readOnly }
            let writes = v.loggedWrites
            do {
                let lsn = try stream.append(KVRecord.commitOnePhase(tx, writes).encode())
                for w in writes { locks[Key(w.key)] = tx }
                // A checkpoint taken from now on counts these writes as committed: its restart area's
                // flush covers this record, which is at or below the LSN the snapshot covers.
                onePhaseInFlight[tx] = writes
                return .flush(lsn, writes)
            } catch {
                return .veto((error as? LogError) ?? LogError(.io, "\(error)"))
            }
        }
        switch step {
        case .readOnly: try? e.commitComplete()
        case .veto(let err): try? e.rollback(reason: err)
        case .flush(let lsn, let writes):
            let stream = self.stream
            Task {
                do {
                    try await stream.flush(upTo: lsn)
                    lock.withLock {
                        onePhaseInFlight[tx] = nil
                        applyLocked(writes)
                        unlockLocked(tx, writes)
                        stats.singlePhaseCommits += 1
                    }
                    try? e.commitComplete()
                } catch {
                    // The log failed: the record may or may not be durable; recovery decides.
                    let err = (error as? LogError) ?? LogError(.io, "\(error)")
                    lock.withLock { failure = failure ?? err }
                    try? e.rollback(reason: err)
                }
            }
        }
    }

    private func commit(_ e: Enlistment, _ tx: GUID) {
        let record: [UInt8]? = lock.withLock {
            var writes: [KVWrite]?
            if let v = active[tx], v.state == .prepared {
                writes = v.loggedWrites
                active[tx] = nil
                v.state = .done
            } else if let p = pending[tx] {
                writes = p
                pending[tx] = nil
                recoverNotified.remove(tx)
                stats.recoveredCommitted += 1
            }
            guard let writes else { return nil }  // a repeated commit: already applied
            applyLocked(writes)
            unlockLocked(tx, writes)
            stats.commits += 1
            return KVRecord.commit(tx).encode()
        }
        // Unforced: it precedes the TM's end record in the log, so it is durable whenever that is.
        if let record { _ = try? stream.append(record) }
        try? e.commitComplete()
    }

    private func rollback(_ e: Enlistment, _ tx: GUID) {
        let logAbort: Bool = lock.withLock {
            stats.rollbacks += 1
            if let v = active[tx] {
                active[tx] = nil
                let wasPrepared = v.state == .prepared
                if wasPrepared { unlockLocked(tx, v.loggedWrites) }
                v.state = .done
                return wasPrepared
            }
            if let p = pending[tx] {
                pending[tx] = nil
                recoverNotified.remove(tx)
                unlockLocked(tx, p)
                stats.recoveredAborted += 1
                return true
            }
            return false
        }
        if logAbort { _ = try? stream.append(KVRecord.abort(tx).encode()) }
        try? e.rollbackComplete()
    }

    /// After the TM's recover notifications: a transaction prepared in this store's log that the TM
    /// did not mention never reached a decision, so it is rolled back (presumed abort).
    private func presumeAbortUnnotified() {
        let dropped: [GUID] = lock.withLock {
            let ids = pending.keys.filter { !recoverNotified.contains($0) }
            for id in ids {
                if let p = pending[id] { unlockLocked(id, p) }
                pending[id] = nil
                stats.recoveredAborted += 1
            }
            return ids
        }
        for id in dropped { _ = try? stream.append(KVRecord.abort(id).encode()) }
    }
}
