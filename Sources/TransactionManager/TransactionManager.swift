// The transaction manager: identity, lifecycle, and the tables every other file works on.

import Dispatch
import LogStore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Options of a transaction manager.
public struct TransactionManagerOptions: Sendable {
    /// Write a checkpoint after this many TM records (0: only on request, on close and when the log's
    /// tail is pinned).
    public var checkpointEveryRecords = 65536
    /// Who is named in forced-outcome audit records when no actor is given.
    public var defaultActor = "api"
    /// How many forced outcomes the TM keeps for audit beyond the life of their `forced` records: the
    /// most recent `auditRetention` (by LSN) are kept in memory (``TransactionManager/forcedOutcomes``)
    /// and carried by every checkpoint, so they survive the checkpoints that recycle the records
    /// themselves. 0 keeps none beyond the log itself (a forced record is then readable only until a
    /// checkpoint moves the stream's base past it). Values above ``TMLimits/maxAuditEntries`` count as
    /// that limit. Default 1000.
    public var auditRetention = 1000
    /// The least log space, in bytes, the TM keeps reserved for its next checkpoint's restart area, so
    /// that a checkpoint asked for by a full log (the tail-pinned handler) can still write it and move
    /// the TM's base. After each checkpoint the room is sized from that checkpoint's restart record (a
    /// quarter more), never below this, never above the log's maximum record size (nor above what the
    /// log can reserve then: it falls back to this). A checkpoint that outgrew its room (many
    /// transactions decided or prepared since the last one) gives the room back and is written as a plain
    /// append, which needs free room like any other. 0: no room. Default 4096.
    public var checkpointRoom = 4096
    /// The default options.
    public init() {}
}

/// A transaction manager (TM), after KTM: it coordinates transactions among resource managers with
/// two-phase commit and presumed abort, and keeps its state in one stream of a `LogStore` log.
///
/// Startup order, enforced: create or open the TM; ``recover(progress:isCancelled:)``; create or
/// open each resource manager; ``ResourceManager/recover()`` each; then enlist. Enlistments are refused
/// (`not-online`) until the TM and the RM are recovered.
///
/// ```swift
/// let tm = try TransactionManager.create(log: log)          // stream "ktm"
/// try tm.recover()
/// let rm = try tm.createResourceManager(description: "accounts") { note in ... }
/// try rm.recover()
/// let tx = try tm.createTransaction(description: "transfer")
/// let e = try rm.enlist(tx, mask: .twoPhase)
/// try await tx.commit()
/// ```
///
/// Close the TM before its log. A log closed under it stops it as a terminate does (nothing more is
/// written; recovery finds the log as the close left it): its RMs are closed, and every call waiting on
/// a transaction ends with `closed` saying what recovery will do (see ``Transaction/commit()``).
///
/// Thread-safe. Notifications are delivered outside the TM's lock, so an RM may answer from inside
/// its callback. A handler gets each enlistment's notifications one at a time, in the order of the
/// state changes; one that follows an answer given inside the handler comes after the handler returns.
public final class TransactionManager: @unchecked Sendable {
    /// The TM's identity, stored in its checkpoints.
    public let id: GUID
    /// A volatile TM writes no log; its resource managers must be volatile too.
    public let isVolatile: Bool
    /// The log, or nil for a volatile TM.
    public let log: LogStore?
    /// The TM's stream, or nil for a volatile TM.
    public let stream: LogStream?
    let options: TransactionManagerOptions

