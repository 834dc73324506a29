// Two-phase commit with presumed abort: the commit driver and the phases it runs.
//
// The driver is the task that called commit (or a superior's prepare/commit). It sends each phase's
// notifications outside the lock and waits for the answers; answers arrive on any thread through
// `answer(_:_:)` (TransactionManager+Answers.swift). State changes are made under the lock *before* the
// TM record that reports them is appended, so a checkpoint's snapshot always covers every record at or
// below the LSN it claims (see docs/TRANSACTIONS.md, "Checkpoints").

import LogStore

extension TransactionManager {
    func commit(_ txn: TxnCore) async throws {
        try lock.withLock {
            try requireOnline()
            guard txn.superior == nil, !txn.hasSuperior else {
                throw LogError(.invalidState, "transaction \(txn.id) has a superior; it decides the outcome")
            }
            switch txn.state {
            case .active: txn.state = .prePreparing
            case .aborting, .aborted: throw txn.abortError
            default: throw LogError(.invalidState, "commit of transaction \(txn.id) already started (\(txn.state))")
            }
        }
        if try await trySinglePhase(txn) == false {
            try await prepareAll(txn)
            try await decideCommit(txn)
        }
        let (outcome, logClosed) = await waitEnd(txn, orOnlyClosedRMsOwe: true)
        if outcome == .aborted { throw abortError(txn) }
        if let logClosed { throw logClosed }
    }

    /// Runs single-phase commit if exactly one writer is enlisted and it asked for it. Returns false
    /// when a two-phase commit is needed (no such writer, or it rejected single-phase).
    private func trySinglePhase(_ txn: TxnCore) async throws -> Bool {
        let target: Enlistment? = lock.withLock {
            // The one active writer, if there is exactly one (counted without building an array).
            var writer: Enlistment?
            for e in txn.enlistments where e.state == .active && e.mask.contains(.prepare) {
                guard writer == nil else { return nil }
                writer = e
            }
            guard let writer, writer.mask.contains(.singlePhaseCommit), txn.superior == nil else { return nil }
            txn.state = .committingSinglePhase
            writer.state = .singlePhase
            writer.expecting = .singlePhaseCommit
            txn.pending = 1
            return writer
        }
        guard let target else { return false }
        await offPoolIfAppendMayWait { deliverOne(target, .singlePhaseCommit) }
        await awaitPhase(txn)
        let (committed, effects) = try lock.withLock { () -> (Bool?, Effects) in
            if txn.state == .failed { throw txn.singlePhaseLostError }
            if txn.cutShort { return (nil, Effects()) }
            if target.state == .committed {
                return (true, outcomeLocked(txn, .committed))
            }
            if state == .failed, txn.pending > 0 {
                // Woken by the log's failure before the RM answered: the outcome is the RM's, not known here.
                txn.state = .failed
                throw LogError(.failed, "the log failed during the single-phase commit of transaction \(txn.id): the outcome is the resource manager's and is not known here (\(failure?.message ?? ""))")
            }
            txn.state = .prePreparing  // rejected: carry on with two phases
            return (false, Effects())
        }
        await offPoolIfAppendMayWait { perform(effects) }
        switch committed {
        case nil: throw lock.withLock { txn.stopError }
        case true?: return true
        case false?: return false
        }
    }

    /// Pre-prepare then prepare. Throws `aborted` if the transaction was rolled back meanwhile.
    func prepareAll(_ txn: TxnCore) async throws {
        try await runPhase(txn, .prePrepare, txnState: .prePreparing) { $0.state == .active && $0.mask.contains(.prePrepare) }
        try await runPhase(txn, .prepare, txnState: .preparing) {
            ($0.state == .active || $0.state == .prePrepared) && $0.mask.contains(.prepare)
        }
    }

