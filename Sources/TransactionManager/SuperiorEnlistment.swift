// A superior enlistment: an external coordinator (XA, DTC, another TM) drives the phases.

import LogStore

/// How a superior's prepare request ended.
public enum Vote: String, Sendable {
    /// Every participant prepared; the prepared state is durable. Commit or roll back next.
    case prepared
    /// Every participant was read-only: the transaction committed and needs no second phase.
    case readOnly = "read-only"
}

/// The handle an external coordinator uses to drive a transaction. With a superior, the client's
/// ``Transaction/commit()`` is refused; the superior calls ``prepare()`` and then ``commit()`` or
/// ``rollback()``. A prepared transaction with a superior survives a crash in doubt: after recovery
/// the superior re-attaches with ``TransactionManager/superior(for:onRequestOutcome:)``.
public final class SuperiorEnlistment: @unchecked Sendable {
    let tm: TransactionManager
    let txn: TxnCore
    let onRequestOutcome: (@Sendable (GUID) -> Void)?

    init(tm: TransactionManager, txn: TxnCore, onRequestOutcome: (@Sendable (GUID) -> Void)?) {
        self.tm = tm
        self.txn = txn
        self.onRequestOutcome = onRequestOutcome
    }

    /// The transaction this superior enlistment drives.
    public var transactionID: GUID { txn.id }
    /// The transaction's state now.
    public var state: TransactionState { tm.lock.withLock { txn.state } }
    /// The transaction's outcome now (`undetermined` until decided).
    public var outcome: Outcome { tm.lock.withLock { txn.outcome } }

    /// Runs the pre-prepare phase only.
    public func prePrepare() async throws {
        try tm.lock.withLock {
            if txn.detached { throw txn.closedError }
            guard txn.state == .active, !txn.superiorDriving else { throw LogError(.invalidState, "transaction \(txn.id) is \(txn.state), not active") }
            txn.state = .prePreparing
            txn.superiorDriving = true
        }
        defer { tm.lock.withLock { txn.superiorDriving = false } }
        try await tm.runPhase(txn, .prePrepare, txnState: .prePreparing) { $0.state == .active && $0.mask.contains(.prePrepare) }
    }

    /// Runs pre-prepare (unless done) and prepare, then forces a prepared record naming the durable
    /// participants. Throws `aborted` if a participant vetoed, and `invalid-state` while another
    /// `prePrepare()` or `prepare()` of this transaction is still running. Throws `closed` when the log
    /// is closed under the TM: before the prepared record was appended, presumed abort holds; after, the
    /// close made it durable, and the message says the transaction stays in doubt. Like
    /// ``Transaction/commit()``, it appends off Swift's cooperative pool when an append may wait.
    public func prepare() async throws -> Vote { try await tm.superiorPrepare(txn) }

    /// Commits a prepared (or in-doubt) transaction: forces the decision, sends commit, and returns once
    /// every participant acknowledged, or its RM closed (it gets the commit when it recovers). Throws
    /// `invalid-state` while ``prepare()`` is still writing its prepared record or another `commit()` its
    /// decision (a retried commit: the transaction is committing), and `closed` when the
    /// log is closed under the TM (as ``Transaction/commit()`` does: once the decision is durable it
    /// committed, and the message says so). Like ``Transaction/commit()``, it appends off Swift's
    /// cooperative pool when an append may wait.
    public func commit() async throws {
        try tm.lock.withLock {
            if txn.detached { throw txn.closedError }
            guard txn.state == .prepared || txn.state == .inDoubt else {
                throw LogError(.invalidState, "transaction \(txn.id) is \(txn.state); prepare it first")
            }
            if txn.forcing { throw TransactionManager.beingResolvedError(txn) }
            if txn.recordInFlight { throw Self.preparedRecordInFlightError(txn) }
        }
        try await tm.decideCommit(txn)
        if let logClosed = await tm.waitEnd(txn, orOnlyClosedRMsOwe: true).logClosed { throw logClosed }
    }

    /// Rolls back (at any point before the decision), logging an abort record if the transaction was
    /// logged as prepared. Throws `invalid-state` while ``prepare()`` is writing its prepared record
    /// (retry once it returns).
    public func rollback() throws {
        let fx: TransactionManager.Effects = try tm.lock.withLock {
            if txn.detached { throw txn.closedError }
            if txn.forcing { throw TransactionManager.beingResolvedError(txn) }
            // Prepared in memory, its prepared record not yet in the log: an abort and end record
            // appended now could land before it, and recovery would take that later prepared record for
            // a new in-doubt transaction, after every participant rolled back.
            if txn.recordInFlight, txn.outcome == .undetermined { throw Self.preparedRecordInFlightError(txn) }
            // Its commit decision is being written (a concurrent `commit()`): too late to roll back.
            if txn.outcome == .committed { throw LogError(.invalidState, "transaction \(txn.id) already committed; it cannot be rolled back") }
            switch txn.state {
            case .active, .prePreparing, .preparing, .prepared, .inDoubt:
                var fx = tm.outcomeLocked(txn, .aborted)
                if txn.logged { fx.records.insert(.outcome(txn.loggedForm), at: 0) }
                return fx
            case .aborting, .aborted: return .init()
            default: throw LogError(.invalidState, "transaction \(txn.id) is \(txn.state)")
            }
        }
        tm.perform(fx)
    }

