// Group commit: one background writer thread gathers the sealed blocks of every writer into large
// writes and issues one fdatasync per batch, so concurrent flushers share it. It is a dedicated thread,
// so no blocking system call ever runs on Swift's cooperative pool.

#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import LogFormat

extension LogCore {
    // MARK: Flush requests

    /// Blocks until every record at or below `target` is durable.
    func flush(upTo target: LSN) throws {
        let waiter = SyncFlushWaiter.forCurrentThread()
        let done: Bool = try lock.withLock {
            if try registerFlushLocked(target) { return true }
            state.waiters.append((target, .sync(waiter)))
            return false
        }
        if done { return }
        waiter.semaphore.wait()
        if let error = waiter.error {
            waiter.error = nil
            throw error
        }
    }

    /// Suspends until every record at or below `target` is durable. Never blocks a thread.
    func flushAsync(upTo target: LSN) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            lock.lock()
            do {
                if try registerFlushLocked(target) {
                    lock.unlock()
                    continuation.resume()
                    return
                }
                state.waiters.append((target, .async(continuation)))
                lock.unlock()
            } catch {
                lock.unlock()
                continuation.resume(throwing: error)
            }
        }
    }

    /// Checks a flush target; returns true if it is already durable, otherwise asks the writer for it.
    private func registerFlushLocked(_ target: LSN) throws -> Bool {
        if let failed = state.failed { throw failed }
        if state.closed { throw LogError(.closed, "the log is closed") }
        guard target <= state.lastLSN || target == .null else {
            throw LogError(.invalidArgument, "cannot flush to \(target): the last LSN is \(state.lastLSN)", lsn: target)
        }
        if target <= state.durableLSN { return true }
        if target > state.flushTarget { state.flushTarget = target }
        state.stats.flushRequests += 1
        workCondition.signal()
        return false
    }

    // MARK: The writer thread

    func startWriter() {
        let initialCRC = state.chainCRC
        let initialLSN = state.writtenLSN
        spawnThread { [self] in
            writerLoop(lastCRC: initialCRC, lastLSN: initialLSN)
            writerDone.signal()
        }
    }

    private func writerHasWorkLocked() -> Bool {
        if state.failed != nil { return state.stopping }
        return state.stopping || state.flushTarget > state.durableLSN
            || state.dirtyBytes >= min(options.groupCommit.maxBatchBytes, options.groupCommit.maxDirtyBytes)
    }

    private func writerLoop(lastCRC: UInt32, lastLSN: LSN) {
        var unsynced: Set<UInt32> = []
        var lastCRC = lastCRC
        var lastLSN = lastLSN
        let maxBatch = options.groupCommit.maxBatchBytes
        while true {
            lock.lock()
            while !writerHasWorkLocked() { workCondition.wait() }
            if state.failed != nil {
                lock.unlock()
                return
            }
            if options.groupCommit.lingerNanoseconds > 0, state.flushTarget > state.durableLSN, !state.stopping {
                workCondition.wait(nanoseconds: options.groupCommit.lingerNanoseconds)
            }
            let wantSync = state.stopping || state.flushTarget > state.durableLSN
            if state.open.count > 0, state.stopping || state.flushTarget >= state.open.position {
                sealLocked()
            }
            var count = 0
            var bytes = 0
            while count < state.sealed.count, count == 0 || bytes + state.sealed[count].diskLength <= maxBatch {
                bytes += state.sealed[count].diskLength
                count += 1
            }
            if count == 0 && unsynced.isEmpty && state.stopping {
                lock.unlock()
                return
            }
            let batch = Array(state.sealed[0..<count])
            var ends: [UInt32: UInt64] = [:]
            for c in state.containers.values where c.endOffset > 0 { ends[c.logical] = c.endOffset }
            lock.unlock()

            var syncs = 0
            do {
                try writeBatch(batch, closedEnds: ends, unsynced: &unsynced, lastCRC: &lastCRC, lastLSN: &lastLSN, syncs: &syncs)
                if wantSync {
                    for physical in unsynced.sorted() {
                        try syncContainer(physical)
                        syncs += 1
                    }
                    unsynced.removeAll()
                }
            } catch {
                lock.lock()
                failLocked(error)
                lock.unlock()
                continue
            }

            lock.lock()
            for b in state.sealed[0..<count] {
                if b.pooled { state.pool.append(b.buffer) } else { b.buffer.deallocate() }
            }
            state.sealed.removeFirst(count)
            state.dirtyBytes -= bytes
            if let last = batch.last { state.writtenLSN = last.lastLSN }
            if wantSync && unsynced.isEmpty { state.durableLSN = state.writtenLSN }
            state.stats.syncs += UInt64(syncs)
            if count > 0 {
                state.stats.batches += 1
                state.stats.blocksWritten += UInt64(count)
                state.stats.bytesWritten += UInt64(bytes)
                let bucket = min(state.stats.batchBlocksHistogram.count - 1, Int.bitWidth - 1 - count.leadingZeroBitCount)
                state.stats.batchBlocksHistogram[bucket] += 1
            }
            let durable = state.durableLSN
            var ready: [FlushWaiter] = []
            state.waiters.removeAll { entry in
                if entry.target <= durable {
                    ready.append(entry.waiter)
                    return true
                }
                return false
            }
            spaceCondition.broadcast()
            lock.unlock()
            // The woken flushers append again before the next batch is taken, which keeps batches large.
            // (Handing the wake-ups to another thread let the next fsync start with only stragglers in
            // it: fewer commits per fdatasync; measured and reverted.)
            for w in ready { resume(w, with: nil) }
        }
    }

    /// Writes a batch: one `pwritev` per run of blocks that are contiguous in one container. Before the
    /// first block of a new logical container, the previous container is synced and the base file records
    /// the switch, so the base file never points past data that is not durable.
    private func writeBatch(
        _ batch: [SealedBlock], closedEnds: [UInt32: UInt64], unsynced: inout Set<UInt32>, lastCRC: inout UInt32,
        lastLSN: inout LSN, syncs: inout Int
    ) throws {
        var i = 0
        while i < batch.count {
            var j = i + 1
            var end = batch[i].offset + UInt64(batch[i].diskLength)
            while j < batch.count, batch[j].physical == batch[i].physical, batch[j].offset == end {
                end += UInt64(batch[j].diskLength)
                j += 1
            }
            let run = batch[i..<j]
            let first = batch[i]
            let current = lock.withLock { state.persistedTailContainer }
            if first.logical > current {
                for physical in unsynced.sorted() {
                    try syncContainer(physical)
                    syncs += 1
                }
                unsynced.removeAll()
                // Everything written so far is on stable storage now; base-file snapshots may rely on it.
                // (`durableLSN` itself moves at the end of the batch, once the base file is written too.)
                lock.withLock { if lastLSN > state.syncedLSN { state.syncedLSN = lastLSN } }
                try recordContainerSwitch(to: first, closedEnds: closedEnds, previousLSN: lastLSN, previousCRC: lastCRC)
            }
            let fd = try fileDescriptor(physical: first.physical)
            do {
                try io.writeAll(fd, run.map { UnsafeRawBufferPointer(rebasing: $0.buffer[0..<$0.diskLength]) }, at: first.offset)
            } catch let e as LogError {
                throw annotate(e, physical: first.physical, offset: first.offset)
            }
            unsynced.insert(first.physical)
            if let last = run.last {
                lastCRC = last.crc
                lastLSN = last.lastLSN
            }
            i = j
        }
    }

    /// Persists that `block`'s logical container is now the tail (and that the ones before it are closed).
    private func recordContainerSwitch(to block: SealedBlock, closedEnds: [UInt32: UInt64], previousLSN: LSN, previousCRC: UInt32) throws {
        try updateMeta { m in
            for k in m.containers.indices {
                let c = m.containers[k]
                if c.state.holdsData, c.logicalID < block.logical, let e = closedEnds[c.logicalID] {
                    m.containers[k].endOffset = e
                }
                if c.physicalID == block.physical {
                    m.containers[k].logicalID = block.logical
                    m.containers[k].state = .active
                    m.containers[k].endOffset = 0
                }
            }
            m.scanStart = LSN(uncheckedContainer: block.logical, blockOffset: UInt64(Format.containerDataStart), slot: 0)
            m.scanStartPreviousLSN = previousLSN
            m.scanStartPreviousCRC = previousCRC
            m.durableWatermark = max(m.durableWatermark, previousLSN)
        }
    }

    func syncContainer(_ physical: UInt32) throws {
        let fd = try fileDescriptor(physical: physical)
        do { try io.fdatasync(fd) } catch let e as LogError { throw annotate(e, physical: physical, offset: nil) }
    }

    func fileDescriptor(physical: UInt32) throws -> Int32 {
        guard let fd = lock.withLock({ state.containers[physical]?.fd }) else {
            throw LogError(.notFound, "container \(physical) is not open", container: physical)
        }
        return fd
    }

    func annotate(_ e: LogError, physical: UInt32, offset: UInt64?) -> LogError {
        var e = e
        e.container = physical
        e.offset = offset
        e.path = lock.withLock { state.containers[physical]?.path }
        return e
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
        for w in waiters { resume(w.waiter, with: failed) }
        let handlers = failureHandlers
        if !handlers.isEmpty {
            // Called off this thread: the log's lock is held here.
            let error = failed
            DispatchQueue.global().async { for h in handlers { h(error) } }
        }
    }

    func resume(_ waiter: FlushWaiter, with error: LogError?) {
        switch waiter {
        case .sync(let w):
            w.error = error
            w.semaphore.signal()
        case .async(let c):
            if let error { c.resume(throwing: error) } else { c.resume() }
        }
    }
}

/// Runs `body` on a new detached POSIX thread.
func spawnThread(_ body: @escaping @Sendable () -> Void) {
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
    precondition(rc == 0, "pthread_create failed: \(rc)")
    pthread_detach(thread)
}