    /// Guards everything below, and the mutable state of transactions, enlistments and RMs.
    let lock = Lock()
    var state: State = .initialized
    var clock: UInt64 = 1
    var transactions: [GUID: TxnCore] = [:]
    var resourceManagers: [GUID: ResourceManager] = [:]
    var loggedRMs: [GUID: LoggedRM] = [:]
    var recordsSinceCheckpoint = 0
    /// The most recent forced outcomes (``forcedOutcomes``).
    var audit: ForcedOutcomeTrail
    /// For each TM record being appended whose state change a checkpoint must not take as logged yet (a
    /// decision, a superior's prepared record, a `resolve`'s forced record, an RM's registration): the
    /// stream's last LSN before that append. A checkpoint covers no further than the smallest, so
    /// recovery replays the record if it lands, and finds the state before it if the append fails.
    var recordFloors: [LSN] = []
    /// Resource managers whose registration record is being appended (a second create is refused).
    var registeringRMs: Set<GUID> = []
    var checkpointScheduled = false
    /// The record size reserved for the next checkpoint's restart area (0: none; see
    /// TransactionManager+RestartRoom.swift).
    var restartRoom = 0
    /// Bytes of the last restart record this TM wrote or recovered from (0: none yet): the next room is
    /// sized from it.
    var lastRestartSize = 0
    /// Held for the whole of a checkpoint (snapshot and write): see ``checkpoint()``.
    let checkpointLock = Lock()
    /// The thread writing a checkpoint (guarded by `lock`).
    var checkpointThread: pthread_t?
    /// Set once close or terminate has let go of the unfinished transactions: a checkpoint taken after
    /// that would leave them out, so none is written any more.
    var transactionsDetached = false
    var failureHandlers: [@Sendable (LogError) -> Void] = []
    var failure: LogError?
    /// What the last recovery did.
    var recoveryStats = RecoveryStatistics()
    /// Async commit steps run off the cooperative pool (``statistics``).
    let offPoolSteps = Atomic<UInt64>(0)
    /// The threads those steps run on: the process's shared set; a test may give a TM its own.
    var offPoolThreads = OffPoolThreads.shared
    /// Tests only: runs on the commit driver's thread after a commit decision is appended, before its flush.
    var afterDecisionAppendForTesting: (@Sendable () -> Void)?
    /// Tests only: runs on the superior's prepare thread after its prepared record is appended, before its flush.
    var afterPreparedAppendForTesting: (@Sendable () -> Void)?
    /// Tests only: runs on the superior's prepare thread once the votes are counted (every one read-only).
    var afterVotesCountedForTesting: (@Sendable () -> Void)?
    /// Tests only: runs on `resolve`'s thread after its forced record is appended, before its flush.
    var afterForcedAppendForTesting: (@Sendable () -> Void)?
    /// Tests only: runs on `createResourceManager`'s thread after the registration record is appended, before its flush.
    var afterRegistrationAppendForTesting: (@Sendable () -> Void)?
    /// Tests only: runs on `checkpoint()`'s thread once the snapshot is taken, before it is written.
    var afterCheckpointSnapshotForTesting: (@Sendable () -> Void)?
    /// The stream this TM holds in ``heldStreams`` until it is closed, stopped or freed.
    private let held: HeldStream?
    /// ``held`` was given back: close, stop and deinit each give it back, and only the first may (the
    /// stream may be another TM object's claim by the second).
    private let released = Atomic<Bool>(false)

    /// A TM stream of a log object, held by a live TM of this process.
    struct HeldStream: Hashable {
        let log: ObjectIdentifier
        let stream: String
    }

    /// The TM streams held by live TMs of this process. A second TM object on the same stream would
    /// recover the same transactions and then go its own way: its checkpoint (on close, say) leaves out
    /// what the first one decided since and moves the stream's base past those records, so a committed
    /// transaction's participants were never told after a crash. Like a second open of one RM, it is
    /// refused (`already-exists`).
    nonisolated(unsafe) private static var heldStreams: Set<HeldStream> = []
    /// Guards ``heldStreams``.
    private static let heldStreamsLock = Lock()

    /// Claims `name` of `log` for a new TM; pass the result to `init` (its `deinit` gives it back), or
    /// give it back with ``unhold(_:)`` if no TM is made.
    private static func hold(_ log: LogStore, _ name: String) throws -> HeldStream {
        let h = HeldStream(log: ObjectIdentifier(log), stream: name)
        let fresh = heldStreamsLock.withLock { heldStreams.insert(h).inserted }
        guard fresh else {
            throw LogError(.alreadyExists, "a transaction manager of this process already has stream \"\(name)\" of this log open; close it first")
        }
        return h
    }

    private static func unhold(_ h: HeldStream) {
        _ = heldStreamsLock.withLock { heldStreams.remove(h) }
    }

    /// Gives the stream back (close, terminate, deinit); later calls do nothing.
    private func release() {
        // A claim is a name, not this object: a later call would remove the claim of a TM that opened
        // the stream since, and let a third object open it beside that one.
        guard let held, !released.exchange(true, ordering: .acquiringAndReleasing) else { return }
        Self.unhold(held)
    }

    deinit { release() }

    /// The TM's life cycle.
    public enum State: String, Sendable {
        /// Created or opened; `recover(progress:isCancelled:)` not called yet (or it failed and may be called again).
        case initialized
        /// `recover(progress:isCancelled:)` runs.
        case recovering
        /// Recovered: transactions may be created.
        case online
        /// Closed: refuses further work.
        case offline
        /// Its log failed: nothing more is logged; recovery after a reopen decides what was in flight.
        case failed
    }

