// Resource managers: creation, notification delivery, enlisting, and recovery.

import LogStore

/// A resource manager (RM): the endpoint that owns data and takes part in transactions.
///
/// A durable RM has its own stream in the TM's log (``stream``), where it writes its redo/undo and
/// prepare records. A volatile RM logs nothing and is never recovered.
///
/// Notifications go to the handler given at creation; an RM created without a handler reads them from
/// ``notifications`` instead. The handler gets each enlistment's notifications one at a time, in the
/// order of the state changes (those of different enlistments may run side by side); it must not wait
/// for a later notification of the same enlistment.
public final class ResourceManager: @unchecked Sendable {
    /// The RM's identity, stable across restarts (its stream is named after it).
    public let id: GUID
    /// The description given at creation (logged with a durable RM's registration).
    public let description: String
    /// True for a volatile RM: it logs nothing and is never recovered.
    public let isVolatile: Bool
    /// The RM's own stream (durable RMs), in the same log as the TM's.
    public let stream: LogStream?
    let tm: TransactionManager
    let handler: (@Sendable (TransactionNotification) -> Void)?
    /// Notifications, for an RM created without a handler, in the order of the transactions' state
    /// changes. The sequence buffers without limit, and each buffered notification keeps its enlistment
    /// and transaction in memory: keep reading it for as long as the RM is open. It finishes when the RM
    /// closes (or its TM does, or the TM's log: see ``TransactionManager``).
    public let notifications: AsyncStream<TransactionNotification>
    let continuation: AsyncStream<TransactionNotification>.Continuation

    // Guarded by tm.lock.
    var state: State = .offline
    /// Recover notifications ``recover()`` queued behind a handler call still running for their
    /// enlistment (this RM's previous object, closed, still inside it), not yet delivered.
    var queuedRecovers = 0
    /// ``recover()`` returned with recovery-complete and tm-online left to the delivery of the last
    /// queued recover notification.
    var recoveryCompleteDeferred = false
    /// Runs once the RM is closed, by ``close()`` or by its TM's close (see ``whenClosed(_:)``).
    var closedHandler: (@Sendable () -> Void)?

    /// The RM's life cycle: offline until ``recover()``, then online.
    public enum State: String, Sendable {
        /// Opened; `recover()` not called yet.
        case offline
        /// `recover()` runs: the TM sends what recovery owes it.
        case recovering
        /// Recovered: takes part in transactions.
        case online
        /// Closed: gets no more notifications.
        case closed
    }

    init(id: GUID, description: String, volatile: Bool, stream: LogStream?, tm: TransactionManager,
         handler: (@Sendable (TransactionNotification) -> Void)?) {
        self.id = id
        self.description = description
        self.isVolatile = volatile
        self.stream = stream
        self.tm = tm
        self.handler = handler
        (notifications, continuation) = AsyncStream.makeStream(of: TransactionNotification.self)
    }

    /// The RM's state now.
    public var currentState: State { tm.lock.withLock { state } }

    /// The name of a durable RM's stream.
    public static func streamName(for id: GUID) -> String { "rm-\(id)" }

    func deliver(_ n: TransactionNotification) {
        if let handler { handler(n) } else { continuation.yield(n) }
    }

    // MARK: Enlisting

    /// Enlists this RM in `transaction`, which must be active and belong to this RM's TM (else
    /// `invalid-argument`). The mask is normalized.
    public func enlist(_ transaction: Transaction, mask: NotificationMask = .twoPhase, id: GUID = .random()) throws -> Enlistment {
        // A transaction of another TM (several may share a log) would log this RM as its participant,
        // but only this RM's TM can ever send it an outcome: after a crash the other TM would owe it one
        // forever, and this RM would presume abort a transaction that committed.
        guard transaction.tm === tm else {
            throw LogError(.invalidArgument, "\(transaction) belongs to transaction manager \(transaction.tm.id), not to \(tm.id), which resource manager \(id) is registered with")
        }
        return try tm.enlist(rm: self, txn: transaction.core, mask: mask.normalized, id: id)
    }

    /// Enlists in the transaction with this identity (a client passed its id to the RM).
    public func enlist(transactionID: GUID, mask: NotificationMask = .twoPhase, id: GUID = .random()) throws -> Enlistment {
        guard let txn = tm.lock.withLock({ tm.transactions[transactionID] }) else {
            throw LogError(.notFound, "no transaction \(transactionID)")
        }
        return try tm.enlist(rm: self, txn: txn, mask: mask.normalized, id: id)
    }

    // MARK: Recovery

