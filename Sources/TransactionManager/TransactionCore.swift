// The TM's internal record of one transaction. Every field is guarded by the TM's lock.

import LogStore

final class TxnCore: @unchecked Sendable {
    let id: GUID
    var description: String
    var state: TransactionState = .active
    var outcome: Outcome = .undetermined
    var enlistments: [Enlistment] = []
    var superior: SuperiorEnlistment?
    /// Recovered with a superior flag (the superior object re-attaches later).
    var hasSuperior = false
    /// Open ``Transaction`` handles; the last one closing before commit rolls back.
    var handles = 0
    /// The TM stream holds a record of this transaction, so an end record is owed.
    var logged = false
    /// Rebuilt by recovery (not created in this process).
    var recovered = false
    /// Answers still expected in the current phase.
    var pending = 0
    /// The commit driver waiting for the phase to finish.
    var phaseWaiter: CheckedContinuation<Void, Never>?
    /// Set when the transaction is rolled back while a phase runs, or when the TM closes under it.
    var cutShort = false
    /// The TM closed (or was terminated) before the transaction finished. It is left to recovery as
    /// the log has it: nothing more is sent, logged or waited for, and every call on it throws `closed`.
    var detached = false
    /// It was detached because the log was closed under the TM, not by the TM's own close: a commit
    /// whose decision is durable then throws ``closedError`` rather than return (nothing tells its
    /// participants before the log is opened again).
    var logClosed = false
    /// The record reporting the latest change (a decision, or a superior's prepared record) is being
    /// appended: a checkpoint writes ``formBeforeRecord`` instead (nil: leaves the transaction out), and
    /// `resolve` waits for it to land. See ``TransactionManager/beginRecordLocked(_:before:)``.
    var recordInFlight = false
    var formBeforeRecord: LoggedTransaction?
    /// A `resolve` is appending its forced record; the outcome changes only once it is in the log, and
    /// the superior's commit and rollback (and another resolve) are refused meanwhile.
    var forcing = false
    /// Outcome acknowledgements still expected (commit-complete or rollback-complete).
    var unacknowledged = 0
    /// Tasks waiting for the transaction to finish.
    var finishWaiters: [CheckedContinuation<Void, Never>] = []
    var timeoutTask: Task<Void, Never>?
    /// Why a participant vetoed (``Enlistment/rollback(reason:)``); commit throws it.
    var abortReason: LogError?
    let createdNanos = monotonicNanos()

    init(id: GUID, description: String) {
        self.id = id
        self.description = description
    }

    var abortError: LogError { abortReason ?? LogError(.aborted, "transaction \(id) was rolled back") }

    /// Why a commit driver stopped when ``cutShort`` was set: the rollback's reason, or the TM's close.
    var stopError: LogError { detached ? closedError : abortError }

    /// What a single-phase commit throws when its RM closed before answering: the outcome is unknown here.
    var singlePhaseLostError: LogError {
        LogError(.closed, "the resource manager closed (or closed its enlistment) during the single-phase commit of transaction \(id): the outcome is the resource manager's and is not known here")
    }

    /// What a call on a transaction whose TM closed under it throws: what recovery will make of it.
    var closedError: LogError {
        let fate: String
        switch (outcome, state) {
        case (.committed, _): fate = "it committed; participants that did not acknowledge get the commit again at recovery"
        case (.aborted, _): fate = "it rolled back; participants that did not acknowledge get the rollback again at recovery"
        case (_, .committingSinglePhase): fate = "its single-phase commit was with its resource manager, which decides the outcome"
        case (_, .prepared), (_, .inDoubt): fate = "it is prepared and stays in doubt until its superior or `txlog tm resolve` decides"
        default: fate = "recovery rolls it back (presumed abort)"
        }
        if logClosed {
            return LogError(.closed, "the log was closed under the transaction manager before transaction \(id) finished: \(fate)")
        }
        return LogError(.closed, "the transaction manager closed before transaction \(id) finished: \(fate)")
    }

    /// Drops the links to the participants once nothing can ask for them: the transaction is finished
    /// or detached (out of the TM's table either way) and its last ``Transaction`` handle is closed.
    /// Each enlistment (and a superior) points back at its transaction, so keeping the links would be a
    /// reference cycle that holds every finished transaction in memory for the life of the process. An
    /// RM that still holds an enlistment keeps the transaction itself alive, not its other participants.
    func releaseParticipantsIfDoneLocked() {
        guard handles == 0, isFinished || detached || state == .failed else { return }
        enlistments = []
        superior = nil
    }

    var isFinished: Bool { state == .committed || state == .aborted }