    /// Waits until every participant acknowledged the outcome.
    public func waitForOutcome() async -> Outcome { await tm.waitFinished(txn) }

    static func preparedRecordInFlightError(_ txn: TxnCore) -> LogError {
        LogError(.invalidState, "transaction \(txn.id): its prepared record is being written; retry once prepare() returns")
    }
}

extension TransactionManager {
    func enlistSuperior(_ txn: TxnCore, onRequestOutcome: (@Sendable (GUID) -> Void)?) throws -> SuperiorEnlistment {
        try lock.withLock {
            try requireOnline()
            guard txn.superior == nil, !txn.hasSuperior else { throw LogError(.invalidState, "transaction \(txn.id) already has a superior") }
            guard txn.state == .active else { throw LogError(.invalidState, "transaction \(txn.id) is \(txn.state), not active") }
            let s = SuperiorEnlistment(tm: self, txn: txn, onRequestOutcome: onRequestOutcome)
            txn.superior = s
            return s
        }
    }

    /// Re-attaches a superior to a transaction recovered in doubt (or still prepared).
    public func superior(for id: GUID, onRequestOutcome: (@Sendable (GUID) -> Void)? = nil) throws -> SuperiorEnlistment {
        try lock.withLock {
            try requireOnline()
            guard let txn = transactions[id] else { throw LogError(.notFound, "no transaction \(id)") }
            if let s = txn.superior { return s }
            guard txn.hasSuperior else { throw LogError(.invalidState, "transaction \(id) has no superior") }
            let s = SuperiorEnlistment(tm: self, txn: txn, onRequestOutcome: onRequestOutcome)
            txn.superior = s
            return s
        }
    }

    func superiorPrepare(_ txn: TxnCore) async throws -> Vote {
        let fresh = try lock.withLock { () -> Bool in
            if txn.detached { throw txn.closedError }
            // One driver at a time: a second prepare (or a prepare during `prePrepare()`) would run its
            // phase over the first one's and vote without every participant's answer.
            if txn.superiorDriving {
                throw LogError(.invalidState, "transaction \(txn.id): the superior's pre-prepare or prepare is already running; await it")
            }
            let fresh: Bool
            switch txn.state {
            case .active:
                txn.state = .prePreparing
                fresh = true
            case .prePreparing, .preparing: fresh = false  // after `prePrepare()`, or a prepare that was cut short
            default: throw LogError(.invalidState, "transaction \(txn.id) is \(txn.state)")
            }
            txn.superiorDriving = true
            return fresh
        }
        defer { lock.withLock { txn.superiorDriving = false } }
        if fresh {
            try await runPhase(txn, .prePrepare, txnState: .prePreparing) { $0.state == .active && $0.mask.contains(.prePrepare) }
        }
        try await runPhase(txn, .prepare, txnState: .preparing) { ($0.state == .active || $0.state == .prePrepared) && $0.mask.contains(.prepare) }
        let (record, readOnly, wasLogged, floor): (TMRecord?, Effects?, Bool, LSN) = try lock.withLock {
            guard !txn.cutShort else { throw txn.stopError }
            // Every participant read-only: committed in this same hold of the lock. Decided in a second
            // one, a timeout, a rollback or a closed enlistment let in between rolled the transaction back
            // (outcome-only participants got `rollback`) and the commit then overwrote that outcome.
            if !txn.enlistments.contains(where: { $0.state == .prepared }) { return (nil, outcomeLocked(txn, .committed), txn.logged, .null) }
            let before = txn.logged ? txn.loggedForm : nil
            txn.state = .prepared
            let wasLogged = txn.logged
            let logged = txn.enlistments.contains { $0.isLogged }
            guard logged else { return (nil, nil, wasLogged, .null) }
            txn.logged = true
            return (.prepared(txn.loggedForm), nil, wasLogged, stream == nil ? .null : beginRecordLocked(txn, before: before))
        }
        if let readOnly {
            afterVotesCountedForTesting?()
            await offPoolIfAppendMayWait { perform(readOnly) }
            return .readOnly
        }
        if let record, let stream {
            let lsn: LSN
            do { lsn = try await offPoolIfAppendMayWait { () throws(any Error) -> LSN in try append(record) } } catch {
                throw await offPoolIfAppendMayWait { rollBackUnlogged(txn, wasLogged: wasLogged, record: "prepared", floor: floor, error) }
            }
            lock.withLock { endRecordLocked(txn, floor) }
            afterPreparedAppendForTesting?()
            do {
                try await stream.flush(upTo: lsn)
            } catch let e as LogError where e.code == .closed {
                // The log closed under the TM after the append: its close flushed everything, so the
                // record is durable and recovery finds the transaction prepared, in doubt. Said so, as
                // `decideCommit` does for a decision, rather than a bare "the log is closed".
                guard let log, lsn <= log.durableLSN else { throw e }
                throw LogError(.closed, "the log was closed during the prepare of transaction \(txn.id), after its prepared record was durable: it is prepared, and stays in doubt until its superior or `txlog tm resolve` decides once the log is opened again and the transaction manager recovers", lsn: lsn)
            }
        }
        return .prepared
    }
}