    /// Recovers the RM: sends ``TransactionNotification/Kind/recover`` for each of its enlistments the TM's log
    /// says is owed an outcome, then ``TransactionNotification/Kind/recoveryComplete`` and
    /// ``TransactionNotification/Kind/tmOnline``. The RM answers each recover with ``Enlistment/recover()`` and
    /// then gets the outcome. Anything the RM prepared that is not in a recover notification is to be
    /// rolled back (presumed abort). Outcomes may arrive more than once; apply them idempotently.
    ///
    /// A recover notification whose enlistment is still inside a handler call of this RM's previous
    /// object (closed, then opened again in this process) is delivered when that call returns, by its
    /// thread; recovery-complete and tm-online then follow it there, after this method has returned, and
    /// after the outcome an answer given inside the handler sent (as when this method delivers it).
    ///
    /// An RM closed during its recovery (by its own handler, say) gets nothing more from it: the
    /// enlistments not yet announced stay owed to its next recovery.
    public func recover() throws {
        let owed: [Enlistment] = try tm.lock.withLock {
            try tm.requireOnline()
            guard state == .offline else { throw LogError(.invalidState, "resource manager \(id) is \(state.rawValue), not offline") }
            state = .recovering
            var out: [Enlistment] = []
            // Rebuilt by recovery, or left by this RM's earlier close in this process.
            for txn in tm.transactions.values {
                for e in txn.enlistments where e.resourceManagerID == id && e.state == .recovering && !e.acknowledged {
                    e.rm = self
                    e.expecting = .recover
                    out.append(e)
                }
            }
            return out.sorted { $0.transactionID < $1.transactionID }
        }
        let clock = tm.virtualClock
        for e in owed {
            let n = TransactionNotification(kind: .recover, enlistment: e, transactionID: e.transactionID, recoveryInformation: e.recoveryInformation,
                                            clock: clock)
            // In the enlistment's turn like any other of its notifications (see `deliverInTurn`). The
            // turn may be held by this RM's previous object, closed while its handler was still inside
            // a notification of `e`: the recover then waits in the queue, addressed to this RM.
            if handler == nil {
                deliver(n)
            } else if tm.lock.withLock({ () -> Bool in
                // Closed meanwhile (by its own handler, inside an earlier recover): nothing more reaches
                // it, and its close left the enlistment owed to the RM's next recovery.
                guard state != .closed else { return false }
                if e.takeTurnLocked(n, for: self) { return true }
                queuedRecovers += 1
                return false
            }) {
                tm.deliverInTurn(e, self, n)
            }
        }
        // Recovery-complete says "every recover notification is in": anything prepared and not named
        // by one is rolled back (presumed abort). So it waits for queued ones, which the thread holding
        // their turn delivers (`queuedRecoverDelivered`); the RM is online meanwhile.
        let completeNow = tm.lock.withLock { () -> Bool in
            guard state != .closed else { return false }
            if state == .recovering { state = .online }
            recoveryCompleteDeferred = queuedRecovers > 0
            return !recoveryCompleteDeferred
        }
        if completeNow { deliverRecoveryComplete(clock: clock) }
    }

    private func deliverRecoveryComplete(clock: UInt64) {
        deliver(TransactionNotification(kind: .recoveryComplete, enlistment: nil, transactionID: nil, recoveryInformation: [], clock: clock))
        deliver(TransactionNotification(kind: .tmOnline, enlistment: nil, transactionID: nil, recoveryInformation: [], clock: clock))
    }

    /// After a recover notification reached this RM's handler (and the turn that delivered it ended):
    /// when it was the last one ``recover()`` queued and left recovery-complete to, that and tm-online
    /// follow now.
    func queuedRecoverDelivered() {
        let complete = tm.lock.withLock { () -> Bool in
            guard queuedRecovers > 0 else { return false }
            queuedRecovers -= 1
            guard queuedRecovers == 0, recoveryCompleteDeferred else { return false }
            recoveryCompleteDeferred = false
            return state != .closed
        }
        if complete { deliverRecoveryComplete(clock: tm.virtualClock) }
    }

    /// Marks the RM closed and removes it from its TM. Holds `tm.lock`; call ``finishClosing(_:)`` with
    /// what it returns after.
    func unregisterLocked() -> (@Sendable () -> Void)? {
        state = .closed
        // The table may hold a reopened RM of this id by now (this one was closed before).
        if tm.resourceManagers[id] === self { tm.resourceManagers[id] = nil }
        defer { closedHandler = nil }
        return closedHandler
    }

    /// The rest of closing, outside `tm.lock`: finishes ``notifications`` and runs the closed handler.
    func finishClosing(_ closedHandler: (@Sendable () -> Void)?) {
        continuation.finish()
        closedHandler?()
    }

    /// Runs `body` once this RM is closed, by ``close()`` or by its TM's close (which closes its RMs
    /// without notifications), outside the TM's lock; at once if it is closed already. One handler per RM.
    /// For the key-value store, which holds log space for its RM (outcome reservations) and must give it
    /// back when the RM closes, whoever closes it.
    package func whenClosed(_ body: @escaping @Sendable () -> Void) {
        let now = tm.lock.withLock { () -> Bool in
            if state == .closed { return true }
            closedHandler = body
            return false
        }
        if now { body() }
    }

