// Removing containers: a free one at once, one holding records marked pending delete (recycling deletes it
// once every base has passed it). Adding them is in LogCore+AddContainers.swift.

import LogFormat

extension LogCore {
    /// Removes a container: a free one at once; one holding data is marked pending delete and removed
    /// once every base has passed it. A container the log has moved its records into but whose switch
    /// the writer has not yet recorded in the base file is made durable (flushed) first, so the base file
    /// marks the very container that holds them. For `autoShrink`, the container is removed only if it
    /// is still the one auto-shrink would remove (`shrinkVictimLocked`), else nothing is done.
    func removeContainer(_ physical: UInt32, autoShrink: Bool = false) throws {
        if readOnly { throw LogError(.readOnly, "the log is open read-only") }
        var flushed = false
        while true {
            let step = try lock.withLock { try removalStepLocked(physical, flushed: flushed, autoShrink: autoShrink) }
            switch step {
            case .done:
                return
            case .flushFirst(let last):
                try flush(upTo: last)
                flushed = true
            case .removeFree(let removed):
                defer {
                    lock.withLock {
                        state.containersBeingRemoved -= 1
                        spaceCondition.broadcast()  // a close() waiting for the removal to end
                    }
                }
                try removeFreeContainer(removed)
                return
            case .markPendingDelete(let logical):
                if try markPendingDelete(physical, logical: logical) { return }
            }
        }
    }

    private enum RemovalStep {
        case done
        /// The container holds records whose switch is not in the base file yet: flush up to this LSN.
        case flushFirst(LSN)
        /// Free, and already out of the live table (so no append can pick it).
        case removeFree(LiveContainer)
        /// Holds records of this logical container, recorded in the base file.
        case markPendingDelete(UInt32)
    }

    private func removalStepLocked(_ physical: UInt32, flushed: Bool, autoShrink: Bool) throws -> RemovalStep {
        try checkUsable()
        guard let c = state.containers[physical] else {
            throw LogError(.notFound, "no container \(physical)", container: physical)
        }
        if c.pendingDelete { return .done }
        // Auto-shrink chose it under an earlier hold of the lock. Meanwhile an append may have taken it (a
        // shrink then marked a container of records pending delete), or another shrink, racing this one,
        // removed a container (both together took the log below the policy's minimum).
        if autoShrink, shrinkVictimLocked() != physical { return .done }
        // Containers pending delete are on their way out: they do not count toward the minimum.
        guard keptContainerCountLocked() > Format.minContainerCount else {
            throw LogError(.invalidArgument, "a log keeps at least \(Format.minContainerCount) containers (not counting those pending delete)")
        }
        guard c.logical == 0 || c.logical != state.open.logical else {
            throw LogError(.invalidArgument, "container \(physical) is the one being written", container: physical)
        }
        guard c.logical == 0 else {
            // The base file lists it as holding data once the writer has recorded the switch into it.
            guard c.logical > state.persistedTailContainer else {
                // Marked now, so a concurrent removal counts it as gone; undone if the base-file write fails.
                state.containers[physical]?.pendingDelete = true
                return .markPendingDelete(c.logical)
            }
            guard !flushed else {
                throw LogError(.invalidArgument, "container \(physical) holds records not yet written; flush and retry", container: physical)
            }
            return .flushFirst(state.lastLSN)
        }
        guard freeContainerRemovableLocked() else {
            throw LogError(.logFull, "removing free container \(physical) would leave less free space than the reservations need (\(state.reservedTotal) bytes reserved); release reservations first", container: physical)
        }
        // Out of the free pool now, so no append can pick it while it is removed.
        state.containers[physical] = nil
        state.containersBeingRemoved += 1
        refreshAppendHintLocked()
        return .removeFree(c)
    }

    /// Containers that are not pending delete.
    func keptContainerCountLocked() -> Int {
        state.containers.values.reduce(0) { $0 + ($1.pendingDelete ? 0 : 1) }
    }

    /// Marks a container holding logical container `logical` (already marked in memory) pending delete
    /// in the base file. Returns false when it changed meanwhile (recycled), so the caller decides again.
    private func markPendingDelete(_ physical: UInt32, logical: UInt32) throws -> Bool {
        struct Changed: Error {}
        do {
            try updateMetaOrFail { m in
                guard let k = m.containers.firstIndex(where: { $0.physicalID == physical }),
                    m.containers[k].state.holdsData, m.containers[k].logicalID == logical
                else { throw Changed() }
                m.containers[k].state = .pendingDelete
            }
        } catch {
            lock.withLock { state.containers[physical]?.pendingDelete = false }
            if error is Changed { return false }
            throw error
        }
        return true
    }

    private func removeFreeContainer(_ removed: LiveContainer) throws {
        let physical = removed.physical
        do {
            try updateMetaOrFail { m in
                m.containers.removeAll { $0.physicalID == physical }
                m.containerNames[physical] = nil
            }
        } catch {
            lock.withLock { state.containers[physical] = removed }
            throw error
        }
        // The removal is durable now: the base file no longer names the container. Deleting the file is
        // cleanup, as for containers recycled away (`deleteInBackground`): an unlink that fails leaves an
        // orphan that `strayFiles` lists and no open reads, and the removal still stands, so it is not
        // reported as if the container were still there. A failed directory sync is fail-stop, as every
        // sync error is.
        // A read that looked the container up while it still held data (before recycling freed it) may be
        // reading it now: closed under it, its descriptor number could name another file by the time it
        // reads, or fail with EBADF (`io` for what is `notFound`).
        lock.withLock { waitForReadsLocked(of: [removed.fd]) }
        io.close(removed.fd)
        try? io.unlinkFreeingGradually(removed.path)
        do { try io.fsyncDirectory(directory) } catch let e as LogError where e.code == .io {
            lock.withLock { failLocked(e) }
            throw lock.withLock { state.failed ?? e }
        }
    }

    /// Waits (with `lock` held, which the wait lets go of) until no read is using any of `fds`, which the
    /// caller has already taken out of the live container table: no read can start using them now, so the
    /// wait ends once the reads already using them end, however busy reads of other containers are.
    func waitForReadsLocked(of fds: [Int32]) {
        while state.reads.using(fds) {
            waitingForReadsForTesting?()
            readsDone.wait()
        }
    }
}