    /// Sends one phase's notification to the enlistments `select` picks, and waits for every answer.
    func runPhase(_ txn: TxnCore, _ kind: TransactionNotification.Kind, txnState: TransactionState, select: (Enlistment) -> Bool) async throws {
        let targets: [Enlistment]? = lock.withLock {
            guard !txn.cutShort else { return nil }
            txn.state = txnState
            // When every enlistment takes part (the common case) the list is shared, not copied.
            let all = txn.enlistments
            var selected = 0
            for e in all where select(e) { selected += 1 }
            let ts = selected == all.count ? all : all.filter(select)
            for e in ts {
                e.state = kind == .prePrepare ? .prePreparing : .preparing
                e.expecting = kind
            }
            txn.pending = ts.count
            return ts
        }
        guard let targets else { throw lock.withLock { txn.stopError } }
        // The handlers append (a prepare record, say): off the pool when that may wait.
        await offPoolIfAppendMayWait { for e in targets { deliverOne(e, kind) } }
        await awaitPhase(txn)
        if let stopped = lock.withLock({ txn.cutShort ? txn.stopError : nil }) { throw stopped }
        if lock.withLock({ state == .failed && txn.pending > 0 }) { throw rollBackOnFailure(txn, kind) }
    }

    /// The log failed while a phase waited for answers: no decision can be logged any more, so presumed
    /// abort holds, and the transaction is rolled back as when its decision record cannot be appended
    /// (``rollBackUnlogged(_:wasLogged:record:floor:_:)``). Returns the error to throw (`failed`).
    func rollBackOnFailure(_ txn: TxnCore, _ phase: TransactionNotification.Kind) -> LogError {
        perform(lock.withLock {
            guard txn.canAbort, !txn.detached else { return Effects() }
            if txn.abortReason == nil {
                let cause = failure?.message ?? "the log failed"
                txn.abortReason = LogError(.failed, "transaction \(txn.id) was rolled back: the log failed before every participant answered \(phase.rawValue) (\(cause))")
            }
            return outcomeLocked(txn, .aborted)
        })
        return lock.withLock { txn.stopError }
    }

