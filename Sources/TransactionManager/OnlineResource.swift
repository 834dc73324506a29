// The cluster-resource contract (Online / Terminate / LooksAlive / IsAlive) for a log, its TM and RMs.

import Dispatch
import LogStore

#if canImport(Glibc)
import Glibc
#endif

/// A log, its transaction manager and its resource managers as one cluster resource, after the
/// failover-cluster resource contract (see docs/TRANSACTIONS.md, "Online and Terminate").
///
/// - ``online()`` returns ``OnlineResult/online`` when the log, TM and RMs are up within the budget
///   (300 ms by default); otherwise it returns ``OnlineResult/pending`` and a worker finishes, reporting
///   progress through the status handler.
/// - ``terminate()`` may be called at any time, also while ``online()`` runs or is pending; it cancels the
///   worker, stops the TM without further writes and closes the log, which stays recoverable.
/// - ``looksAlive`` and ``isAlive()`` answer from cached state.
/// - The failure handler fires when the log hits an I/O failure.
public final class OnlineResource: @unchecked Sendable {
    /// What to bring online.
    public struct Configuration: Sendable {
        /// The log's directory.
        public var logDirectory: String
        /// Create the log with these options when the directory holds none (nil: it must exist).
        public var createOptions: LogCreateOptions?
        /// How to open the log (``OnlineResource`` adds its own cancellation to their `isCancelled`).
        public var openOptions = LogOpenOptions()
        /// The TM's stream (default `ktm`).
        public var tmStream = TransactionManager.defaultStreamName
        /// The TM's options.
        public var tmOptions = TransactionManagerOptions()
        /// The RMs to open (or create) and recover, in this order.
        public var resourceManagers: [ResourceManagerSpec] = []
        /// How long ``online()`` may take before it returns ``OnlineResult/pending``. Any length: one
        /// too long to count in nanoseconds waits as long as going online takes.
        public var onlineBudget: Duration = .milliseconds(300)
        /// The file I/O the log uses (a test seam; default the system's).
        public var io: any FileIO = PosixFileIO()

        /// A configuration for the log in `logDirectory`; the others keep their defaults.
        public init(logDirectory: String, createOptions: LogCreateOptions? = nil, resourceManagers: [ResourceManagerSpec] = []) {
            self.logDirectory = logDirectory
            self.createOptions = createOptions
            self.resourceManagers = resourceManagers
        }
    }

    /// A resource manager to open (or create) and recover as part of going online.
    public struct ResourceManagerSpec: Sendable {
        /// The RM's identity.
        public var id: GUID
        /// Its description (logged when a durable RM is first registered).
        public var description: String
        /// True for a volatile RM (logs nothing, never recovered).
        public var volatile: Bool
        /// Gets the RM's notifications.
        public var handler: @Sendable (TransactionNotification) -> Void
        /// An RM to bring online with the given identity and handler.
        public init(id: GUID, description: String = "", volatile: Bool = false, handler: @escaping @Sendable (TransactionNotification) -> Void) {
            self.id = id
            self.description = description
            self.volatile = volatile
            self.handler = handler
        }
    }

    /// What ``online()`` returned.
    public enum OnlineResult: String, Sendable {
        /// The log, the TM and every RM are up.
        case online
        /// Not up within the budget: a worker goes on, reporting through the status handler.
        case pending
    }

    /// The resource's state, as reported to the status handler.
    public enum Status: Sendable, Equatable {
        /// Not online: before `online()`, after `offline()`.
        case offline
        /// Going online: `step` names what runs; `checkpoint` increases with every report.
        case onlinePending(step: String, checkpoint: Int)
        /// The log, the TM and every RM are up.
        case online
        /// Going online failed, or the log hit an I/O failure while online: the error says why.
        case failed(LogError)
        /// `terminate()` stopped it.
        case terminated
    }

