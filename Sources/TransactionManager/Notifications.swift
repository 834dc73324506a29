// Public vocabulary: outcomes, states, notification masks and notifications.

/// A transaction's outcome.
public enum Outcome: UInt8, Sendable, CustomStringConvertible {
    /// Not decided yet (or decided and not durable: after a crash, presumed aborted).
    case undetermined = 0
    /// Committed.
    case committed = 1
    /// Rolled back.
    case aborted = 2
    public var description: String {
        switch self {
        case .undetermined: "undetermined"
        case .committed: "committed"
        case .aborted: "aborted"
        }
    }
}

/// Where a transaction is in its life.
public enum TransactionState: String, Sendable, CustomStringConvertible {
    /// Created; work is being done; enlistments are accepted.
    case active
    /// Commit started; pre-prepare notifications are out.
    case prePreparing = "pre-preparing"
    /// Prepare notifications are out.
    case preparing
    /// Every participant voted yes; waiting for a superior's decision (or for the decision record).
    case prepared
    /// Prepared, recovered after a crash, with a superior and no decision: waits to be resolved.
    case inDoubt = "in-doubt"
    /// The single-phase commit notification is out.
    case committingSinglePhase = "committing-single-phase"
    /// Commit is decided and durable; commit notifications are out.
    case committing
    /// Committed, and every participant acknowledged.
    case committed
    /// Rollback notifications are out.
    case aborting
    /// Rolled back, and every participant acknowledged (or nobody was owed anything).
    case aborted
    /// The decision record could not be made durable because the log failed (recovery decides), or
    /// the RM of a single-phase commit closed before answering it (the outcome is that RM's).
    case failed
    public var description: String { rawValue }
}

/// Which notifications an enlistment receives. ``normalized`` applies KTM's implications.
public struct NotificationMask: OptionSet, Sendable, Hashable, CustomStringConvertible {
    /// The bits: KTM's `TRANSACTION_NOTIFY_*` values for the phases TxLog has.
    public let rawValue: UInt32
    /// A mask of the given bits (unknown bits are ignored by ``normalized``).
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Pre-prepare: flush caches before prepare starts.
    public static let prePrepare = NotificationMask(rawValue: 0x1)
    /// Prepare: vote, after making the work durable.
    public static let prepare = NotificationMask(rawValue: 0x2)
    /// Commit: make the work visible.
    public static let commit = NotificationMask(rawValue: 0x4)
    /// Rollback: undo the work (always delivered).
    public static let rollback = NotificationMask(rawValue: 0x8)
    /// Single-phase commit: the only participant decides the outcome itself.
    public static let singlePhaseCommit = NotificationMask(rawValue: 0x200)

    /// Every phase of a two-phase commit.
    public static let twoPhase: NotificationMask = [.prePrepare, .prepare, .commit, .rollback]
    /// Every phase, and single-phase commit when this is the only writer.
    public static let all: NotificationMask = [.prePrepare, .prepare, .commit, .rollback, .singlePhaseCommit]

    static let known: NotificationMask = all

    /// The mask with KTM's rules applied: rollback is always delivered; prepare implies commit;
    /// pre-prepare implies prepare and commit; single-phase commit implies prepare and commit.
    public var normalized: NotificationMask {
        var m = intersection(.known)
        m.insert(.rollback)
        if m.contains(.prePrepare) || m.contains(.singlePhaseCommit) { m.formUnion([.prepare, .commit]) }
        if m.contains(.prepare) { m.insert(.commit) }
        return m
    }

    public var description: String {
        var parts: [String] = []
        if contains(.prePrepare) { parts.append("pre-prepare") }
        if contains(.prepare) { parts.append("prepare") }
        if contains(.commit) { parts.append("commit") }
        if contains(.rollback) { parts.append("rollback") }
        if contains(.singlePhaseCommit) { parts.append("single-phase") }
        return parts.isEmpty ? "none" : parts.joined(separator: "|")
    }
}

/// A notification to a resource manager. Every notification but ``Kind/tmOnline`` and
/// ``Kind/recoveryComplete`` concerns one enlistment, which is also how the RM answers.
public struct TransactionNotification: Sendable, CustomStringConvertible {
    /// What the RM is asked to do, or told.
    public enum Kind: String, Sendable, CaseIterable {
        /// Flush caches; answer ``Enlistment/prePrepareComplete()``.
        case prePrepare = "pre-prepare"
        /// Make the transaction's work durable (append a prepare record to the RM's stream; no flush is
        /// needed when the stream is in the TM's log); answer ``Enlistment/prepareComplete()``.
        case prepare
        /// Make the work permanent; answer ``Enlistment/commitComplete()``. May arrive more than once.
        case commit
        /// Undo the work; answer ``Enlistment/rollbackComplete()``. May arrive more than once.
        case rollback
        /// This is the only writer: commit on your own; answer ``Enlistment/commitComplete()`` or
        /// ``Enlistment/singlePhaseReject()``.
        case singlePhaseCommit = "single-phase-commit"
        /// Recovery found this enlistment owed an outcome. ``TransactionNotification/recoveryInformation`` holds the
        /// blob set with ``Enlistment/setRecoveryInformation(_:)``; answer ``Enlistment/recover()``.
        case recover
        /// The outcome is unknown until a superior or an operator resolves it; hold the locks.
        case inDoubt = "in-doubt"
        /// Every recover notification for this RM has been sent.
        case recoveryComplete = "recovery-complete"
        /// The TM and this RM are online: enlistments are accepted.
        case tmOnline = "tm-online"
    }

    /// What the RM is asked to do, or told.
    public var kind: Kind
    /// The enlistment concerned (nil for ``Kind/tmOnline`` and ``Kind/recoveryComplete``).
    public var enlistment: Enlistment?
    /// The transaction concerned (nil for ``Kind/tmOnline`` and ``Kind/recoveryComplete``).
    public var transactionID: GUID?
    /// The enlistment's recovery information (for ``Kind/recover``, and whatever was last set otherwise).
    public var recoveryInformation: [UInt8]
    /// The TM's virtual clock when the notification was sent.
    public var clock: UInt64

    public var description: String {
        var s = kind.rawValue
        if let transactionID { s += " tx \(transactionID)" }
        if let enlistment { s += " enlistment \(enlistment.id)" }
        return s
    }
}
