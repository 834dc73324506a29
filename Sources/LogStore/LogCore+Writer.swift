// Group commit. One owner at a time runs the write pipeline (`state.writing`): it gathers the sealed
// blocks of every writer into large writes and issues one fdatasync per batch, so concurrent flushers
// share it. The owner is either the background writer thread, or a thread calling the synchronous
// `flush(upTo:)` that found the writer thread idle and writes inline (which saves the two thread
// hand-offs of asking the writer thread and being woken by it). Under concurrent load the writer
// thread stays busy, flushers queue for its next batch, and batches stay large. Threads in a synchronous
// flush sleep on the flush gate (FlushGate.swift), woken by one futex wake per batch; asynchronous
// flushes are continuations resumed by the batch's owner. Asynchronous flushes never write inline, so no
// blocking system call ever runs on Swift's cooperative pool.

#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import LogFormat

extension LogCore {
    // MARK: Flush requests

    /// Blocks until every record at or below `target` is durable. If the writer thread is idle and no
    /// batch is being written, the calling thread writes and syncs one itself; otherwise it sleeps on the
    /// flush gate until the batch in progress, or the writer thread's next one, has made it durable.
    func flush(upTo target: LSN) throws {
        lock.lock()
        let isDurable: Bool
        do { isDurable = try checkFlushTargetLocked(target) } catch {
            lock.unlock()
            throw error
        }
        if isDurable {
            lock.unlock()
            return
        }
        var ticket: FlushGate.Ticket
        if !state.writing, state.writerIdle, options.groupCommit.lingerNanoseconds == 0 {
            requestFlushLocked(target, wakeWriter: false)
            let ready = scheduleCompletionsLocked(writeInlineLocked(until: target))
            let failed = state.failed
            let done = target <= state.durableLSN
            let wakes = gate.takeWakesLocked()
            let waitTicket = done || failed != nil ? nil : gate.ticketLocked(for: target)
            lock.unlock()
            resume(ready)
            gate.wake(wakes)
            guard let waitTicket else {
                if let failed { throw failed }
                return
            }
            ticket = waitTicket
        } else {
            requestFlushLocked(target, wakeWriter: true)
            ticket = gate.ticketLocked(for: target)
            lock.unlock()
        }
        while true {
            gate.sleep(ticket)
            if gate.isDurable(target) { return }
            lock.lock()
            if target <= state.durableLSN {
                lock.unlock()
                return
            }
            if let failed = state.failed {
                lock.unlock()
                throw failed
            }
            if state.closed {
                lock.unlock()
                throw LogError(.closed, "the log was closed before \(target) became durable", lsn: target)
            }
            ticket = gate.ticketLocked(for: target)
            lock.unlock()
        }
    }