    /// Waits until the current phase's answers are in, the transaction is cut short or the log failed.
    func awaitPhase(_ txn: TxnCore) async {
        // Answers given inside the handlers (the common case) leave nothing to wait for: no suspension.
        if lock.withLock({ txn.pending == 0 || txn.cutShort || state == .failed }) { return }
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let now = lock.withLock { () -> Bool in
                if txn.pending == 0 || txn.cutShort || state == .failed { return true }
                txn.phaseWaiter = c
                return false
            }
            if now { c.resume() }
        }
    }

    /// Every vote is in: force the commit record (if a durable participant prepared), then send commit.
    ///
    /// Shared-log fast path: every prepare record a durable RM appended to its stream precedes this
    /// record in the same log, so the one flush below makes them durable too.
    func decideCommit(_ txn: TxnCore) async throws {
        let (record, wasLogged, floor): (TMRecord?, Bool, LSN) = try lock.withLock {
            guard !txn.cutShort else { throw txn.stopError }
            // A second commit of a superior while the first one's decision is flushed: it committed (the
            // rollback's `aborted` said the opposite to a superior retrying its commit).
            guard txn.outcome == .undetermined else {
                // Forgotten by a `resolve` meanwhile (aborted, not cut short): it stays rolled back.
                guard txn.outcome == .committed else { throw txn.abortError }
                throw LogError(.invalidState, "transaction \(txn.id) is already committing: its commit decision is being written")
            }
            if txn.forcing { throw Self.beingResolvedError(txn) }
            let before = txn.logged ? txn.loggedForm : nil
            txn.outcome = .committed
            // The clock is read back from the stream (a u64 that may be at its largest): it only has to
            // never decrease, so it stays there rather than trap.
            if clock < .max { clock += 1 }
            let wasLogged = txn.logged
            let logged = txn.enlistments.contains { $0.isLogged }
            guard logged else { return (nil, wasLogged, .null) }
            txn.logged = true
            return (.outcome(txn.loggedForm), wasLogged, stream == nil ? .null : beginRecordLocked(txn, before: before))
        }
        if let record, let stream {
            let lsn: LSN
            do { lsn = try await offPoolIfAppendMayWait { () throws(any Error) -> LSN in try append(record) } } catch {
                throw await offPoolIfAppendMayWait { rollBackUnlogged(txn, wasLogged: wasLogged, record: "decision", floor: floor, error) }
            }
            lock.withLock { endRecordLocked(txn, floor) }
            afterDecisionAppendForTesting?()
            do {
                try await stream.flush(upTo: lsn)
            } catch {
                // The log closed under the TM after the append: its close flushed everything, so the
                // decision is durable and recovery commits the transaction. It is committed, then, but no
                // commit is sent (the participants could not log their acknowledgements in a closed log;
                // they get it at recovery), so the commit still throws `closed`, saying so.
                if (error as? LogError)?.code == .closed, let log, lsn <= log.durableLSN {
                    lock.withLock {
                        txn.state = .failed
                        txn.outcome = .committed
                    }
                    throw LogError(.closed, "the log was closed during the commit of transaction \(txn.id), after its commit decision was durable: it committed, and its participants get the commit when the log is opened again and the transaction manager recovers", lsn: lsn)
                }
                // The decision may or may not be durable: no outcome is sent, and none is claimed (a
                // reader of `outcome` would otherwise see committed); recovery decides.
                lock.withLock {
                    txn.state = .failed
                    txn.outcome = .undetermined
                }
                throw error
            }
        }
        // Closed meanwhile: the decision is durable, and recovery sends the commit. The commit handlers
        // append their outcome records, and the last acknowledgement the end record.
        let effects = lock.withLock { txn.detached ? Effects() : outcomeLocked(txn, .committed) }
        await offPoolIfAppendMayWait { perform(effects) }
    }

    /// A decision (or prepared) record could not be appended: too large for the log's maximum record
    /// size, log full, log failed. Nothing reached the log, so presumed abort holds: the transaction is
    /// rolled back, its prepared participants get `rollback`, and the TM stays healthy. Returns the
    /// error to throw: the append's code, saying the transaction was rolled back.
    /// `floor` is the record's from ``beginRecordLocked(_:before:)``, ended in the same hold of the lock
    /// as the rollback, so no checkpoint sees the change as logged in between.
    func rollBackUnlogged(_ txn: TxnCore, wasLogged: Bool, record: String, floor: LSN, _ cause: any Error) -> LogError {
        let code = (cause as? LogError)?.code ?? .io
        let reason = LogError(code, "transaction \(txn.id) was rolled back: its \(record) record could not be appended (\(cause))")
        perform(lock.withLock {
            endRecordLocked(txn, floor)
            txn.logged = wasLogged
            if txn.abortReason == nil { txn.abortReason = reason }
            return txn.detached ? Effects() : outcomeLocked(txn, .aborted)
        })
        return reason
    }

    /// The error a rolled-back transaction's commit throws: the veto's reason, or `aborted`.
    func abortError(_ txn: TxnCore) -> LogError { lock.withLock { txn.abortError } }

    /// Waits until the transaction finishes, its log fails or its TM closes, and returns its outcome
    /// (`undetermined` if no decision was made by then). With `orOnlyClosedRMsOwe`, also returns once
    /// the outcome is decided and every acknowledgement still owed is from an RM that is closed: a
    /// commit does not wait for an RM that may never be opened again (it gets the outcome when it is).
    /// Once the log failed no participant may be able to log its acknowledgement: a decided outcome is
    /// durable (recovery sends it again), so it is returned.
    func waitFinished(_ txn: TxnCore, orOnlyClosedRMsOwe: Bool = false) async -> Outcome {
        await waitEnd(txn, orOnlyClosedRMsOwe: orOnlyClosedRMsOwe).outcome
    }

    /// As ``waitFinished(_:orOnlyClosedRMsOwe:)``, and, when the wait ended because the log was closed
    /// under the TM (``logClosed()``), the error a commit throws: the decision may be durable, but nothing
    /// tells the participants before the log is opened again, so it does not return as if done.
    func waitEnd(_ txn: TxnCore, orOnlyClosedRMsOwe: Bool) async -> (outcome: Outcome, logClosed: LogError?) {
        func done() -> Bool {
            txn.isFinished || txn.state == .failed || state == .failed || txn.detached
                || (orOnlyClosedRMsOwe && txn.onlyClosedRMsOweAcknowledgement)
        }
        while true {
            if let end = lock.withLock({ () -> (Outcome, LogError?)? in
                guard done() else { return nil }
                return (txn.outcome, txn.detached && txn.logClosed ? txn.closedError : nil)
            }) { return end }
            // Woken when it finishes, or (RM close) when what it waits for may have changed: re-check.
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let now = lock.withLock { () -> Bool in
                    if done() { return true }
                    txn.finishWaiters.append(c)
                    return false
                }
                if now { c.resume() }
            }
        }
    }

    // MARK: Outcomes

    /// Records the outcome and works out who is owed it. Enlistments whose RM has not recovered yet get
    /// it when it does. Must hold `lock`.
    func outcomeLocked(_ txn: TxnCore, _ outcome: Outcome) -> Effects {
        var fx = Effects()
        txn.outcome = outcome
        txn.state = outcome == .committed ? .committing : .aborting
        if outcome == .aborted {
            txn.cutShort = true
            txn.pending = 0
            if let w = txn.phaseWaiter {
                txn.phaseWaiter = nil
                fx.resume.append(w)
            }
        }
        var owed = 0
        for e in txn.enlistments where !e.acknowledged {
            let isOwed: Bool
            if outcome == .committed {
                switch e.state {
                case .prepared, .committing, .inDoubt, .recovering: isOwed = true
                case .active, .prePrepared: isOwed = e.mask.contains(.commit) && !e.mask.contains(.prepare)
                default: isOwed = false
                }
            } else {
                switch e.state {
                case .readOnly, .aborted, .committed, .closed: isOwed = false
                default: isOwed = true
                }
            }
            guard isOwed else { continue }
            owed += 1
            guard e.rm != nil, e.state != .recovering, e.expecting != .recover else { continue }
            let kind: TransactionNotification.Kind = outcome == .committed ? .commit : .rollback
            e.state = outcome == .committed ? .committing : .aborting
            e.expecting = kind
            if fx.notify.isEmpty { fx.notify.reserveCapacity(txn.enlistments.count) }
            fx.notify.append((e, kind))
        }
        txn.unacknowledged = owed
        if owed == 0 { finishLocked(txn, into: &fx) }
        return fx
    }

    /// The RM of a single-phase commit closed before answering it. The outcome is that RM's, written
    /// in its own stream; the TM logged nothing, so it owes nothing: the transaction leaves the table as
    /// `failed` and its waiting driver is woken (it throws ``TxnCore/singlePhaseLostError``).
    /// Returns the continuations to resume once the lock is released.
    func loseSinglePhaseOutcomeLocked(_ txn: TxnCore) -> [CheckedContinuation<Void, Never>] {
        txn.state = .failed
        txn.pending = 0
        transactions[txn.id] = nil
        txn.timeoutTask?.cancel()
        txn.timeoutTask = nil
        var woken = txn.finishWaiters
        txn.finishWaiters.removeAll()
        if let w = txn.phaseWaiter { woken.append(w) }
        txn.phaseWaiter = nil
        txn.releaseParticipantsIfDoneLocked()
        return woken
    }

    /// The transaction is done: drop it from the table and owe an end record if it was logged.
    func finishLocked(_ txn: TxnCore, into fx: inout Effects) {
        txn.state = txn.outcome == .committed ? .committed : .aborted
        transactions[txn.id] = nil
        txn.timeoutTask?.cancel()
        txn.timeoutTask = nil
        fx.resume += txn.finishWaiters
        txn.finishWaiters.removeAll()
        if txn.logged {
            // The last end record waits in `end` (no array for the common single one); earlier ones
            // move to `records` in order, so the append order is unchanged.
            if let earlier = fx.end { fx.records.append(.end(earlier)) }
            fx.end = txn.id
        }
        txn.releaseParticipantsIfDoneLocked()
    }

    /// Rolls back a transaction that has not prepared (client call, timeout, closed handle). `reason`
    /// becomes the `aborted` error its commit throws (a commit waiting for a vote that never comes ends
    /// when the timeout fires, and says so).
    func rollback(_ txn: TxnCore, reason: String) throws {
        let fx: Effects = try lock.withLock {
            if txn.detached { throw txn.closedError }
            if txn.state == .aborting || txn.state == .aborted { return Effects() }
            guard txn.canAbort else {
                throw LogError(.invalidState, "transaction \(txn.id) is \(txn.state); only its superior or `resolve` can decide it now")
            }
            if txn.abortReason == nil { txn.abortReason = LogError(.aborted, "transaction \(txn.id) was rolled back: \(reason)") }
            return outcomeLocked(txn, .aborted)
        }
        perform(fx)
    }

    // MARK: Side effects, outside the lock

    /// What a state change owes the outside world, performed after the lock is released.
    struct Effects {
        var records: [TMRecord] = []
        /// An end record appended after `records` (kept apart: the usual single one needs no array).
        var end: GUID?
        var notify: [(Enlistment, TransactionNotification.Kind)] = []
        var resume: [CheckedContinuation<Void, Never>] = []
        var callSuperior: [@Sendable () -> Void] = []
    }

    func perform(_ fx: Effects) {
        // Unforced records (abort, end): losing one only means an outcome is sent again after a crash.
        for r in fx.records { _ = try? append(r) }
        if let id = fx.end { _ = try? append(.end(id)) }
        if let txn = fx.notify.first?.0.txn { deliver(fx.notify, txn: txn) }
        for c in fx.resume { c.resume() }
        for f in fx.callSuperior { f() }
    }

    func deliver(_ list: [(Enlistment, TransactionNotification.Kind)], txn: TxnCore) {
        for (e, kind) in list { deliverOne(e, kind) }
    }

    func deliverOne(_ e: Enlistment, _ kind: TransactionNotification.Kind) {
        // A notification overtaken by a rollback (an earlier RM of this batch vetoed from inside its
        // callback, say) is dropped: the enlistment already got the rollback, which is final.
        let toHandler: (ResourceManager, TransactionNotification)? = lock.withLock {
            guard kind == .inDoubt ? e.state == .inDoubt : e.expecting == kind, let rm = e.rm else { return nil }
            let n = TransactionNotification(kind: kind, enlistment: e, transactionID: e.transactionID, recoveryInformation: e.recoveryInfo, clock: clock)
            // An RM reading `notifications` gets it now, under the lock, so its sequence follows the order
            // of the state changes: a rollback decided on another thread cannot overtake this notification.
            guard rm.handler != nil else {
                rm.continuation.yield(n)
                return nil
            }
            return e.takeTurnLocked(n, for: rm) ? (rm, n) : nil
        }
        if let (rm, n) = toHandler { deliverInTurn(e, rm, n) }
    }

    /// Calls `rm`'s handler with `first` (whose turn ``Enlistment/takeTurnLocked(_:for:)`` gave this
    /// thread), then each notification of `e` queued meanwhile, in order, to the RM it was queued for,
    /// outside the lock. One thread at a time delivers an enlistment's notifications, so its handler sees
    /// them in the order of the state changes, never two at once, and an answer given inside the handler
    /// is followed by its next notification after the handler returns, not inside it.
    func deliverInTurn(_ e: Enlistment, _ rm: ResourceManager, _ first: TransactionNotification) {
        var (n, to, queued, closed) = (first, rm, false, false)
        // RMs whose queued recover notification this turn delivered (`ResourceManager.recover()` counts
        // those it queued). Told once the turn ends, so their recovery-complete follows the outcome the
        // recover's answer sent, queued in this same turn, as it does when `recover()` delivers the
        // recover itself: a KV store's open waits for recovery-complete, and it came before the commit.
        var recovered: [ResourceManager] = []
        while true {
            // Nothing more is sent to an RM that closed while the notification waited in the queue: its
            // enlistment may be a reopened RM's by now, which gets a recover of its own, and the closed
            // RM's handler would answer in its stead.
            if !closed { to.deliver(n) }
            if queued && n.kind == .recover { recovered.append(to) }
            guard e.turnGoesOn() else {
                for r in recovered { r.queuedRecoverDelivered() }
                return
            }
            (n, to, closed) = lock.withLock {
                let (n, to) = e.nextTurnLocked()
                return (n, to, to.state == .closed)
            }
            queued = true
        }
    }
}