    /// Closes the RM. Its enlistments in transactions that are not yet prepared roll back. Those owed an
    /// outcome (prepared, in doubt, or waiting to acknowledge a commit or rollback) keep it: a durable
    /// RM gets it through ``recover()`` once it is opened again (in this process or after a restart),
    /// and a commit waiting only for such RMs returns. A volatile RM keeps nothing, so its owed
    /// acknowledgements are dropped. One that takes only the outcome (a mask without prepare), in a
    /// transaction already prepared or decided, leaves it: no notification reaches the closed RM, and no
    /// commit waits for it. Closing an RM that is closed already (by this method or by its TM's close)
    /// does nothing.
    public func close() {
        let closing:
            ([Enlistment], [CheckedContinuation<Void, Never>], TransactionManager.Effects, (@Sendable () -> Void)?)? = tm.lock.withLock {
            // A second close must not touch the TM's table: the RM may have been opened again since (a
            // new object of this id), and removing the id let that one go unclosed by the TM's close and
            // let a third object of the id open beside it.
            guard state != .closed else { return nil }
            let closedHandler = unregisterLocked()
            var open: [Enlistment] = []
            var woken: [CheckedContinuation<Void, Never>] = []
            var finished = TransactionManager.Effects()
            var outcomeWithRM: [TxnCore] = []
            for txn in tm.transactions.values {
                var affected = false
                for e in txn.enlistments where e.rm === self {
                    if txn.canAbort, !e.isOwedLaterOutcome {
                        open.append(e)
                    } else if e.state == .singlePhase, e.expecting == .singlePhaseCommit {
                        // It closed without answering its single-phase commit: the outcome is its own.
                        e.leaveLocked()
                        outcomeWithRM.append(txn)
                    } else if !e.acknowledged, e.state == .active {
                        // Takes only the outcome (commit without prepare), of a transaction that can no
                        // longer roll back. Never logged, so owed nothing later; left as it was, it kept
                        // this RM and got the commit in its handler after this close returned, and the
                        // commit waited for that handler's answer. It leaves as a read-only one does.
                        e.leaveLocked()
                    } else if !e.acknowledged, e.isOwedLaterOutcome {
                        affected = true
                        if isVolatile {
                            e.dropOwedOutcomeLocked(&finished)
                        } else {
                            e.state = .recovering
                            e.expecting = nil
                            e.rm = nil
                        }
                    }
                }
                if affected {
                    woken += txn.finishWaiters
                    txn.finishWaiters.removeAll()
                }
            }
            for txn in outcomeWithRM { woken += tm.loseSinglePhaseOutcomeLocked(txn) }
            return (open, woken, finished, closedHandler)
        }
        guard let (open, woken, finished, closedHandler) = closing else { return }
        for e in open { tm.closeEnlistment(e) }
        tm.perform(finished)
        for c in woken { c.resume() }
        finishClosing(closedHandler)
    }
}

