// An enlistment: one resource manager's part in one transaction, and how the RM answers notifications.

import LogStore
import Synchronization

/// The link between a resource manager and a transaction. The RM answers each notification through
/// its enlistment; an answer that was not asked for throws `invalid-state`.
///
/// An RM need not keep its enlistments once it has acknowledged the outcome. One it keeps holds its
/// transaction in memory (not the transaction's other participants) until it is released.
public final class Enlistment: @unchecked Sendable, CustomStringConvertible {
    /// The enlistment's identity (logged with the transaction, stable across recovery).
    public let id: GUID
    /// The transaction's identity.
    public let transactionID: GUID
    /// The owning resource manager's identity.
    public let resourceManagerID: GUID
    /// The notifications this enlistment receives (normalized, see ``NotificationMask/normalized``).
    public let mask: NotificationMask
    let tm: TransactionManager
    let txn: TxnCore

    // Guarded by tm.lock.
    var rm: ResourceManager?
    var state: EnlistmentState
    var recoveryInfo: [UInt8] = []
    /// The notification whose answer is awaited.
    var expecting: TransactionNotification.Kind?
    var acknowledged = false
    /// Notifications of this enlistment taken for the RM's handler and not yet handled: the one being
    /// delivered and those waiting in `undelivered` (see ``TransactionManager/deliverInTurn(_:_:_:)``).
    /// Raised under `tm.lock`; lowered by the delivering thread without it, so the common case (nothing
    /// queued meanwhile) costs one atomic operation after the handler, not another hold of the lock.
    let inTurn = Atomic<Int>(0)
    /// Each with the RM it was addressed to: the RM may have closed and been opened again (a new
    /// object) since, and what was meant for the new one must not reach the old one's handler.
    var undelivered: [(TransactionNotification, ResourceManager)] = []
    /// The RM is durable: a prepared enlistment is logged.
    let durable: Bool

    init(id: GUID, txn: TxnCore, rm: ResourceManager?, rmID: GUID, mask: NotificationMask, durable: Bool, state: EnlistmentState,
         tm: TransactionManager) {
        self.id = id
        self.txn = txn
        self.transactionID = txn.id
        self.rm = rm
        self.resourceManagerID = rmID
        self.mask = mask
        self.durable = durable
        self.state = state
        self.tm = tm
    }

    public var description: String { "enlistment \(id) of tx \(transactionID)" }

    /// The enlistment's state now.
    public var currentState: EnlistmentState { tm.lock.withLock { state } }

    /// The recovery information last set (returned in the recover notification after a restart).
    public var recoveryInformation: [UInt8] { tm.lock.withLock { recoveryInfo } }

    /// Sets the opaque blob the TM logs with this enlistment when the transaction is prepared or
    /// committed, and returns to the RM in ``TransactionNotification/Kind/recover``. Replaces any earlier blob.
    public func setRecoveryInformation(_ bytes: [UInt8]) throws {
        guard bytes.count <= TMLimits.maxRecoveryInformation else {
            throw LogError(.invalidArgument, "recovery information of \(bytes.count) bytes exceeds \(TMLimits.maxRecoveryInformation)")
        }
        try tm.lock.withLock {
            switch state {
            case .prepared, .committing, .committed, .aborting, .aborted, .closed, .inDoubt, .recovering:
                throw LogError(.invalidState, "\(self): recovery information is fixed once prepared")
            default: recoveryInfo = bytes
            }
        }
    }

    // MARK: Answers

    /// Answers ``TransactionNotification/Kind/prePrepare``.
    public func prePrepareComplete() throws { try tm.answer(self, .prePrepareComplete) }

    /// Answers ``TransactionNotification/Kind/prepare``: the RM's prepare record is appended to its stream. When
    /// that stream is in the TM's log (always, for a durable RM) it need not be flushed first: the TM's
    /// forced decision record comes later in the same log, so its flush makes the prepare record
    /// durable too. After this the RM can no longer roll back on its own.
    public func prepareComplete() throws { try tm.answer(self, .prepareComplete) }

    /// Answers ``TransactionNotification/Kind/commit`` or ``TransactionNotification/Kind/singlePhaseCommit``.
    public func commitComplete() throws { try tm.answer(self, .commitComplete) }

    /// Answers ``TransactionNotification/Kind/rollback``.
    public func rollbackComplete() throws { try tm.answer(self, .rollbackComplete) }

    /// Leaves the transaction without voting: no more notifications, nothing logged. Allowed until
    /// the point where ``prepareComplete()`` would be called.
    public func readOnly() throws { try tm.answer(self, .readOnly) }

    /// Answers ``TransactionNotification/Kind/singlePhaseCommit`` by refusing it; the TM runs a two-phase commit.
    public func singlePhaseReject() throws { try tm.answer(self, .singlePhaseReject) }

