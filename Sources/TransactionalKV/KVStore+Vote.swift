// The store's vote: prepare (two-phase) and single-phase commit. Each validates under the store's
// `lock`, appends its record holding only `appendLock`, then finishes under `lock` again, so reads never
// wait for an append (see `appendLock` and docs/KV.md, "Locks and the log's order").

import LogStore
import TransactionManager

extension KVStore {
    /// Validates, locks the write set and appends the prepare record (not flushed: the TM's decision
    /// record comes later in the same log and its flush covers this one).
    func prepare(_ e: Enlistment, _ tx: GUID) {
        enum Step { case readOnly, veto(LogError), prepared, log(KVTransaction, [KVWrite]) }
        beforePrepareForTesting?()
        let step: Step = appendLock.withLock {
            let decided: Step = lock.withLock {
                let v: KVTransaction
                switch startVoteLocked(tx) {
                case nil: return .readOnly
                case .failure(let err)?: return .veto(err)
                case .success(let valid)?: v = valid
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
                // The view takes no more operations: what it wrote is what gets logged.
                v.state = .preparing
                return .log(v, v.loggedWrites)
            }
            guard case .log(let v, let writes) = decided else { return decided }
            // Outside `lock`: either call may wait (back-pressure, a full log). `appendLock` keeps every
            // other decision of the store (validation, outcomes, checkpoints, close) out until it is done.
            let failed: LogError?
            do {
                try stream.append(KVRecord.prepare(tx, writes).encode())
                // Room for the outcome record, reserved now: once the TM decides, that record must
                // reach this stream before the store acknowledges, and a full log must not stop it.
                // (Reserved after the prepare record, whose append may make room by running the
                // tail-pinned handlers; if the reservation fails, the vote is no and recovery, finding
                // the prepare record with no decision, presumes abort.)
                try stream.reserve(recordSizes: [KVRecord.outcomeSize])
                failed = nil
            } catch {
                failed = (error as? LogError) ?? LogError(.io, "\(error)")
            }
            return lock.withLock {
                if let failed {
                    active[tx] = nil
                    v.state = .done
                    stats.rollbacks += 1
                    return .veto(failed)
                }
                outcomeReserved.insert(tx)
                for w in writes { locks[Key(w.key)] = tx }
                v.state = .prepared
                return .prepared
            }
        }
        switch step {
        case .readOnly: try? e.readOnly()
        case .veto(let err): try? e.rollback(reason: err)
        case .prepared, .log: try? e.prepareComplete()
        }
    }

    /// Single-phase commit: validate, append one record with the writes, flush it, apply, answer.
    func commitSinglePhase(_ e: Enlistment, _ tx: GUID) {
        enum Step { case readOnly, veto(LogError), log([KVWrite]), flush(LSN, [KVWrite]) }
        beforeSinglePhaseForTesting?()
        let step: Step = appendLock.withLock {
            let decided: Step = lock.withLock {
                let v: KVTransaction
                switch startVoteLocked(tx) {
                case nil: return .readOnly
                case .failure(let err)?: return .veto(err)
                case .success(let valid)?: v = valid
                }
                active[tx] = nil
                v.state = .done
                return v.writes.isEmpty ? .readOnly : .log(v.loggedWrites)
            }
            guard case .log(let writes) = decided else { return decided }
            do {
                // Outside `lock` (it may wait); no validation or checkpoint runs until `appendLock` is
                // released, so none sees the record appended and its writes neither locked nor in flight.
                let lsn = try stream.append(KVRecord.commitOnePhase(tx, writes).encode())
                return lock.withLock {
                    for w in writes { locks[Key(w.key)] = tx }
                    // A checkpoint taken from now on counts these writes as committed: its restart area's
                    // flush covers this record, which is at or below the LSN the snapshot covers.
                    onePhaseInFlight[tx] = writes
                    return .flush(lsn, writes)
                }
            } catch {
                lock.withLock { stats.rollbacks += 1 }
                return .veto((error as? LogError) ?? LogError(.io, "\(error)"))
            }
        }
        switch step {
        case .readOnly, .log: try? e.commitComplete()
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

    /// How a vote starts, lock held: nil when the view is gone or past its active phase (nothing to log:
    /// read-only), a veto (the view is then done), or the validated view.
    ///
    /// A store closed since the notification set out (the store, or its RM with the TM) vetoes: a
    /// prepare's outcome reservation would stay held for as long as the log is open (the store's were
    /// given back already); a single-phase commit's record, the TM having reported its outcome unknown and
    /// the store perhaps open again (this id, a new instance) with a table that never gets it, would be
    /// invisible there (and dropped by its next checkpoint) but replayed after a crash over commits it had
    /// acknowledged since. (`close()` takes `appendLock`, so it cannot come between this check and the
    /// append.)
    private func startVoteLocked(_ tx: GUID) -> Result<KVTransaction, LogError>? {
        guard let v = active[tx], v.state == .active else { return nil }
        if closed || rmClosed {
            active[tx] = nil
            v.state = .done
            stats.rollbacks += 1
            return .failure(LogError(.closed, "store \(id) is closed"))
        }
        if let c = validateLocked(v) {
            active[tx] = nil
            v.state = .done
            return .failure(c)
        }
        return .success(v)
    }
}