    init(id: GUID, volatile: Bool, log: LogStore?, stream: LogStream?, options: TransactionManagerOptions, held: HeldStream? = nil) {
        self.id = id
        self.held = held
        self.isVolatile = volatile
        self.log = log
        self.stream = stream
        self.options = options
        self.audit = ForcedOutcomeTrail(limit: options.auditRetention)
        if let log {
            log.onFailure { [weak self] e in self?.logFailed(e) }
            log.onClose { [weak self] in self?.logClosed() }
        }
        stream?.onTailPinned { [weak self] _ in _ = try? self?.checkpoint() }
    }

    // MARK: Creating and opening

    /// The default name of the TM's stream.
    public static let defaultStreamName = "ktm"

    /// Creates a TM with a new stream in `log` and writes its first checkpoint (which records `id`).
    public static func create(
        log: LogStore, stream name: String = defaultStreamName, id: GUID = .random(), options: TransactionManagerOptions = .init()
    ) throws -> TransactionManager {
        if log.streams().contains(where: { $0.name == name }) {
            throw LogError(.alreadyExists, "stream \"\(name)\" already exists; open the TM instead")
        }
        // Claimed first: two creates of one name in this process must not both get as far as the stream.
        let held = try hold(log, name)
        let stream: LogStream
        do { stream = try log.createStream(name) } catch {
            unhold(held)
            throw error
        }
        return try start(log: log, stream: stream, id: id, options: options, held: held)
    }

    /// A new TM on `stream` (new, or left empty by a create that stopped): writes its first checkpoint,
    /// which records `id` and makes the stream a TM's.
    private static func start(log: LogStore, stream: LogStream, id: GUID, options: TransactionManagerOptions, held: HeldStream)
        throws -> TransactionManager
    {
        let tm = TransactionManager(id: id, volatile: false, log: log, stream: stream, options: options, held: held)
        let cp = TMCheckpoint(tm: id, coveredThrough: .null, clock: 1, rms: [], transactions: [])
        try stream.writeRestartArea(TMRecord.checkpoint(cp).encode(clock: 1))
        return tm
    }

    /// Opens the TM whose stream is `name`. Call ``recover(progress:isCancelled:)`` next.
    ///
    /// Throws `not-found` when there is no such stream or it is not a TM's (no restart area, or another
    /// program's), and `corrupt` when its TM checkpoint is damaged.
    ///
    /// One TM object per stream of a log object in a process: while one is open (until ``close()``),
    /// opening or creating another on the same stream throws `already-exists`.
    public static func open(log: LogStore, stream name: String = defaultStreamName, options: TransactionManagerOptions = .init())
        throws -> TransactionManager
    {
        let stream = try log.openStream(name)
        guard let restart = try stream.readRestartArea() else {
            throw LogError(.notFound, "stream \"\(name)\" holds no transaction-manager checkpoint")
        }
        // Another program's restart area (a key-value store's, say) makes the stream not a TM's, as in
        // `list`: that is a wrong stream, not damage. A restart area with the TM magic that does not
        // decode is damage.
        guard TMRecord.hasMagic(restart.data) else {
            throw LogError(.notFound, "stream \"\(name)\" is not a transaction manager's stream: its restart area is not a TM checkpoint")
        }
        let tm: GUID
        switch try TMRecord.decode(restart.data).record {
        case .checkpoint(let cp): tm = cp.tm
        case .checkpointIndex(let index): tm = index.tm
        default: throw LogError(.corrupt, "stream \"\(name)\": its restart area is not a TM checkpoint", lsn: restart.lsn)
        }
        return TransactionManager(id: tm, volatile: false, log: log, stream: stream, options: options, held: try hold(log, name))
    }

    /// Opens the TM with identity `id`, whichever stream of `log` holds it.
    public static func open(log: LogStore, id: GUID, options: TransactionManagerOptions = .init()) throws -> TransactionManager {
        // Another TM's damaged checkpoint does not keep this one from opening; it is reported only if
        // this TM is not found among the healthy ones (the damaged one may be it).
        var damage: (any Error)?
        for (stream, checkpoint) in checkpoints(log: log) {
            switch checkpoint {
            case .success(let cp) where cp.tm == id: return try open(log: log, stream: stream.name, options: options)
            case .success: continue
            case .failure(let e): damage = damage ?? e
            }
        }
        if let damage { throw damage }
        throw LogError(.notFound, "no transaction manager \(id) in this log")
    }