    let config: Configuration
    let onStatus: (@Sendable (Status) -> Void)?
    let lock = Lock()
    private let queue = DispatchQueue(label: "txlog.online-resource")
    // Guarded by lock.
    private var status: Status = .offline
    private var generation = 0
    private var cancelled = false
    private var worker: DispatchSemaphore?
    /// The thread running the online worker, while it runs (a status report made on it may call terminate).
    private var workerThread: pthread_t?
    /// The worker has finished (`done` is signalled) and is reporting its final status; a terminate or
    /// offline that completes meanwhile leaves its own report to the worker, so `terminated` or `offline`
    /// comes last.
    private var finalReporting = false
    private var stoppedWhileReporting: Status?
    /// Tests only: called by the worker between deciding to report its final status and reporting it.
    var beforeFinalReportForTesting: (@Sendable () -> Void)?
    private var checkpointCounter = 0
    private var log: LogStore?
    private var tm: TransactionManager?
    private var rms: [GUID: ResourceManager] = [:]
    private var failureHandlers: [@Sendable (LogError) -> Void] = []

    /// A resource for `config`, offline until ``online()``; `onStatus` gets every status change.
    public init(_ config: Configuration, onStatus: (@Sendable (Status) -> Void)? = nil) {
        self.config = config
        self.onStatus = onStatus
    }

    // MARK: Queries (cached, never block on I/O)

    /// The current status.
    public var currentStatus: Status { lock.withLock { status } }

    /// Cursory check: online and not failed, from cached flags.
    public var looksAlive: Bool { lock.withLock { isOnlineLocked } }

    private var isOnlineLocked: Bool {
        if case .online = status { return true }
        return false
    }

    /// Thorough check, still from in-memory state: online, the log not failed, the TM online.
    public func isAlive() -> Bool {
        let (online, log, tm): (Bool, LogStore?, TransactionManager?) = lock.withLock { (isOnlineLocked, self.log, self.tm) }
        guard online, let log, let tm else { return false }
        return !log.isFailed && tm.currentState == TransactionManager.State.online
    }

    /// The transaction manager, once online.
    public var transactionManager: TransactionManager? { lock.withLock { isOnlineLocked ? tm : nil } }

    /// A resource manager from the configuration, once online.
    public func resourceManager(_ id: GUID) -> ResourceManager? { lock.withLock { isOnlineLocked ? rms[id] : nil } }

    /// Registers the asynchronous failure signal: called once when the log fails while online.
    public func onFailure(_ handler: @escaping @Sendable (LogError) -> Void) {
        lock.withLock { failureHandlers.append(handler) }
    }

    // MARK: Online

    /// Brings the log, the TM and the RMs online. Returns ``OnlineResult/online`` if that finished
    /// within the budget, else ``OnlineResult/pending`` (a worker carries on; watch the status handler
    /// or call ``waitUntilSettled()``). Throws if going online failed within the budget, or
    /// `terminated` if ``terminate()`` cancelled it. Blocks the calling thread for at most the budget
    /// (like a resource DLL's Online entry point): call it from a thread, not from Swift's cooperative pool.
    public func online() throws -> OnlineResult {
        let (gen, done, afterFailure): (Int, DispatchSemaphore, Bool) = try lock.withLock {
            var afterFailure = false
            switch status {
            case .online: throw LogError(.invalidState, "the resource is already online")
            case .onlinePending: throw LogError(.invalidState, "the resource is already going online")
            case .failed: afterFailure = true
            default: break
            }
            generation += 1
            cancelled = false
            checkpointCounter = 0
            status = .onlinePending(step: "starting", checkpoint: 0)
            let sem = DispatchSemaphore(value: 0)
            worker = sem
            return (generation, sem, afterFailure)
        }
        // A log that failed while online is still open (and holds the log's lock): close it first.
        if afterFailure { _ = shutDown(checkpoint: false) }
        let finished = DispatchSemaphore(value: 0)
        queue.async { [self] in
            // Every report of this online is made on the worker's thread (see terminate()).
            lock.withLock { workerThread = pthread_self() }
            report(.onlinePending(step: "starting", checkpoint: 0))
            let final = runOnline(generation: gen)
            lock.withLock { finalReporting = true }
            finished.signal()
            done.signal()
            // Reported after the worker is done, so the status handler may call terminate() (or online()),
            // and only if it is still the status: a terminate may have completed meanwhile.
            if lock.withLock({ generation == gen && status == final }) {
                beforeFinalReportForTesting?()
                report(final)
            }
            let stoppedMeanwhile = lock.withLock { () -> Status? in
                defer {
                    finalReporting = false
                    stoppedWhileReporting = nil
                    workerThread = nil
                }
                return stoppedWhileReporting
            }
            if let stoppedMeanwhile { report(stoppedMeanwhile) }
        }
        // Saturating: a budget too long to count in nanoseconds (a caller's "as long as it takes") is
        // the longest wait, not an overflow trap.
        let budget = config.onlineBudget.components
        let (secondsPart, overflow) = UInt64(max(0, budget.seconds)).multipliedReportingOverflow(by: 1_000_000_000)
        let (sum, overflowSum) = secondsPart.addingReportingOverflow(UInt64(max(0, budget.attoseconds / 1_000_000_000)))
        let nanos = overflow || overflowSum ? UInt64.max : sum
        if finished.wait(timeout: .now() + .nanoseconds(Int(min(nanos, UInt64(Int.max))))) == .timedOut { return .pending }
        switch currentStatus {
        case .online: return .online
        case .failed(let e): throw e
        case .terminated, .offline: throw LogError(.terminated, "online was cancelled by terminate")
        case .onlinePending: return .pending
        }
    }