    /// The outcome is decided and the acknowledgements still owed are all from RMs that are not open:
    /// closed, or not opened again since recovery. Each gets the outcome when its RM recovers.
    var onlyClosedRMsOweAcknowledgement: Bool {
        guard state == .committing || state == .aborting else { return false }  // outcome decided and sent
        return !enlistments.contains { !$0.acknowledged && $0.expecting != nil }
    }

    /// Not yet prepared and not decided: rollback, vetoes, timeouts and closing handles or enlistments
    /// may still abort it. (While the commit decision is being written the state is still `preparing`
    /// but the outcome is already `committed`: an abort then would roll back participants of a
    /// transaction that commits.)
    var canAbort: Bool {
        guard outcome == .undetermined else { return false }
        switch state {
        case .active, .prePreparing, .preparing: return true
        default: return false
        }
    }

    /// During a single-phase commit the outcome is the RM's: only its own answer may veto.
    func mayVeto(_ e: Enlistment) -> Bool {
        canAbort || (state == .committingSinglePhase && e.expecting == .singlePhaseCommit)
    }

    /// A superior's `prePrepare()` or `prepare()` is running; another is refused until it returns.
    var superiorDriving = false

    /// The logged enlistments' logged forms, built in one pass (one array, no intermediate).
    private var loggedEnlistments: [LoggedEnlistment] {
        var out: [LoggedEnlistment] = []
        out.reserveCapacity(enlistments.count)
        for e in enlistments where e.isLogged { out.append(e.loggedForm) }
        return out
    }

    var loggedForm: LoggedTransaction {
        LoggedTransaction(
            id: id, outcome: outcome, superior: hasSuperior || superior != nil, description: description,
            enlistments: loggedEnlistments)
    }
}

/// What an enlistment is doing. Guarded by the TM's lock.
public enum EnlistmentState: String, Sendable, CustomStringConvertible {
    /// Enlisted; the transaction is doing its work.
    case active
    /// Pre-prepare sent; its answer is awaited.
    case prePreparing = "pre-preparing"
    /// Answered pre-prepare; prepare comes next.
    case prePrepared = "pre-prepared"
    /// Prepare sent; its vote is awaited.
    case preparing
    /// Voted yes: its work is durable; the outcome is awaited.
    case prepared
    /// Single-phase commit sent: the RM decides the outcome.
    case singlePhase = "single-phase"
    /// Answered read-only: it changed nothing and gets no outcome.
    case readOnly = "read-only"
    /// Commit sent; its acknowledgement is awaited.
    case committing
    /// Committed and acknowledged.
    case committed
    /// Rollback sent; its acknowledgement is awaited.
    case aborting
    /// Rolled back and acknowledged (or owed nothing).
    case aborted
    /// Rebuilt by recovery; its RM has not recovered yet.
    case recovering
    /// Prepared under a superior that has not decided: waits for its decision or a forced outcome.
    case inDoubt = "in-doubt"
    /// Its RM closed: nothing more is sent to this enlistment.
    case closed
    public var description: String { rawValue }
}

/// A copy of a transaction's state, for inspection (`txlog tm transactions`).
public struct TransactionSnapshot: Sendable, Equatable {
    /// One enlistment of the transaction.
    public struct Participant: Sendable, Equatable {
        /// The enlistment's id.
        public var enlistment: GUID
        /// The RM that enlisted.
        public var resourceManager: GUID
        /// The notifications it asked for.
        public var mask: NotificationMask
        /// Where it is in the protocol.
        public var state: EnlistmentState
        /// Whether it has acknowledged the outcome (or can no longer be owed it).
        public var acknowledged: Bool
        /// Size of the recovery information it set.
        public var recoveryInformationBytes: Int
    }
    /// The transaction's id.
    public var id: GUID
    /// The description given at creation.
    public var description: String
    /// Where it is in the protocol.
    public var state: TransactionState
    /// Its outcome, once decided.
    public var outcome: Outcome
    /// Whether an external coordinator (a superior enlistment) decides it.
    public var superior: Bool
    /// Whether recovery rebuilt it from the log.
    public var recovered: Bool
    /// Seconds since this process created (or recovered) it.
    public var ageSeconds: Double
    /// Its enlistments.
    public var participants: [Participant]
}

extension TxnCore {
    var snapshot: TransactionSnapshot {
        TransactionSnapshot(
            id: id, description: description, state: state, outcome: outcome, superior: hasSuperior || superior != nil,
            recovered: recovered, ageSeconds: Double(monotonicNanos() &- createdNanos) / 1e9,
            participants: enlistments.map {
                .init(enlistment: $0.id, resourceManager: $0.resourceManagerID, mask: $0.mask, state: $0.state, acknowledged: $0.acknowledged,
                      recoveryInformationBytes: $0.recoveryInfo.count)
            })
    }
}
