// The client's handle on a transaction.

import LogStore
import Synchronization

/// A handle on a transaction. Closing the last handle (or dropping it) before commit rolls the
/// transaction back, as in KTM.
public final class Transaction: @unchecked Sendable, CustomStringConvertible {
    let core: TxnCore
    let tm: TransactionManager
    /// Set by the first close (an atomic rather than a lock object: one allocation less per transaction).
    private let closed = Atomic<Bool>(false)

    init(core: TxnCore, tm: TransactionManager) {
        self.core = core
        self.tm = tm
    }

    deinit { closeHandle() }

    /// The transaction's identity (its unit-of-work id).
    public var id: GUID { core.id }
    public var description: String { "transaction \(core.id)" }
    /// The description given at creation (logged with the transaction).
    public var transactionDescription: String { tm.lock.withLock { core.description } }
    /// Where the transaction is in its life now.
    public var state: TransactionState { tm.lock.withLock { core.state } }
    /// The outcome now (`undetermined` until decided).
    public var outcome: Outcome { tm.lock.withLock { core.outcome } }
    /// A copy of the transaction's state and participants.
    public var snapshot: TransactionSnapshot { tm.lock.withLock { core.snapshot } }

    /// Commits: pre-prepare, prepare, a forced decision record, commit notifications. Returns once
    /// every participant has acknowledged the commit, or its RM closed: a durable RM gets the commit
    /// again when it is opened and recovered (``waitForOutcome()`` waits for that too).
    ///
    /// - Throws: `aborted` if the transaction rolled back instead (a veto, a timeout, a rollback);
    ///   `invalid-state` if a superior coordinates it or commit already started; `failed` if the log
    ///   failed before the decision was durable (recovery then decides; the outcome is unknown here),
    ///   or before every participant answered prepare (the transaction is rolled back). A commit whose
    ///   decision is durable returns even if the log fails before every participant acknowledged;
    ///   `closed` if the TM closed first, or the RM of a single-phase commit closed before answering, or
    ///   the log was closed under the TM (which stops it, as a terminate does): before the decision was
    ///   appended, the transaction rolled back; after, the decision is durable (the close flushed it), so
    ///   it committed (``outcome`` says so, and the message), also when the log closed while the commit
    ///   waited for acknowledgements, and its participants get the commit when the log is opened again
    ///   and the TM recovers.
    ///
    /// Never holds a thread of Swift's cooperative pool while an append waits: when the log says an
    /// append may wait (back-pressure, or a log near full, which flushes, grows or runs the tail-pinned
    /// handlers), each step that appends (delivering a phase's notifications, whose handlers append, and
    /// the TM's own records) runs on a thread of its own while this task is suspended. The hint has a
    /// margin; docs/TRANSACTIONS.md, "Commits and Swift's cooperative pool", says what it covers.
    public func commit() async throws { try await tm.commit(core) }

    /// Rolls back. Allowed until the transaction is prepared or its commit is decided (`invalid-state`
    /// after that). Returns once the rollback decision is made (rollback notifications are sent;
    /// acknowledgements are not awaited).
    public func rollback() throws { try tm.rollback(core, reason: "rollback requested") }

    /// Waits until the transaction finishes (committed or aborted, every participant acknowledged),
    /// its log fails or closes or its TM closes, and returns the outcome (`undetermined` if none was decided).
    public func waitForOutcome() async -> Outcome { await tm.waitFinished(core) }

    /// Makes an external coordinator the transaction's superior: it, not ``commit()``, then drives
    /// the phases. At most one per transaction.
    public func enlistSuperior(onRequestOutcome: (@Sendable (GUID) -> Void)? = nil) throws -> SuperiorEnlistment {
        try tm.enlistSuperior(core, onRequestOutcome: onRequestOutcome)
    }

    /// Closes this handle. If it was the last one and commit has not started, the transaction rolls back.
    public func close() { closeHandle() }

    private func closeHandle() {
        let wasClosed = closed.exchange(true, ordering: .acquiringAndReleasing)
        if !wasClosed { tm.handleClosed(core) }
    }
}