    /// Vetoes the transaction (any time before ``prepareComplete()`` and before the commit is decided):
    /// it rolls back. During a single-phase commit only the enlistment that got it may veto.
    public func rollback() throws { try tm.answer(self, .veto) }

    /// Vetoes the transaction and says why: the client's ``Transaction/commit()`` throws `reason`
    /// (a `conflict`, say, so the client knows to retry) instead of a plain `aborted`.
    public func rollback(reason: LogError) throws {
        tm.lock.withLock { if txn.abortReason == nil, txn.mayVeto(self) { txn.abortReason = reason } }
        try tm.answer(self, .veto)
    }

    /// Answers ``TransactionNotification/Kind/recover``: the TM then sends the outcome (commit, rollback or in-doubt).
    public func recover() throws { try tm.answer(self, .recover) }

    /// After ``prepareComplete()``, asks for the outcome now. A decided outcome is sent again; an
    /// undecided transaction without a superior that has not finished preparing is rolled back; with a
    /// superior, the superior's request-outcome handler is called. Returns the outcome known now.
    @discardableResult
    public func requestOutcome() throws -> Outcome { try tm.requestOutcome(self) }

    /// Closes the enlistment. Before the transaction is prepared this rolls it back. Prepared (or owed
    /// an outcome) it changes nothing: the outcome is still sent. Closed without answering a
    /// single-phase commit, the outcome is the RM's: ``Transaction/commit()`` throws `closed` saying so.
    /// One that takes only the outcome (no prepare in its mask) closed once the transaction can no
    /// longer roll back leaves it, as a read-only one does.
    public func close() { tm.closeEnlistment(self) }

    /// Claims the delivery of `n` to `rm`'s handler for the calling thread (true), or queues it behind
    /// the one being delivered (false: that thread delivers it next). Holds `tm.lock`.
    func takeTurnLocked(_ n: TransactionNotification, for rm: ResourceManager) -> Bool {
        // Queued under the lock before the delivering thread can take the lock to fetch it (it does so
        // only after seeing the count this raised).
        guard inTurn.add(1, ordering: .acquiringAndReleasing).oldValue == 0 else {
            undelivered.append((n, rm))
            return false
        }
        return true
    }

    /// After the handler returned: whether a notification was queued meanwhile (the turn goes on) or
    /// not (it ends). Without the lock.
    func turnGoesOn() -> Bool {
        inTurn.subtract(1, ordering: .acquiringAndReleasing).newValue > 0
    }

    /// The next queued notification, once ``turnGoesOn()`` said there is one. Holds `tm.lock`.
    func nextTurnLocked() -> (TransactionNotification, ResourceManager) { undelivered.removeFirst() }

    /// Closed by the RM (the enlistment, or the whole RM): nothing more is sent to it, and nothing is
    /// owed to it. Holds `tm.lock`.
    func leaveLocked() {
        state = .closed
        expecting = nil
        acknowledged = true
    }

    /// Prepared, in doubt, or waiting to acknowledge an outcome: what closing its RM leaves owed.
    var isOwedLaterOutcome: Bool {
        switch state {
        case .prepared, .committing, .aborting, .inDoubt, .recovering: true
        default: false
        }
    }

    /// Its volatile RM closed: it will never acknowledge, and there is nothing to send it again.
    /// Counts as acknowledged; finishing the transaction if it was the last one owed. Holds `tm.lock`.
    func dropOwedOutcomeLocked(_ fx: inout TransactionManager.Effects) {
        // Counted in `unacknowledged` once the outcome has gone out (`outcomeLocked`), not before.
        let counted = txn.state == .committing || txn.state == .aborting
        state = .closed
        expecting = nil
        acknowledged = true
        guard counted else { return }
        txn.unacknowledged -= 1
        if txn.unacknowledged == 0 { tm.finishLocked(txn, into: &fx) }
    }

    var isLogged: Bool {
        durable && (state == .prepared || state == .committing || state == .committed || state == .aborting || state == .recovering
            || state == .inDoubt || (state == .aborted && txn.logged))
    }

    var loggedForm: LoggedEnlistment {
        LoggedEnlistment(id: id, rm: resourceManagerID, mask: mask.rawValue, acknowledged: acknowledged, recoveryInformation: recoveryInfo)
    }
}

/// An RM's answer to a notification.
enum Answer: String {
    case prePrepareComplete = "pre-prepare-complete"
    case prepareComplete = "prepare-complete"
    case commitComplete = "commit-complete"
    case rollbackComplete = "rollback-complete"
    case readOnly = "read-only"
    case singlePhaseReject = "single-phase-reject"
    case veto = "rollback"
    case recover = "recover"
}