    /// Opens the TM in stream `name`, creating it if the stream does not exist, or if it exists with no
    /// restart area and nothing but first checkpoints no restart area names (or nothing at all): a
    /// create that stopped (a crash, an I/O error, a terminate) after it made the stream and before the
    /// base file named its first checkpoint. Without that, such a log could never be brought online
    /// again (`open` finds no TM checkpoint there).
    public static func openOrCreate(log: LogStore, stream name: String = defaultStreamName, options: TransactionManagerOptions = .init())
        throws -> TransactionManager
    {
        guard let info = log.streams().first(where: { $0.name == name }) else { return try create(log: log, stream: name, options: options) }
        guard info.restartLSN == .null else { return try open(log: log, stream: name, options: options) }
        let held = try hold(log, name)
        let stream: LogStream
        let unfinished: Bool
        do {
            stream = try log.openStream(name)
            // Looked at again now that the stream is held: a TM of this process may have finished its
            // create (and closed) since `streams()` above, and a second first checkpoint would replace it.
            unfinished = try stream.readRestartArea() == nil && holdsOnlyUnnamedFirstCheckpoints(stream)
        } catch {
            unhold(held)
            throw error
        }
        guard unfinished else {
            unhold(held)
            return try open(log: log, stream: name, options: options)
        }
        return try start(log: log, stream: stream, id: .random(), options: options, held: held)
    }

    /// Whether every record of `stream` is a first checkpoint (of an empty TM, covering nothing) written
    /// as a restart record: what a create leaves when it stops after the record is durable and before
    /// the base file names it. Such a TM was never handed to anyone, so nothing is lost by starting anew.
    private static func holdsOnlyUnnamedFirstCheckpoints(_ stream: LogStream) throws -> Bool {
        var cursor = try stream.records()
        while let r = try cursor.next() {
            guard r.type == .restart, TMRecord.hasMagic(r.data),
                case .checkpoint(let cp)? = try? TMRecord.decode(r.data).record,
                cp.coveredThrough == .null, cp.rms.isEmpty, cp.transactions.isEmpty
            else { return false }
        }
        return true
    }

    /// A volatile TM: it writes no log and cannot recover; every RM on it must be volatile.
    public static func volatile(id: GUID = .random(), options: TransactionManagerOptions = .init()) -> TransactionManager {
        TransactionManager(id: id, volatile: true, log: nil, stream: nil, options: options)
    }

    // MARK: State

    /// The TM's current state.
    public var currentState: State { lock.withLock { state } }

    /// The virtual clock: starts at 1, bumped by every commit; never decreases.
    public var virtualClock: UInt64 { lock.withLock { clock } }

    /// Registers a handler called once when the TM's log fails (a write or sync error).
    public func onFailure(_ handler: @escaping @Sendable (LogError) -> Void) {
        let already: LogError? = lock.withLock {
            if let failure { return failure }
            failureHandlers.append(handler)
            return nil
        }
        if let already { handler(already) }
    }

    func logFailed(_ e: LogError) {
        let (hs, woken): ([@Sendable (LogError) -> Void], [CheckedContinuation<Void, Never>]) = lock.withLock {
            guard failure == nil else { return ([], []) }
            failure = e
            state = .failed
            // Nothing is logged any more, so an answer a commit driver or an outcome waiter waits for may
            // never come (an RM that cannot append its prepare or commit record does not answer): each
            // is woken and sees the failed state (see `awaitPhase` and `waitFinished`).
            var woken: [CheckedContinuation<Void, Never>] = []
            for txn in transactions.values {
                if let w = txn.phaseWaiter { woken.append(w) }
                txn.phaseWaiter = nil
                woken += txn.finishWaiters
                txn.finishWaiters.removeAll()
            }
            defer { failureHandlers.removeAll() }
            return (failureHandlers, woken)
        }
        for c in woken { c.resume() }
        for h in hs { h(e) }
    }

    func requireOnline() throws {
        switch state {
        case .online: return
        case .failed: throw failure ?? LogError(.failed, "the transaction manager's log failed")
        default: throw LogError(.notOnline, "the transaction manager is \(state.rawValue); recover it first")
        }
    }

    /// Stops the TM: writes a final checkpoint (durable TMs) and refuses further work. Its resource
    /// managers are closed too, without notifications (as if each had been closed first).
    ///
    /// Transactions still running are left to recovery as the log has them: those not prepared are
    /// presumed aborted, a committed one gets its commit again. Their calls stop waiting: a
    /// ``Transaction/commit()`` whose decision is durable returns, any other throws `closed` saying
    /// what recovery will do; later calls on them throw `closed`.
    public func close() throws {
        let wasOnline = lock.withLock { () -> Bool in
            defer { if state != .failed { state = .offline } }
            return state == .online
        }
        defer {
            detachTransactions(logClosed: false)
            detachResourceManagers()
            releaseRestartRoom()
            release()
        }
        if wasOnline, !isVolatile { try checkpoint() }
    }