    /// Waits (without blocking a thread of the cooperative pool) until going online has finished,
    /// and returns the final status: online, failed or terminated.
    public func waitUntilSettled() async -> Status {
        while true {
            let s = currentStatus
            if case .onlinePending = s {
                try? await Task.sleep(for: .milliseconds(2))
                continue
            }
            return s
        }
    }

    /// Brings everything online; returns the final status to report.
    private func runOnline(generation gen: Int) -> Status {
        do {
            try step(gen, "open log")
            // The log's recovery scan asks for cancellation before every block it reads: a terminate
            // otherwise waited for the whole scan of a large log.
            var openOptions = config.openOptions
            let callerCancelled = openOptions.isCancelled
            openOptions.isCancelled = { [weak self] in (self?.isCancelled(gen) ?? true) || (callerCancelled?() ?? false) }
            let log: LogStore
            if config.io.fileExists(config.logDirectory + "/txlog.base") || config.createOptions == nil {
                log = try LogStore.open(at: config.logDirectory, options: openOptions, io: config.io)
            } else {
                log = try LogStore.create(at: config.logDirectory, options: config.createOptions!, openOptions: openOptions, io: config.io)
            }
            lock.withLock { self.log = log }
            try step(gen, "open transaction manager")
            let tm = try TransactionManager.openOrCreate(log: log, stream: config.tmStream, options: config.tmOptions)
            lock.withLock { self.tm = tm }
            try step(gen, "recover transaction manager")
            try tm.recover(
                progress: { [weak self] n in self?.progress(gen, "recover transaction manager (\(n) records)") },
                isCancelled: { [weak self] in self?.isCancelled(gen) ?? true })
            for spec in config.resourceManagers {
                try step(gen, "recover resource manager \(spec.id)")
                let rm = try tm.openOrCreateResourceManager(id: spec.id, description: spec.description, volatile: spec.volatile, handler: spec.handler)
                lock.withLock { rms[spec.id] = rm }
                try rm.recover()
            }
            let nowOnline = lock.withLock { () -> Bool in
                guard generation == gen, !cancelled else { return false }
                status = .online
                return true
            }
            guard nowOnline else { throw LogError(.terminated, "terminated while going online") }
            log.onFailure { [weak self] e in self?.failed(gen, e) }
            return .online
        } catch {
            let e = (error as? LogError) ?? LogError(.io, "\(error)")
            let wasCancelled = lock.withLock { cancelled || generation != gen }
            _ = shutDown(checkpoint: false)
            let final: Status = wasCancelled ? .terminated : .failed(e)
            lock.withLock { if generation == gen { status = final } }
            return final
        }
    }

    private func isCancelled(_ gen: Int) -> Bool { lock.withLock { cancelled || generation != gen } }

    private func step(_ gen: Int, _ name: String) throws {
        if isCancelled(gen) { throw LogError(.terminated, "terminated while going online (before \(name))") }
        progress(gen, name)
    }