extension TransactionManager {
    /// Creates a resource manager. A durable one is registered in the TM's log (a forced record) and
    /// gets its own stream. Requires the TM to be recovered.
    ///
    /// - Throws: `already-exists` when this TM has the RM, or when its stream holds records (another TM
    ///   of the log registered it: open it there); `not-online` when the TM is closed or stopped before
    ///   the create finishes (a durable RM's registration may then be in the log: open it next time; the
    ///   message says "is registered" when it is durable); `closed` when the log is closed under the TM
    ///   during the create, saying "is registered" when the close made the registration durable.
    public func createResourceManager(
        id: GUID = .random(), description: String = "", volatile: Bool = false, handler: (@Sendable (TransactionNotification) -> Void)? = nil
    ) throws -> ResourceManager {
        guard description.utf8.count <= TMLimits.maxDescription else {
            throw LogError(.invalidArgument, "description longer than \(TMLimits.maxDescription) bytes")
        }
        if isVolatile && !volatile {
            throw LogError(.invalidArgument, "a volatile transaction manager takes only volatile resource managers")
        }
        try lock.withLock {
            try requireOnline()
            if loggedRMs[id] != nil || resourceManagers[id] != nil || registeringRMs.contains(id) {
                throw LogError(.alreadyExists, "resource manager \(id) already exists; open it instead")
            }
            registeringRMs.insert(id)
        }
        defer { lock.withLock { _ = registeringRMs.remove(id) } }
        var rmStream: LogStream?
        if !volatile, let log, let stream {
            let name = ResourceManager.streamName(for: id)
            if let existing = log.streams().first(where: { $0.name == name }) {
                // Left by a create whose registration never became durable, the stream is empty. One with
                // records belongs to an RM another TM of this log registered (several TMs may share a
                // log): registered here too, the RM would take that TM's prepared transactions for ones
                // this TM never decided, and presume abort ones that TM committed.
                guard existing.lastLSN == .null, existing.restartLSN == .null else {
                    throw LogError(
                        .alreadyExists,
                        "stream \"\(name)\" already holds records: resource manager \(id) is registered with another transaction manager of this log; open it there")
                }
                rmStream = try log.openStream(name)
            } else {
                rmStream = try log.createStream(name)
            }
            let logged = LoggedRM(id: id, stream: name, description: description)
            // The RM joins `loggedRMs` once its record is durable; a checkpoint taken meanwhile leaves it
            // out and covers no further than the record's floor, so recovery replays the record.
            let floor = lock.withLock { beginRecordLocked() }
            do {
                let lsn = try append(.rmRegistered(logged))
                afterRegistrationAppendForTesting?()
                do {
                    try stream.flush(upTo: lsn)
                } catch let e as LogError where e.code == .closed {
                    // The log closed under the TM after the append: its close flushed everything, so the
                    // RM is registered and a later create of this id is refused. Said so, as `decideCommit`
                    // does for a decision, rather than a bare "the log is closed" that reads as "not created".
                    guard lsn <= log.durableLSN else { throw e }
                    throw LogError(.closed, "the log was closed during the creation of resource manager \(id), after its registration was durable: it is registered; open it (openResourceManager) once the log is opened again and the transaction manager recovers", lsn: lsn)
                }
            } catch {
                lock.withLock { endRecordLocked(floor) }
                throw error
            }
            lock.withLock {
                endRecordLocked(floor)
                loggedRMs[id] = logged
            }
        }
        let rm = ResourceManager(id: id, description: description, volatile: volatile, stream: rmStream, tm: self, handler: handler)
        do {
            try lock.withLock { try addLocked(rm) }
        } catch let e as LogError where rmStream != nil {
            // The TM stopped since the registration became durable: the RM exists, only this object does not.
            throw LogError(e.code, "\(e.message); resource manager \(id) is registered (its registration is durable): open it (openResourceManager) when the transaction manager is online again")
        }
        return rm
    }

    /// Opens a durable resource manager registered earlier (after a restart). Call
    /// ``ResourceManager/recover()`` next.
    ///
    /// - Throws: `not-found` when no RM of this id is registered; `already-exists` when it is open (also
    ///   when another open or create of it, running at the same time, finished first); `not-online`.
    public func openResourceManager(id: GUID, handler: (@Sendable (TransactionNotification) -> Void)? = nil) throws -> ResourceManager {
        let logged: LoggedRM = try lock.withLock {
            try requireOnline()
            guard let l = loggedRMs[id] else { throw LogError(.notFound, "no resource manager \(id) is registered with this TM") }
            if resourceManagers[id] != nil { throw LogError(.alreadyExists, "resource manager \(id) is already open") }
            return l
        }
        guard let log else { throw LogError(.notFound, "no resource manager \(id) (volatile TM)") }
        let rmStream = try log.openStream(logged.stream)
        let rm = ResourceManager(id: id, description: logged.description, volatile: false, stream: rmStream, tm: self, handler: handler)
        try lock.withLock { try addLocked(rm) }
        return rm
    }

    /// Puts a new RM in the table, unless the TM stopped (close, terminate) or failed since the create or
    /// open began: the stop closed and let go of every RM in the table, so one added after it would stay
    /// open, its notification sequence would never finish, and it and the TM would keep each other in
    /// memory. Also unless another open or create of this id got there first: both passed their
    /// "already open" check before either added its RM, and a second RM object of one id (recovering the
    /// same enlistments, writing the same stream) replaced the first in the table. Holds `lock`.
    private func addLocked(_ rm: ResourceManager) throws {
        try requireOnline()
        if resourceManagers[rm.id] != nil { throw LogError(.alreadyExists, "resource manager \(rm.id) is already open") }
        resourceManagers[rm.id] = rm
    }

    /// Opens the RM if it is registered, else creates it.
    public func openOrCreateResourceManager(
        id: GUID, description: String = "", volatile: Bool = false, handler: (@Sendable (TransactionNotification) -> Void)? = nil
    ) throws -> ResourceManager {
        let known = lock.withLock { loggedRMs[id] != nil }
        return known && !volatile
            ? try openResourceManager(id: id, handler: handler)
            : try createResourceManager(id: id, description: description, volatile: volatile, handler: handler)
    }

    /// The durable RMs registered in the TM's log.
    public var registeredResourceManagers: [(id: GUID, stream: String, description: String)] {
        lock.withLock { loggedRMs.values.sorted { $0.id < $1.id }.map { ($0.id, $0.stream, $0.description) } }
    }
}
