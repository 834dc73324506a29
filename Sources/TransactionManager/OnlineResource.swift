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
    let config: Configuration
    let onStatus: (@Sendable (Status) -> Void)?
    let lock = Lock()
    // Guarded by lock.
    private var status: Status = .offline
    private var generation = 0
    private var cancelled = false
    /// Signalled when the current online's worker is done, or when terminate left it behind.
    private var worker: DispatchSemaphore?
    /// The worker is inside a caller's code (an RM's handler during its recovery, the status handler).
    private var workerCallingOut = false
    /// Terminate left the current online's worker behind (inside a caller's code that did not return
    /// within ``Configuration/terminateGrace``): that worker changes nothing of the resource any more.
    private var abandoned = false
    /// Workers not yet finished, those left behind included (tests wait for them).
    var workersRunning: Int { lock.withLock { runningWorkers } }
    private var runningWorkers = 0
    /// Signalled when the last online's worker has made its last report: the next worker starts after
    /// it (unless it was left behind), so the reports of two onlines never interleave.
    private var lastWorkerEnded: DispatchSemaphore?
    /// The thread running the online worker, while it runs (a status report made on it may call terminate).
    private var workerThread: pthread_t?
    /// The online whose worker has finished (`done` is signalled) and is reporting its final status; a
    /// terminate or offline that completes meanwhile leaves its own report to that worker, so `terminated`
    /// or `offline` comes last. An online that does not wait for that worker (its successor was left
    /// behind) takes these fields back: the old worker then reports and clears nothing (it would have
    /// reported a stale stop after the new online's reports, and cleared the new worker's thread).
    private var finalReporter: Int?
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
        let (gen, done, afterFailure, previous, ended): (Int, DispatchSemaphore, Bool, DispatchSemaphore?, DispatchSemaphore) = try lock.withLock {
            var afterFailure = false
            switch status {
            case .online: throw LogError(.invalidState, "the resource is already online")
            case .onlinePending: throw LogError(.invalidState, "the resource is already going online")
            case .failed: afterFailure = true
            default: break
            }
            let previous = abandoned ? nil : lastWorkerEnded
            if previous == nil {
                // Not after the last worker's reports (a worker left behind waits for them): whatever that
                // worker still reports, if it ever returns from the status handler, is not this online's.
                finalReporter = nil
                stoppedWhileReporting = nil
                workerThread = nil
            }
            let ended = DispatchSemaphore(value: 0)
            lastWorkerEnded = ended
            generation += 1
            cancelled = false
            abandoned = false
            workerCallingOut = false
            checkpointCounter = 0
            status = .onlinePending(step: "starting", checkpoint: 0)
            let sem = DispatchSemaphore(value: 0)
            worker = sem
            runningWorkers += 1
            return (generation, sem, afterFailure, previous, ended)
        }
        // A log that failed while online is still open (and holds the log's lock): close it first.
        if afterFailure { _ = shutDown(checkpoint: false) }
        // A queue (so a thread) per online: a worker that terminate left behind, still inside a handler
        // that has not returned, must not hold up the next online's.
        DispatchQueue(label: "txlog.online-resource").async { [self] in
            defer {
                lock.withLock { runningWorkers -= 1 }
                ended.signal()
            }
            // After the previous worker's last report (made from the status handler, which may not return).
            callingOut(gen) {
                previous?.wait()
                previous?.signal()
            }
            // Every report of this online is made on the worker's thread (see terminate()).
            // Left behind while it waited (its predecessor's report did not return within the grace), it
            // reports nothing: terminate has reported `terminated` for it.
            let started = lock.withLock { () -> Bool in
                guard isCurrentLocked(gen) else { return false }
                workerThread = pthread_self()
                return true
            }
            if started { callingOut(gen) { report(.onlinePending(step: "starting", checkpoint: 0)) } }
            let final = runOnline(generation: gen)
            let current = lock.withLock { () -> Bool in
                guard isCurrentLocked(gen) else { return false }
                finalReporter = gen
                return true
            }
            done.signal()
            // Left behind by terminate, which reported for it and may have started another online since.
            guard current else { return }
            // Reported after the worker is done, so the status handler may call terminate() (or online()),
            // and only if it is still the status: a terminate may have completed meanwhile.
            if lock.withLock({ generation == gen && status == final }) {
                beforeFinalReportForTesting?()
                report(final)
            }
            let stoppedMeanwhile = lock.withLock { () -> Status? in
                // A later online that did not wait for this report took the fields back (see `finalReporter`).
                guard finalReporter == gen else { return nil }
                defer {
                    finalReporter = nil
                    stoppedWhileReporting = nil
                    workerThread = nil
                }
                return stoppedWhileReporting
            }
            if let stoppedMeanwhile { report(stoppedMeanwhile) }
        }
        // `done` is signalled by the worker, or by a terminate that left it behind; passed on to the
        // other waiters (terminate, offline).
        if done.wait(timeout: Self.deadline(after: config.onlineBudget)) == .timedOut { return .pending }
        done.signal()
        switch currentStatus {
        case .online: return .online
        case .failed(let e): throw e
        case .terminated, .offline: throw LogError(.terminated, "online was cancelled by terminate")
        case .onlinePending: return .pending
        }
    }

    /// `duration` from now. Saturating: a duration too long to count in nanoseconds (a caller's "as long
    /// as it takes") is the longest wait, not an overflow trap.
    static func deadline(after duration: Duration) -> DispatchTime {
        let parts = duration.components
        let (secondsPart, overflow) = UInt64(max(0, parts.seconds)).multipliedReportingOverflow(by: 1_000_000_000)
        let (sum, overflowSum) = secondsPart.addingReportingOverflow(UInt64(max(0, parts.attoseconds / 1_000_000_000)))
        let nanos = overflow || overflowSum ? UInt64.max : sum
        return .now() + .nanoseconds(Int(min(nanos, UInt64(Int.max))))
    }

    /// The worker of online `gen` is the current one: no later online, and terminate did not leave it behind.
    private func isCurrentLocked(_ gen: Int) -> Bool { generation == gen && !abandoned }

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
        // What this worker opened: it closes them itself if it stops, since a terminate that left it
        // behind (or cancelled it before they were published) does not know them.
        var openedLog: LogStore?
        var openedTM: TransactionManager?
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
            openedLog = log
            try publish(gen) { self.log = log }
            try step(gen, "open transaction manager")
            let tm = try TransactionManager.openOrCreate(log: log, stream: config.tmStream, options: config.tmOptions)
            openedTM = tm
            try publish(gen) { self.tm = tm }
            try step(gen, "recover transaction manager")
            try tm.recover(
                progress: { [weak self] n in self?.progress(gen, "recover transaction manager (\(n) records)") },
                isCancelled: { [weak self] in self?.isCancelled(gen) ?? true })
            for spec in config.resourceManagers {
                try step(gen, "recover resource manager \(spec.id)")
                let rm = try tm.openOrCreateResourceManager(id: spec.id, description: spec.description, volatile: spec.volatile, handler: spec.handler)
                try publish(gen) { rms[spec.id] = rm }
                // The RM's handler runs here, on this thread, and may never return.
                try callingOut(gen) { try rm.recover() }
            }
            try publish(gen) { status = .online }
            log.onFailure { [weak self] e in self?.failed(gen, e) }
            return .online
        } catch {
            let e = (error as? LogError) ?? LogError(.io, "\(error)")
            let (wasCancelled, current) = lock.withLock { (cancelled || !isCurrentLocked(gen), isCurrentLocked(gen)) }
            // Left behind, the resource's log and TM are no longer this worker's to close (a later online
            // may own them by now); its own it closes in any case (again, if they were published).
            if current { _ = shutDown(checkpoint: false) }
            openedTM?.stop()
            try? openedLog?.close()
            let final: Status = wasCancelled ? .terminated : .failed(e)
            lock.withLock { if isCurrentLocked(gen) { status = final } }
            return final
        }
    }

    /// Runs `body` under the lock, to store what the worker opened, unless this online was cancelled or
    /// left behind meanwhile: then throws `terminated` (the worker closes what it opened).
    private func publish(_ gen: Int, _ body: () -> Void) throws {
        let published = lock.withLock { () -> Bool in
            guard isCurrentLocked(gen), !cancelled else { return false }
            body()
            return true
        }
        if !published { throw LogError(.terminated, "terminated while going online") }
    }

    /// Runs a caller's code (an RM's handler, the status handler) on the worker: meanwhile a terminate
    /// may leave the worker behind (see ``Configuration/terminateGrace``).
    private func callingOut<T>(_ gen: Int, _ body: () throws -> T) rethrows -> T {
        lock.withLock { if isCurrentLocked(gen) { workerCallingOut = true } }
        defer { lock.withLock { if isCurrentLocked(gen) { workerCallingOut = false } } }
        return try body()
    }

    private func isCancelled(_ gen: Int) -> Bool { lock.withLock { cancelled || !isCurrentLocked(gen) } }

    private func step(_ gen: Int, _ name: String) throws {
        if isCancelled(gen) { throw LogError(.terminated, "terminated while going online (before \(name))") }
        progress(gen, name)
    }

    private func progress(_ gen: Int, _ name: String) {
        let s: Status? = lock.withLock {
            guard isCurrentLocked(gen), !cancelled else { return nil }
            checkpointCounter += 1
            status = .onlinePending(step: name, checkpoint: checkpointCounter)
            return status
        }
        if let s { callingOut(gen) { report(s) } }
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
    ///
    /// It waits for the worker only while the worker runs its own steps (which check for cancellation).
    /// A worker inside a resource manager's handler (during the RM's recovery) or the status handler for
    /// longer than ``Configuration/terminateGrace`` is left behind: the handler's later calls find the TM
    /// stopped (its transactions answer `closed`, the TM `not-online`), and the worker, when the handler
    /// returns, closes what it opened and reports nothing. A worker whose own step is stuck in a system
    /// call for longer than ``Configuration/stuckStepGrace`` is left behind too, with what it opened:
    /// it closes that when the call returns (the log's lock is held until then).
    public func terminate() {
        let (running, onWorker, gen, workerDone): (DispatchSemaphore?, Bool, Int, Bool) = lock.withLock {
            cancelled = true
            return (worker, workerThread.map { pthread_equal($0, pthread_self()) != 0 } ?? false, generation, finalReporter != nil)
        }
        // From a progress report: the worker stops at its next step and reports `terminated` itself.
        if onWorker, !workerDone { return }
        // A worker left behind never signals `running` in time: this terminate does, once the resource
        // is stopped, so that online() (waiting on it too) and other waiters see `terminated`.
        var leftBehind = false
        // Left behind inside its own step (stuck in a system call): what it opened is still in use by
        // that call, and closing it could wait for the call; the worker closes it when the call returns.
        var leftInStep = false
        defer { if leftBehind { running?.signal() } }
        if !onWorker, let running {
            // The worker checks the flag between steps and for every block the log's and the TM's
            // recovery scans read. Inside a caller's code (an RM's handler, the status handler) it checks
            // nothing: past the grace it is left behind, and touches nothing of the resource after. So is
            // a worker whose own step has not stopped within `stuckStepGrace`: it is stuck in a system call.
            let stuckAfter = Self.deadline(after: config.stuckStepGrace)
            while running.wait(timeout: Self.deadline(after: config.terminateGrace)) == .timedOut {
                let stuck = DispatchTime.now() >= stuckAfter
                let leave = lock.withLock { () -> Bool in
                    guard generation == gen, worker === running, workerCallingOut || stuck else { return false }
                    leftInStep = !workerCallingOut
                    abandoned = true
                    workerCallingOut = false
                    workerThread = nil
                    return true
                }
                if leave {
                    leftBehind = true
                    break
                }
            }
            if !leftBehind { running.signal() }  // let other waiters (a second terminate, offline, online) through
        }
        // An online() started since this call is not this terminate's to stop (its own terminate will).
        guard lock.withLock({ generation == gen }) else { return }
        if leftInStep { detach() } else { _ = shutDown(checkpoint: false) }
        let reportNow = lock.withLock { () -> Bool in
            guard generation == gen else { return false }
            status = .terminated
            // The worker is reporting its final status: it reports `terminated` after it. (A worker left
            // behind reports nothing: the flag is then its predecessor's, whose report may never end.)
            if finalReporter != nil, !leftBehind {
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
            if finalReporter == nil, let workerThread, pthread_equal(workerThread, pthread_self()) != 0 {
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
            if finalReporter != nil {
                stoppedWhileReporting = .offline
                return false
            }
            return true
        }
        if reportNow { report(.offline) }
        if let error { throw error }
    }

    /// Forgets the log, TM and RMs without closing them: a worker left behind in its own step opened
    /// them, and closes them itself when that step returns.
    private func detach() {
        lock.withLock {
            log = nil
            tm = nil
            rms.removeAll()
        }
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
