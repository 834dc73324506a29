// The store as a resource manager: validation at prepare, logging, applying outcomes, recovery.

import LogStore
import TransactionManager

extension KVStore {
    func handle(_ n: TransactionNotification) {
        switch n.kind {
        case .recoveryComplete:
            presumeAbortUnnotified()
            lock.withLock { recoveryCompleted = true }
            recoveryProgress.signal()
            return
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

    /// Checks that nothing this transaction read changed, that no key it read or writes is locked by
    /// another prepared transaction, and that it writes nothing another prepared transaction read or
    /// scanned. Lock held.
    func validateLocked(_ v: KVTransaction) -> LogError? {
        for (k, seen) in v.readVersions {
            if (values[k]?.version ?? 0) != seen { return conflict(v, "a key it read was changed") }
            if let owner = locks[k], owner != v.transactionID { return conflict(v, "a key it read is held by a prepared transaction") }
        }
        for k in v.writes.keys {
            if let owner = locks[k], owner != v.transactionID { return conflict(v, "a key it writes is held by a prepared transaction") }
        }
        // A prepared transaction's reads stay valid until its outcome: it may still be preparing in
        // another store, and a write under its reads would let both commit (write skew across stores).
        for p in active.values where p !== v && p.state == .prepared && (!p.readVersions.isEmpty || !p.ranges.isEmpty) {
            for k in v.writes.keys {
                if p.readVersions[k] != nil || p.ranges.contains(where: { !(k < $0.start) && ($0.end.map { k < $0 } ?? true) }) {
                    return conflict(v, "a key it writes was read by a prepared transaction")
                }
            }
        }
        if !v.ranges.isEmpty, v.startSeq < historyFloor {
            return conflict(v, "it scanned a range and stayed open longer than the \(historyLimit) commits of history kept to validate it")
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

    private func commit(_ e: Enlistment, _ tx: GUID) {
        enum Plan { case answer(Bool), log(KVTransaction?, [KVWrite], reserved: Bool) }
        beforeCommitForTesting?()
        let acknowledge: Bool = appendLock.withLock {
            let plan: Plan = lock.withLock {
                // Closed since the notification set out (the store, or its RM with the TM): the TM still
                // owes the commit to the store's next instance, which may be open already with the
                // transaction pending (loaded from the stream). Logged and applied here too, the commit was
                // counted in both instances and logged twice, by one instance no longer the store's.
                if closed || rmClosed { return .answer(false) }
                let v = active[tx].flatMap { $0.state == .prepared ? $0 : nil }
                guard let writes = v?.loggedWrites ?? pending[tx] else { return .answer(true) }  // a repeated commit: already applied
                if writes.isEmpty {
                    finishCommitLocked(tx, v, writes)
                    return .answer(true)
                }
                return .log(v, writes, reserved: outcomeReserved.contains(tx))
            }
            guard case .log(let v, let writes, let reserved) = plan else {
                if case .answer(let yes) = plan { return yes }
                return false
            }
            do {
                // Outside `lock` (it may wait, see `appendLock`).
                try appendCommitRecord(tx, reserved: reserved)
            } catch {
                lock.withLock {
                    // Only a failed or closed log (or, without a reservation, a full one) gets here. The
                    // transaction stays prepared with its keys locked and is not acknowledged, so the TM
                    // sends the commit again when it recovers; or, when the log was full, the store logs
                    // and acknowledges it once there is room (`catchUpWithTheLog`).
                    if let v {
                        active[tx] = nil
                        v.state = .done
                        pending[tx] = writes
                    }
                    failure = failure ?? (error as? LogError) ?? LogError(.io, "\(error)")
                    // Not in doubt any more (see `inDoubtTransactions`), whatever refused the record.
                    unloggedCommits[tx] = e
                }
                return false
            }
            lock.withLock {
                applyCommitLocked(tx, writes)
                finishCommitLocked(tx, v, writes)
            }
            return true
        }
        if acknowledge { try? e.commitComplete() }
    }

    /// Ends a commit once its writes are applied: the live view (`v`) or the recovered entry. Lock held.
    private func finishCommitLocked(_ tx: GUID, _ v: KVTransaction?, _ writes: [KVWrite]) {
        if let v {
            active[tx] = nil
            v.state = .done
            if !writes.isEmpty { stats.commits += 1 }
        } else {
            pending[tx] = nil
            unlockPendingLocked(tx, writes)
            recoverNotified.remove(tx)
            stats.recoveredCommitted += 1
        }
    }

    /// Appends a prepared transaction's commit record, `reserved` when it holds room for it (read under
    /// the lock with the decision). `appendLock` held, not `lock`: the append may wait.
    ///
    /// Logged before the writes are applied and before the TM hears of it: once acknowledged, the TM
    /// forgets the transaction, and after a crash this record is all that says it committed. Under
    /// `appendLock` until the writes are applied (`applyCommitLocked`), so the stream orders commits as
    /// they were applied (once the keys are unlocked another transaction may write them and log its own
    /// record). Unforced: it precedes the TM's end record in the log, so it is durable whenever that is.
    private func appendCommitRecord(_ tx: GUID, reserved: Bool) throws {
        try stream.append(KVRecord.commit(tx).encode(), usingReservation: reserved)
    }

    /// Applies a prepared transaction's writes once its commit record is appended. Lock held.
    private func applyCommitLocked(_ tx: GUID, _ writes: [KVWrite]) {
        outcomeReserved.remove(tx)
        if !unloggedCommits.isEmpty { unloggedCommits[tx] = nil }
        applyLocked(writes)
        unlockLocked(tx, writes)
    }

    /// After the log refused room (`failure` is `log-full`): appends the commit records it refused,
    /// applies and acknowledges them, and reserves the outcome room the store's open could not, while the
    /// log has room. Once every refused commit is logged the store takes transactions again. Called by
    /// `begin` while the store has a failure, and after a checkpoint (which gives room back).
    func catchUpWithTheLog() {
        let acknowledged: [Enlistment] = appendLock.withLock {
            let owed: [(tx: GUID, e: Enlistment, writes: [KVWrite], reserved: Bool)]? = lock.withLock {
                guard failure?.code == .logFull || !unloggedCommits.isEmpty, !closed, !rmClosed else { return nil }
                var owed: [(tx: GUID, e: Enlistment, writes: [KVWrite], reserved: Bool)] = []
                for (tx, e) in unloggedCommits.sorted(by: { $0.key < $1.key }) {
                    guard let writes = pending[tx] else {
                        unloggedCommits[tx] = nil  // committed since, by the TM's commit sent again
                        continue
                    }
                    owed.append((tx, e, writes, outcomeReserved.contains(tx)))
                }
                return owed
            }
            guard let owed else { return [] }
            var done: [Enlistment] = []
            for o in owed {
                do {
                    try appendCommitRecord(o.tx, reserved: o.reserved)
                } catch {
                    let err = (error as? LogError) ?? LogError(.io, "\(error)")
                    if err.code != .logFull { lock.withLock { failure = err } }
                    return done
                }
                lock.withLock {
                    applyCommitLocked(o.tx, o.writes)
                    finishCommitLocked(o.tx, nil, o.writes)
                }
                done.append(o.e)
            }
            // Room for the outcome records of the transactions still prepared (in doubt), so their
            // commit does not meet a full log again; as at open, while the log has room.
            let unreserved: [GUID] = lock.withLock {
                if failure?.code == .logFull { failure = nil }
                return pending.keys.sorted().filter { !outcomeReserved.contains($0) }
            }
            for tx in unreserved {
                guard (try? stream.reserve(recordSizes: [KVRecord.outcomeSize])) != nil else { break }
                _ = lock.withLock { outcomeReserved.insert(tx) }
            }
            return done
        }
        for e in acknowledged { try? e.commitComplete() }
    }

    private func rollback(_ e: Enlistment, _ tx: GUID) {
        // `appendLock`: the decision waits for a prepare of the store that is appending (its view is
        // `preparing`). The abort record is appended after, holding neither lock: it may land after
        // records decided later, which is harmless (replay of an abort only drops the prepare).
        let logAbort: Bool = appendLock.withLock {
            lock.withLock {
                if let v = active[tx] {
                    stats.rollbacks += 1
                    active[tx] = nil
                    let wasLogged = v.state == .prepared && !v.writes.isEmpty
                    if wasLogged { unlockLocked(tx, v.loggedWrites) }
                    v.state = .done
                    return wasLogged
                }
                if let p = pending[tx] {
                    pending[tx] = nil
                    recoverNotified.remove(tx)
                    unlockPendingLocked(tx, p)
                    stats.recoveredAborted += 1
                    return true
                }
                return false
            }
        }
        // Unlike a commit record, a lost abort record costs nothing: recovery presumes abort.
        if logAbort { appendAbort(tx) }
        try? e.rollbackComplete()
    }

    /// After the TM's recover notifications: a transaction prepared in this store's log that the TM
    /// did not mention never reached a decision, so it is rolled back (presumed abort).
    private func presumeAbortUnnotified() {
        let dropped: [GUID] = appendLock.withLock {
            lock.withLock {
                let ids = pending.keys.filter { !recoverNotified.contains($0) }
                for id in ids {
                    if let p = pending.removeValue(forKey: id) { unlockPendingLocked(id, p) }
                    stats.recoveredAborted += 1
                }
                // Needed only for the decision above. (Transactions the store had already applied are
                // notified too, and nothing else would remove them.)
                recoverNotified.removeAll()
                return ids
            }
        }
        for id in dropped { appendAbort(id) }
    }

    /// Appends an abort record for a transaction prepared in this store's stream, using the space
    /// reserved for its outcome when it holds some.
    private func appendAbort(_ tx: GUID) {
        let reserved = lock.withLock { outcomeReserved.remove(tx) != nil }
        _ = try? stream.append(KVRecord.abort(tx).encode(), usingReservation: reserved)
    }
}
