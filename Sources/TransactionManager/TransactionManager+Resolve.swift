// Forced (heuristic) outcomes: an operator or program decides a transaction the protocol cannot.

import LogStore

#if canImport(Glibc)
import Glibc
#endif

extension TransactionManager {
    /// Forces the outcome of a prepared, in-doubt or unfinished transaction, or forgets it. Writes an
    /// audited record (who, when, why), forced to disk, before anything is sent; the outcome changes
    /// only once that record is in the log, so a record the log refuses (`log-full`) changes nothing.
    /// While it is written, the superior's commit and rollback and another resolve get `invalid-state`;
    /// so does a resolve while a superior's commit writes its decision. The outcome is then
    /// listed in ``forcedOutcomes`` and kept by later checkpoints (the most recent
    /// ``TransactionManagerOptions/auditRetention``).
    ///
    /// - `commit` / `rollback`: refused when the outcome is already known and differs; when it is the
    ///   same, the record is written (audited) and nothing is sent again.
    /// - `forget`: drops the transaction without telling anyone (for participants that will never come
    ///   back); they must then be repaired by hand.
    ///
    /// A log closed under the TM once the forced record is appended makes it durable: `closed`, saying
    /// that recovery applies it. Like ``Transaction/commit()``, it appends off Swift's cooperative pool
    /// when an append may wait.
    public func resolve(_ id: GUID, action: ForcedAction, actor: String? = nil, reason: String = "") async throws {
        guard let stream else { throw LogError(.invalidArgument, "a volatile transaction manager has nothing to resolve") }
        let actorText = Self.utf8Prefix(actor ?? options.defaultActor, TMLimits.maxShortText)
        let reasonText = Self.utf8Prefix(reason, TMLimits.maxShortText)
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        let nanos = UInt64(max(0, ts.tv_sec)) &* 1_000_000_000 &+ UInt64(max(0, ts.tv_nsec))
        let (txn, record, floor): (TxnCore, TMRecord, LSN) = try lock.withLock {
            try requireOnline()
            guard let txn = transactions[id] else { throw LogError(.notFound, "no transaction \(id) is owed an outcome") }
            switch txn.state {
            case .prepared, .inDoubt, .committing, .aborting: break
            default: throw LogError(.invalidState, "transaction \(id) is \(txn.state); only prepared or unfinished transactions can be resolved")
            }
            // A superior's commit whose decision is appended and being flushed (committed, not yet sent):
            // a forced record now would send the commit a second time, or forget a committing transaction.
            let decisionBeingFlushed = txn.outcome == .committed && (txn.state == .prepared || txn.state == .inDoubt)
            if txn.forcing || txn.recordInFlight || decisionBeingFlushed { throw Self.beingResolvedError(txn) }
            if action == .commit, txn.outcome == .aborted {
                throw LogError(.invalidState, "transaction \(id) already rolled back; it cannot be committed")
            }
            if action == .rollback, txn.outcome == .committed {
                throw LogError(.invalidState, "transaction \(id) already committed; it cannot be rolled back")
            }
            // The forced record goes to the log first and the outcome changes only once it is there: a
            // record the log refuses (log full) leaves the transaction as it was. Meanwhile its superior
            // cannot decide it, and a checkpoint covers no further than the record's floor.
            txn.forcing = true
            // A forced commit is a commit: the clock moves, and the record carries the new value (recovery
            // takes the clock from the records). If the append fails the clock has moved for nothing,
            // which is harmless: it only has to grow.
            if action == .commit, txn.outcome != .committed, clock < .max { clock += 1 }
            let record = TMRecord.forced(tx: id, action: action, unixNanos: nanos, actor: actorText, reason: reasonText)
            return (txn, record, beginRecordLocked())
        }
        let lsn: LSN
        do {
            lsn = try await offPoolIfAppendMayWait { () throws(any Error) -> LSN in try append(record) }
        } catch {
            lock.withLock {
                txn.forcing = false
                endRecordLocked(floor)
            }
            throw error
        }
        let fx: Effects = lock.withLock {
            txn.forcing = false
            endRecordLocked(floor)
            audit.append(ForcedOutcome(lsn: lsn, transaction: id, action: action, unixNanos: nanos, actor: actorText, reason: reasonText))
            // Finished meanwhile (its last acknowledgement arrived), or the TM closed: recovery applies the
            // record, if anything is left to apply.
            guard !txn.detached, transactions[id] === txn else { return Effects() }
            txn.logged = true
            var fx = Effects()
            // The outcome it already has (a committing or aborting transaction): audited, nothing more.
            // Decided again, it was sent again to every participant still to acknowledge it, and each
            // one's answer to the first notification made its second answer `invalid-state`.
            switch action {
            case .commit:
                if txn.outcome != .committed { fx = outcomeLocked(txn, .committed) }
            case .rollback:
                if txn.outcome != .aborted { fx = outcomeLocked(txn, .aborted) }
            case .forget:
                txn.logged = false  // the forced record ends it
                txn.outcome = txn.outcome == .undetermined ? .aborted : txn.outcome
                finishLocked(txn, into: &fx)
            }
            return fx
        }
        afterForcedAppendForTesting?()
        do {
            try await stream.flush(upTo: lsn)
        } catch {
            // Nothing is sent or logged for a record that may not be durable, but the waiters are woken:
            // a forget took the transaction out of the table, where the log's failure looks for waiters
            // to wake, and its waiters into `fx`, so they waited for ever.
            for c in fx.resume { c.resume() }
            // The log closed under the TM after the append: its close flushed everything, so the record
            // is durable and recovery applies it. Said so, as `decideCommit` does for a decision.
            if (error as? LogError)?.code == .closed, let log, lsn <= log.durableLSN {
                throw LogError(.closed, "the log was closed during the resolve (\(action)) of transaction \(id), after its forced record was durable: recovery applies it when the log is opened again and the transaction manager recovers", lsn: lsn)
            }
            throw error
        }
        await offPoolIfAppendMayWait { perform(fx) }
    }

    /// What a decision or a second `resolve` gets while `resolve` is writing a forced outcome for `txn`
    /// (or while its own decision is being written).
    static func beingResolvedError(_ txn: TxnCore) -> LogError {
        LogError(.invalidState, "transaction \(txn.id) is being decided (a forced outcome or its decision is being written); query its outcome and retry")
    }

    /// `text` cut to at most `limit` UTF-8 bytes at a character boundary (the record's decoder refuses
    /// longer text, so a longer actor or reason would make the TM stream unrecoverable).
    static func utf8Prefix(_ text: String, _ limit: Int) -> String {
        guard text.utf8.count > limit else { return text }
        var out = ""
        var bytes = 0
        for c in text {
            let n = c.utf8.count
            if bytes + n > limit { break }
            out.append(c)
            bytes += n
        }
        return out
    }
}