    private func progress(_ gen: Int, _ name: String) {
        let s: Status? = lock.withLock {
            guard generation == gen, !cancelled else { return nil }
            checkpointCounter += 1
            status = .onlinePending(step: name, checkpoint: checkpointCounter)
            return status
        }
        if let s { report(s) }
    }

    private func failed(_ gen: Int, _ e: LogError) {
        let hs: [@Sendable (LogError) -> Void]? = lock.withLock {
            guard generation == gen, isOnlineLocked else { return nil }
            status = .failed(e)
            return failureHandlers
        }
        guard let hs else { return }
        report(.failed(e))
        for h in hs { h(e) }
    }

    private func report(_ s: Status) { onStatus?(s) }

    // MARK: Terminate and offline

    /// Stops at once: cancels a pending online, stops the TM without writing and closes the log. Safe to
    /// call at any time, from any thread, concurrently with ``online()``; idempotent. The log is left
    /// recoverable (recovery is idempotent, so an interrupted recovery is harmless).
    ///
    /// Called from the status handler while the worker reports progress (on the worker's thread), it only
    /// cancels: the worker stops at its next step and reports ``Status/terminated`` itself.
    public func terminate() {
        let (running, onWorker, gen, workerDone): (DispatchSemaphore?, Bool, Int, Bool) = lock.withLock {
            cancelled = true
            return (worker, workerThread.map { pthread_equal($0, pthread_self()) != 0 } ?? false, generation, finalReporting)
        }
        // From a progress report: the worker stops at its next step and reports `terminated` itself.
        if onWorker, !workerDone { return }
        if !onWorker {
            // The worker checks the flag between steps and for every block the log's and the TM's
            // recovery scans read.
            running?.wait()
            running?.signal()  // let other waiters (a second terminate) through
        }
        // An online() started since this call is not this terminate's to stop (its own terminate will).
        guard lock.withLock({ generation == gen }) else { return }
        _ = shutDown(checkpoint: false)
        let reportNow = lock.withLock { () -> Bool in
            guard generation == gen else { return false }
            status = .terminated
            // The worker is reporting its final status: it reports `terminated` after it.
            if finalReporting {
                stoppedWhileReporting = .terminated
                return false
            }
            return true
        }
        if reportNow { report(.terminated) }
    }

    /// Graceful stop: writes a TM checkpoint, then closes the RMs and the log. Waits for a pending
    /// online to stop first, so it throws `invalid-state` when called on the thread going online (from
    /// the status handler's progress report, or a resource manager's handler during its recovery):
    /// call ``terminate()`` there.
    public func offline() throws {
        let running: DispatchSemaphore? = try lock.withLock {
            // The worker would wait for itself.
            if !finalReporting, let workerThread, pthread_equal(workerThread, pthread_self()) != 0 {
                throw LogError(.invalidState, "offline() was called on the thread bringing the resource online (from a status or notification handler), which it would wait for: call terminate() there")
            }
            cancelled = true
            return worker
        }
        running?.wait()
        running?.signal()
        let error = shutDown(checkpoint: true)
        let reportNow = lock.withLock { () -> Bool in
            status = .offline
            // The worker is reporting its final status (online, say): it reports `offline` after it, so a
            // status handler never sees `offline` followed by that earlier status.
            if finalReporting {
                stoppedWhileReporting = .offline
                return false
            }
            return true
        }
        if reportNow { report(.offline) }
        if let error { throw error }
    }

    /// Stops the TM (with a checkpoint if asked) and closes the log; returns the first error.
    private func shutDown(checkpoint: Bool) -> LogError? {
        let (log, tm) = lock.withLock { () -> (LogStore?, TransactionManager?) in
            defer {
                self.log = nil
                self.tm = nil
                rms.removeAll()
            }
            return (self.log, self.tm)
        }
        var first: LogError?
        func note(_ body: () throws -> Void) {
            do { try body() } catch { first = first ?? (error as? LogError) ?? LogError(.io, "\(error)") }
        }
        if let tm {
            if checkpoint { note { try tm.close() } } else { tm.stop() }
        }
        if let log { note { try log.close() } }
        return first
    }
}