    /// Stops the TM without writing anything (terminate): the log stays as it is, recoverable.
    func stop(logClosed: Bool = false) {
        lock.withLock { if state != .failed { state = .offline } }
        detachTransactions(logClosed: logClosed)
        detachResourceManagers()
        releaseRestartRoom()
        release()
    }

    /// The log was closed under the TM (the TM not closed first). Nothing can be logged any more, so an
    /// answer a waiting call expects may never come (an RM that cannot append its prepare or commit
    /// record does not answer), and the TM stops as a terminate does: the log, closed, is what recovery
    /// will find. Each waiting call ends saying so (``TxnCore/closedError``), and each RM is closed
    /// (its notification sequence finishes).
    func logClosed() { stop(logClosed: true) }

    /// Lets go of every unfinished transaction, after the final checkpoint has recorded them: each is
    /// marked detached, its waiting commit driver and outcome waiters are woken, and its timeout is
    /// cancelled. Without this a commit waiting for an answer from a closed RM would never return.
    /// `logClosed`: the log was closed under the TM (see ``logClosed()``).
    private func detachTransactions(logClosed: Bool) {
        let woken: [CheckedContinuation<Void, Never>] = lock.withLock {
            var woken: [CheckedContinuation<Void, Never>] = []
            transactionsDetached = true
            for txn in transactions.values where !txn.isFinished {
                txn.detached = true
                txn.logClosed = logClosed
                txn.cutShort = true
                if let w = txn.phaseWaiter { woken.append(w) }
                txn.phaseWaiter = nil
                woken += txn.finishWaiters
                txn.finishWaiters.removeAll()
                txn.timeoutTask?.cancel()
                txn.timeoutTask = nil
                txn.releaseParticipantsIfDoneLocked()
            }
            transactions.removeAll()
            return woken
        }
        for c in woken { c.resume() }
    }

    /// Marks every resource manager closed and lets go of it. Each one refers back to the TM, so a TM
    /// closed with its RMs still registered would otherwise never be freed, nor the log it holds.
    private func detachResourceManagers() {
        let detached: [(ResourceManager, (@Sendable () -> Void)?)] = lock.withLock {
            Array(resourceManagers.values).map { rm in (rm, rm.unregisterLocked()) }
        }
        for (rm, closedHandler) in detached { rm.finishClosing(closedHandler) }
    }

    // MARK: Appending TM records

    /// Notes (under `lock`) that a TM record is about to be appended; returns its floor (see
    /// ``recordFloors``), which ``endRecordLocked(_:)`` removes once the append returned.
    func beginRecordLocked() -> LSN {
        let floor = stream?.lastLSN ?? .null
        recordFloors.append(floor)
        return floor
    }

    /// Removes one floor taken by ``beginRecordLocked()`` (under `lock`).
    func endRecordLocked(_ floor: LSN) {
        if let i = recordFloors.firstIndex(of: floor) { recordFloors.remove(at: i) }
    }

    /// As ``beginRecordLocked()``, for a record reporting a change of `txn` already made in memory: until
    /// ``endRecordLocked(_:_:)``, a checkpoint writes `before` (the transaction as logged before the
    /// change; nil leaves it out) instead of its current state, which the record may never reach.
    func beginRecordLocked(_ txn: TxnCore, before: LoggedTransaction?) -> LSN {
        txn.recordInFlight = true
        txn.formBeforeRecord = before
        return beginRecordLocked()
    }

    /// Ends ``beginRecordLocked(_:before:)`` (under `lock`), whether the append succeeded or failed.
    func endRecordLocked(_ txn: TxnCore, _ floor: LSN) {
        txn.recordInFlight = false
        txn.formBeforeRecord = nil
        endRecordLocked(floor)
    }

    /// Appends a TM record (never under `lock`: a full log calls back into ``checkpoint()``).
    @discardableResult
    func append(_ record: TMRecord) throws -> LSN {
        guard let stream else { return .null }
        let c = lock.withLock { clock }
        let lsn = try stream.append(record.encode(clock: c))
        let due = lock.withLock { () -> Bool in
            recordsSinceCheckpoint += 1
            guard options.checkpointEveryRecords > 0, recordsSinceCheckpoint >= options.checkpointEveryRecords, !checkpointScheduled
            else { return false }
            checkpointScheduled = true
            return true
        }
        if due {
            DispatchQueue.global().async { [weak self] in
                _ = try? self?.checkpoint()
            }
        }
        return lsn
    }
}
