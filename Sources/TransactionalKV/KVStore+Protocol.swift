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

    /// Validates, locks the write set and appends the prepare record (not flushed: the TM's decision
    /// record comes later in the same log and its flush covers this one).
    private func prepare(_ e: Enlistment, _ tx: GUID) {
        enum Step { case readOnly, veto(LogError), prepared }
        beforePrepareForTesting?()
        let step: Step = lock.withLock {
            guard let v = active[tx], v.state == .active else { return .readOnly }
            // Closed since the notification set out (the store, or its RM with the TM): the outcome
            // reservations are given back already, so one taken now would stay held for as long as the
            // log is open.
            if closed || rmClosed {
                active[tx] = nil
                v.state = .done
                stats.rollbacks += 1
                return .veto(LogError(.closed, "store \(id) is closed"))
            }
            if let c = validateLocked(v) {
                active[tx] = nil
                v.state = .done
                return .veto(c)
            }
            if v.writes.isEmpty && v.readVersions.isEmpty && v.ranges.isEmpty {
                active[tx] = nil
                v.state = .done
                return .readOnly
            }
            if v.writes.isEmpty {
                // It read but wrote nothing here. Its reads must stay valid until the outcome: another
                // store of the transaction may prepare its writes later, and releasing them now would
                // allow write skew across stores. So it votes prepared, logs nothing, and holds its
                // reads (see validateLocked) until commit or rollback.
                v.state = .prepared
                return .prepared
            }
            let writes = v.loggedWrites
            do {
                try stream.append(KVRecord.prepare(tx, writes).encode())
                // Room for the outcome record, reserved now: once the TM decides, that record must
                // reach this stream before the store acknowledges, and a full log must not stop it.
                // (Reserved after the prepare record, whose append may make room by running the
                // tail-pinned handlers; if the reservation fails, the vote is no and recovery, finding
                // the prepare record with no decision, presumes abort.)
                try stream.reserve(recordSizes: [KVRecord.outcomeSize])
            } catch {
                active[tx] = nil
                v.state = .done
                stats.rollbacks += 1
                return .veto((error as? LogError) ?? LogError(.io, "\(error)"))
            }
            outcomeReserved.insert(tx)
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
        beforeSinglePhaseForTesting?()
        let step: Step = lock.withLock {
            guard let v = active[tx], v.state == .active else { return .readOnly }
            // Closed since the notification set out (the store, or its RM with the TM): the TM has
            // reported the outcome unknown, and the store may be open again (this id, a new instance)
            // with a table that never gets this record. Logged now, it was invisible there (and dropped
            // by its next checkpoint) but replayed after a crash over commits it had acknowledged since.
            if closed || rmClosed {
                active[tx] = nil
                v.state = .done
                stats.rollbacks += 1
                return .veto(LogError(.closed, "store \(id) is closed"))
            }
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
                stats.rollbacks += 1
                return .veto((error as? LogError) ?? LogError(.io, "\(error)"))
            }
        }
        switch step {
        case .readOnly: try? e.commitComplete()
        case .veto(let err): try? e.rollback(reason: err)
        case .flush(let lsn, let writes):
            // A completion, not a task per commit: it runs on the log's completion queue once the batch
            // is durable, takes this store's lock and answers the TM.
            stream.whenDurable(lsn) { [self] error in
                if let error {
                    // The log failed: the record may or may not be durable; recovery decides.
                    lock.withLock {
                        failure = failure ?? error
                        if error.code != .failed { stats.rollbacks += 1 }
                    }
                    // No veto then: it would make the transaction `aborted`, and recovery may well find
                    // the record and apply it. The log is the TM's too, so the TM fails with it and stops
                    // the commit with `failed`, saying the outcome is not known. (Any other error, a log
                    // closed under the store, still vetoes: nothing else would end the commit.)
                    if error.code != .failed { try? e.rollback(reason: error) }
                    return
                }
                lock.withLock {
                    onePhaseInFlight[tx] = nil
                    applyLocked(writes)
                    unlockLocked(tx, writes)
                    stats.singlePhaseCommits += 1
                }
                try? e.commitComplete()
            }
        }
    }

    private func commit(_ e: Enlistment, _ tx: GUID) {
        beforeCommitForTesting?()
        let acknowledge: Bool = lock.withLock {
            // Closed since the notification set out (the store, or its RM with the TM): the TM still owes
            // the commit to the store's next instance, which may be open already with the transaction
            // pending (loaded from the stream). Logged and applied here too, the commit was counted in
            // both instances and logged twice, by one instance no longer the store's.
            if closed || rmClosed { return false }
            let v = active[tx].flatMap { $0.state == .prepared ? $0 : nil }
            guard let writes = v?.loggedWrites ?? pending[tx] else { return true }  // a repeated commit: already applied
            if !writes.isEmpty {
                do {
                    try logCommitLocked(tx, writes)
                } catch {
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
                    return false
                }
            }
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
            return true
        }
        if acknowledge { try? e.commitComplete() }
    }

    /// Appends a prepared transaction's commit record, then applies its writes. Lock held.
    ///
    /// Logged before the writes are applied and before the TM hears of it: once acknowledged, the TM
    /// forgets the transaction, and after a crash this record is all that says it committed. Under the
    /// lock, so the stream orders commits as they were applied (once the keys are unlocked another
    /// transaction may write them and log its own record). Unforced: it precedes the TM's end record in
    /// the log, so it is durable whenever that is.
    private func logCommitLocked(_ tx: GUID, _ writes: [KVWrite]) throws {
        try stream.append(KVRecord.commit(tx).encode(), usingReservation: outcomeReserved.contains(tx))
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
        let acknowledged: [Enlistment] = lock.withLock {
            guard failure?.code == .logFull || !unloggedCommits.isEmpty, !closed, !rmClosed else { return [] }
            var done: [Enlistment] = []
            for (tx, e) in unloggedCommits.sorted(by: { $0.key < $1.key }) {
                guard let writes = pending[tx] else {
                    unloggedCommits[tx] = nil  // committed since, by the TM's commit sent again
                    continue
                }
                do {
                    try logCommitLocked(tx, writes)
                } catch {
                    let err = (error as? LogError) ?? LogError(.io, "\(error)")
                    if err.code != .logFull { failure = err }
                    return done
                }
                pending[tx] = nil
                unlockPendingLocked(tx, writes)
                recoverNotified.remove(tx)
                stats.recoveredCommitted += 1
                done.append(e)
            }
            if failure?.code == .logFull { failure = nil }
            // Room for the outcome records of the transactions still prepared (in doubt), so their
            // commit does not meet a full log again; as at open, while the log has room.
            for tx in pending.keys.sorted() where !outcomeReserved.contains(tx) {
                guard (try? stream.reserve(recordSizes: [KVRecord.outcomeSize])) != nil else { break }
                outcomeReserved.insert(tx)
            }
            return done
        }
        for e in acknowledged { try? e.commitComplete() }
    }

    private func rollback(_ e: Enlistment, _ tx: GUID) {
        let logAbort: Bool = lock.withLock {
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
        // Unlike a commit record, a lost abort record costs nothing: recovery presumes abort.
        if logAbort { appendAbort(tx) }
        try? e.rollbackComplete()
    }

    /// After the TM's recover notifications: a transaction prepared in this store's log that the TM
    /// did not mention never reached a decision, so it is rolled back (presumed abort).
    private func presumeAbortUnnotified() {
        let dropped: [GUID] = lock.withLock {
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
        for id in dropped { appendAbort(id) }
    }

    /// Appends an abort record for a transaction prepared in this store's stream, using the space
    /// reserved for its outcome when it holds some.
    private func appendAbort(_ tx: GUID) {
        let reserved = lock.withLock { outcomeReserved.remove(tx) != nil }
        _ = try? stream.append(KVRecord.abort(tx).encode(), usingReservation: reserved)
    }
}