extension TransactionManager {
    /// Creates a transaction.
    ///
    /// - Parameters:
    ///   - id: the transaction's identity (random by default).
    ///   - description: free text kept with the transaction, at most ``TMLimits/maxDescription`` bytes.
    ///   - timeout: rolls the transaction back if it has not prepared by then. A prepared or
    ///     in-doubt transaction never times out. One longer than 2³² seconds (some 136 years: it could
    ///     never fire) sets none.
    public func createTransaction(id: GUID = .random(), description: String = "", timeout: Duration? = nil) throws -> Transaction {
        guard description.utf8.count <= TMLimits.maxDescription else {
            throw LogError(.invalidArgument, "description longer than \(TMLimits.maxDescription) bytes")
        }
        let core = TxnCore(id: id, description: description)
        try lock.withLock {
            try requireOnline()
            guard transactions[id] == nil else { throw LogError(.alreadyExists, "transaction \(id) already exists") }
            core.handles = 1
            transactions[id] = core
        }
        // Longer than the clock can count, the sleep below trapped (the whole process) on the overflow.
        if let timeout, timeout <= Self.longestTimeout {
            let task = Task.detached { [weak self, weak core] in
                try? await Task.sleep(for: timeout)
                guard !Task.isCancelled, let self, let core else { return }
                try? self.rollback(core, reason: "timed out after \(timeout)")
            }
            // Stored under the lock, like every other access to it: another handle (`openTransaction`) may
            // already have finished the transaction, which cancels and clears `timeoutTask` under the lock.
            let stored = lock.withLock { () -> Bool in
                guard transactions[id] === core else { return false }
                core.timeoutTask = task
                return true
            }
            if !stored { task.cancel() }
        }
        return Transaction(core: core, tm: self)
    }

    /// The longest transaction timeout that is set: far beyond any process's life, and well within what
    /// the continuous clock can count from now.
    static let longestTimeout = Duration.seconds(Int64(1) << 32)

    /// Opens another handle on a live transaction (a resource manager given the transaction's id, say).
    public func openTransaction(id: GUID) throws -> Transaction {
        let core: TxnCore = try lock.withLock {
            guard let c = transactions[id] else { throw LogError(.notFound, "no transaction \(id)") }
            c.handles += 1
            return c
        }
        return Transaction(core: core, tm: self)
    }

    /// Copies of every transaction the TM knows: live ones and recovered ones still owed work.
    public func transactionSnapshots() -> [TransactionSnapshot] {
        lock.withLock { transactions.values.map(\.snapshot) }.sorted { $0.id < $1.id }
    }

    /// Transactions that wait for a superior or an operator (see ``resolve(_:action:actor:reason:)``).
    public func inDoubtTransactions() -> [TransactionSnapshot] {
        transactionSnapshots().filter { $0.state == .inDoubt || ($0.state == .prepared && $0.superior) }
    }

    func handleClosed(_ txn: TxnCore) {
        let abort = lock.withLock { () -> Bool in
            txn.handles -= 1
            txn.releaseParticipantsIfDoneLocked()
            return txn.handles == 0 && txn.state == .active && txn.superior == nil
        }
        if abort { try? rollback(txn, reason: "the last transaction handle was closed") }
    }

    func enlist(rm: ResourceManager, txn: TxnCore, mask: NotificationMask, id: GUID) throws -> Enlistment {
        try lock.withLock {
            try requireOnline()
            guard rm.state == .online else { throw LogError(.notOnline, "resource manager \(rm.id) is \(rm.state.rawValue); recover it first") }
            guard txn.state == .active else { throw LogError(.invalidState, "transaction \(txn.id) is \(txn.state), not active") }
            let e = Enlistment(id: id, txn: txn, rm: rm, rmID: rm.id, mask: mask, durable: !rm.isVolatile && !isVolatile, state: .active, tm: self)
            // Room for a few participants up front: one allocation instead of one per growth step.
            if txn.enlistments.isEmpty { txn.enlistments.reserveCapacity(4) }
            txn.enlistments.append(e)
            return e
        }
    }
}
