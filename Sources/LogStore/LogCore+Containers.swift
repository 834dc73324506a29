// Changes to the base file while the log is open: adding and removing containers, moving the base
// (which recycles containers), and the clean-close record.

import LogFormat

extension LogCore {
    /// Applies `change` to a copy of the base record, writes it to the alternate slot and syncs it.
    /// Serialised by `metaLock`; `meta` only changes once the write succeeded.
    func updateMeta(_ change: (inout BaseRecord) throws -> Void) throws {
        guard let baseFile else { throw LogError(.readOnly, "the log is open read-only") }
        try metaLock.withLock {
            var next = meta
            try change(&next)
            next.generation += 1
            next.flags &= ~BaseRecord.cleanShutdownFlag
            try next.validate()
            do { try baseFile.write(next) } catch var e as LogError {
                e.path = baseFile.path
                throw e
            }
            meta = next
        }
        lock.withLock { state.stats.baseWrites += 1 }
    }

    /// Creates one more container and records it in the base file. Returns its physical id.
    func addContainer() throws -> UInt32 {
        if readOnly { throw LogError(.readOnly, "the log is open read-only") }
        try lock.withLock { try checkUsable() }
        return try metaLock.withLock {
            guard meta.containers.count < Format.maxContainerCount else {
                throw LogError(.invalidArgument, "the log already has \(Format.maxContainerCount) containers")
            }
            let physical = meta.nextPhysicalID
            let fd = try ContainerFiles.create(io: io, directory: directory, logID: logID, physicalID: physical, size: containerSize)
            do {
                try io.fsyncDirectory(directory)
                var next = meta
                next.nextPhysicalID += 1
                next.containers.append(ContainerEntry(physicalID: physical, logicalID: 0, state: .inactive, endOffset: 0))
                next.generation += 1
                next.flags &= ~BaseRecord.cleanShutdownFlag
                try baseFile!.write(next)
                meta = next
            } catch {
                io.close(fd)
                throw error
            }
            lock.withLock {
                state.containers[physical] = LiveContainer(physical: physical, fd: fd, logical: 0, endOffset: 0)
                state.stats.baseWrites += 1
            }
            return physical
        }
    }

    /// Removes an inactive container: drops it from the base file, then deletes the file.
    func removeContainer(_ physical: UInt32) throws {
        if readOnly { throw LogError(.readOnly, "the log is open read-only") }
        try metaLock.withLock {
            let fd: Int32 = try lock.withLock {
                try checkUsable()
                guard let c = state.containers[physical] else {
                    throw LogError(.notFound, "no container \(physical)", container: physical)
                }
                guard c.logical == 0 else {
                    throw LogError(.invalidArgument, "container \(physical) holds live data (logical container \(c.logical)); advance the base past it first", container: physical)
                }
                guard state.containers.count > Format.minContainerCount else {
                    throw LogError(.invalidArgument, "a log keeps at least \(Format.minContainerCount) containers")
                }
                // Taken out of the free pool now, so no append can pick it while it is removed.
                state.containers[physical] = nil
                return c.fd
            }
            var next = meta
            next.containers.removeAll { $0.physicalID == physical }
            next.generation += 1
            next.flags &= ~BaseRecord.cleanShutdownFlag
            do { try baseFile!.write(next) } catch {
                lock.withLock { state.containers[physical] = LiveContainer(physical: physical, fd: fd, logical: 0, endOffset: 0) }
                throw error
            }
            meta = next
            io.close(fd)
            try io.unlink(ContainerFiles.path(directory: directory, physicalID: physical))
            try io.fsyncDirectory(directory)
        }
    }

    /// Moves the log's base to `lsn`: records below it are no longer needed, and containers wholly below
    /// it are recycled (they become free for new logical containers).
    func advanceBase(to lsn: LSN) throws {
        if readOnly { throw LogError(.readOnly, "the log is open read-only") }
        let (current, last, durable) = try lock.withLock {
            try checkUsable()
            return (state.baseLSN, state.lastLSN, state.durableLSN)
        }
        guard lsn >= current else { throw LogError(.invalidArgument, "new base \(lsn) is below the current base \(current)", lsn: lsn) }
        guard lsn <= last, lsn.isValid else { throw LogError(.invalidArgument, "new base \(lsn) is beyond the last LSN \(last)", lsn: lsn) }
        // Only containers below the durable part are recycled, so the base file never frees a container
        // that the scan start or unwritten data still needs.
        let recycleBelow = min(lsn.container, durable.container)
        var freed: [UInt32] = []
        try updateMeta { m in
            m.baseLSN = lsn
            for k in m.containers.indices where m.containers[k].state == .active && m.containers[k].logicalID < recycleBelow
                && m.containers[k].logicalID < m.scanStart.container
            {
                freed.append(m.containers[k].physicalID)
                m.containers[k].state = .inactive
                m.containers[k].logicalID = 0
                m.containers[k].endOffset = 0
            }
        }
        lock.withLock {
            state.baseLSN = lsn
            for p in freed {
                if let l = state.containers[p]?.logical {
                    state.logicalToPhysical[l] = nil
                    cache.evict(container: l)
                }
                state.containers[p]?.logical = 0
                state.containers[p]?.endOffset = 0
            }
        }
    }

    /// Flushes everything, stops the writer and records a clean shutdown.
    func close() throws {
        let alreadyClosed: Bool = lock.withLock {
            if state.closed || state.stopping { return true }
            state.stopping = true
            workCondition.signal()
            return false
        }
        if alreadyClosed { return }
        defer { releaseFiles() }
        if !readOnly { writerDone.wait() }
        let (failed, durable) = lock.withLock { () -> (LogError?, LSN) in
            state.closed = true
            spaceCondition.broadcast()
            return (state.failed, state.durableLSN)
        }
        if let failed { throw failed }
        if readOnly { return }
        try metaLock.withLock {
            var next = meta
            next.generation += 1
            next.flags |= BaseRecord.cleanShutdownFlag
            next.durableWatermark = max(next.durableWatermark, durable)
            try baseFile!.write(next)
            meta = next
        }
    }
}