    /// Suspends until every record at or below `target` is durable. Never blocks a thread: the writer
    /// thread does the work.
    func flushAsync(upTo target: LSN) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            lock.lock()
            do {
                if try checkFlushTargetLocked(target) {
                    lock.unlock()
                    continuation.resume()
                    return
                }
                requestFlushLocked(target, wakeWriter: true)
                state.waiters.append((target, .task(continuation)))
                lock.unlock()
            } catch {
                lock.unlock()
                continuation.resume(throwing: error)
            }
        }
    }

    /// Calls `completion` on the completion queue once every record at or below `target` is durable, or
    /// with the error that says it will not be. Never blocks and creates no task.
    func whenDurable(_ target: LSN, _ completion: @escaping @Sendable (LogError?) -> Void) {
        lock.lock()
        let immediate: LogError??
        do {
            // A target the close made durable (close flushes everything) completes with nil: `closed`
            // says the record will never be durable, and a store hearing it rolls back a commit whose
            // record recovery then applies.
            if state.closed, state.failed == nil, target <= state.durableLSN {
                immediate = .some(nil)
            } else if try checkFlushTargetLocked(target) {
                immediate = .some(nil)
            } else {
                requestFlushLocked(target, wakeWriter: true)
                state.waiters.append((target, .handler(completion)))
                immediate = nil
            }
        } catch {
            immediate = .some((error as? LogError) ?? LogError(.io, "\(error)"))
        }
        lock.unlock()
        if let outcome = immediate { completions.async { completion(outcome) } }
    }

    /// Queues the completions of flushes now durable on the completion queue, under the lock, so they run
    /// in the order their batches became durable (an inline flusher and the writer thread may finish
    /// batches back to back, and close() waits for the queue); returns the tasks to resume.
    func scheduleCompletionsLocked(_ ready: [FlushWaiter]) -> [FlushWaiter] {
        // The usual batch has only tasks (async flushes) or only handlers (`whenDurable`): no split into
        // new arrays then.
        var hasTask = false
        var hasHandler = false
        for w in ready {
            switch w {
            case .task: hasTask = true
            case .handler: hasHandler = true
            }
        }
        if !hasHandler { return ready }
        if !hasTask {
            completions.async { for case .handler(let h) in ready { h(nil) } }
            return []
        }
        var handlers: [@Sendable (LogError?) -> Void] = []
        var tasks: [FlushWaiter] = []
        for w in ready {
            switch w {
            case .task: tasks.append(w)
            case .handler(let h): handlers.append(h)
            }
        }
        if !handlers.isEmpty {
            let owed = handlers
            completions.async { for h in owed { h(nil) } }
        }
        return tasks
    }

    /// Resumes the tasks of flushes now durable. Called without the lock.
    func resume(_ tasks: [FlushWaiter]) {
        for case .task(let c) in tasks { c.resume() }
    }

    /// Checks a flush target; returns true if it is already durable.
    private func checkFlushTargetLocked(_ target: LSN) throws -> Bool {
        if let failed = state.failed { throw failed }
        if state.closed { throw LogError(.closed, "the log is closed") }
        guard target <= state.lastLSN || target == .null else {
            throw LogError(.invalidArgument, "cannot flush to \(target): the last LSN is \(state.lastLSN)", lsn: target)
        }
        if target <= state.durableLSN { return true }
        // No writer thread would ever make it durable: a wait here never ended.
        if readOnly {
            throw LogError(
                .readOnly,
                "the log is open read-only: it cannot make \(target) durable, and knows records durable up to \(state.durableLSN) (its writer makes the rest durable; refresh() to see more)",
                lsn: target)
        }
        return false
    }

    /// Raises the flush target; wakes the writer thread unless the caller writes inline.
    private func requestFlushLocked(_ target: LSN, wakeWriter: Bool) {
        if target > state.flushTarget { state.flushTarget = target }
        state.stats.flushRequests += 1
        if wakeWriter { workCondition.signal() }
    }

    /// Runs the pipeline on the calling thread until `target` is durable or the log has failed, then
    /// hands any remaining work to the writer thread. Returns the other flushers now satisfied.
    private func writeInlineLocked(until target: LSN) -> [FlushWaiter] {
        state.writing = true
        var cursor = takeCursorLocked()
        var ready: [FlushWaiter] = []
        while state.failed == nil, target > state.durableLSN {
            let turn = writeOneBatchLocked(&cursor)
            ready += turn.ready
            if turn.finished { break }
        }
        state.cursor = cursor
        state.writing = false
        if writerHasWorkLocked() { workCondition.signal() }
        return ready
    }

    /// Moves the pipeline's cursor out of `state`, so the owner mutates a uniquely referenced copy.
    private func takeCursorLocked() -> WriteCursor {
        let cursor = state.cursor
        state.cursor.unsynced = []
        state.cursor.buffers = []
        return cursor
    }

    // MARK: The writer thread

    /// Starts the writer thread; false when the system starts no thread (its limit on threads, or on
    /// memory for their stacks): the open then fails with a typed error instead of trapping.
    func startWriter() -> Bool {
        lock.withLock { state.cursor = WriteCursor(unsynced: [], lastCRC: state.chainCRC, lastLSN: state.writtenLSN) }
        let body: @Sendable () -> Void = { [self] in
            writerLoop()
            writerDone.signal()
        }
        return (options.startThreadForTesting ?? trySpawnThread)(body)
    }

    private func writerHasWorkLocked() -> Bool {
        if state.failed != nil { return state.stopping }
        // `dirtyBytes > 0`: with maxDirtyBytes 0 an idle writer would otherwise spin on nothing.
        return state.stopping || state.flushTarget > state.durableLSN
            || (state.dirtyBytes > 0 && state.dirtyBytes >= min(options.groupCommit.maxBatchBytes, options.groupCommit.maxDirtyBytes))
    }

    private func writerLoop() {
        while true {
            lock.lock()
            while state.writing || !writerHasWorkLocked() {
                state.writerIdle = true
                workCondition.wait()
                state.writerIdle = false
            }
            if options.groupCommit.lingerNanoseconds > 0, state.failed == nil, state.flushTarget > state.durableLSN, !state.stopping {
                workCondition.wait(nanoseconds: options.groupCommit.lingerNanoseconds)
            }
            if state.failed != nil {
                lock.unlock()
                return
            }
            state.writing = true
            var cursor = takeCursorLocked()
            let turn = writeOneBatchLocked(&cursor)
            state.cursor = cursor
            state.writing = false
            let tasks = scheduleCompletionsLocked(turn.ready)
            let wakes = gate.takeWakesLocked()
            lock.unlock()
            gate.wake(wakes)
            // The woken flushers append again before the next batch is taken, which keeps batches large.
            // (Handing the wake-ups to another thread let the next fsync start with only stragglers in
            // it: fewer commits per fdatasync; measured and reverted.)
            resume(tasks)
            if turn.finished { return }
        }
    }

    /// Enters the sticky failed state: every waiting and later flush or append throws.
    func failLocked(_ error: any Error) {
        guard state.failed == nil else { return }
        let cause = (error as? LogError) ?? LogError(.io, "\(error)")
        var failed = LogError(
            .failed, "the log stopped after an I/O error and acknowledges nothing more until reopened: \(cause.message)",
            container: cause.container, offset: cause.offset, path: cause.path, errno: cause.errno)
        failed.lsn = cause.lsn
        state.failed = failed
        let waiters = state.waiters
        state.waiters.removeAll()
        spaceCondition.broadcast()
        workCondition.broadcast()
        var owedHandlers: [@Sendable (LogError?) -> Void] = []
        for w in waiters {
            switch w.waiter {
            case .task(let c): c.resume(throwing: failed)
            case .handler(let h): owedHandlers.append(h)
            }
        }
        if !owedHandlers.isEmpty {
            // On the completion queue, as always: the lock is held here, and a completion may call the log.
            let error = failed
            let owed = owedHandlers
            completions.async { for h in owed { h(error) } }
        }
        gate.releaseEveryoneLocked()
        gate.wake(gate.takeWakesLocked())  // under the lock: rare, and the sleepers re-check under it
        let handlers = failureHandlers
        if !handlers.isEmpty {
            // Called off this thread: the log's lock is held here.
            let error = failed
            DispatchQueue.global().async { for h in handlers { h(error) } }
        }
    }
}

/// Runs `body` on a new detached POSIX thread; false (and `body` is dropped) if none can be started.
func trySpawnThread(_ body: @escaping @Sendable () -> Void) -> Bool {
    final class Box {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
    let context = Unmanaged.passRetained(Box(body)).toOpaque()
    var thread = pthread_t()
    let rc = pthread_create(&thread, nil, { raw in
        guard let raw else { return nil }
        Unmanaged<Box>.fromOpaque(raw).takeRetainedValue().body()
        return nil
    }, context)
    guard rc == 0 else {
        Unmanaged<Box>.fromOpaque(context).release()
        return false
    }
    pthread_detach(thread)
    return true
}
