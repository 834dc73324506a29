// One turn of the group-commit pipeline (see LogCore+Writer): take a batch of sealed blocks, write it
// with one `pwritev` per contiguous run, record container switches in the base file, and sync.

import LogFormat

extension LogCore {
    // MARK: One turn of the pipeline

    /// Run by the owner of `state.writing` with `lock` held (released during the I/O, held again on
    /// return). Seals the open block if a flush needs it, writes up to `maxBatchBytes` of sealed
    /// blocks, syncs them if a flush waits, and publishes the new written and durable LSNs. Returns the
    /// asynchronous flush waiters now satisfied, removed from `state.waiters` (resume them after
    /// unlocking; the flush gate's sleepers are owed `gate.takeWakesLocked()`, also after unlocking);
    /// `finished` is true when the log is stopping and nothing was left to write or sync. An I/O error
    /// puts the log in its failed state.
    func writeOneBatchLocked(_ cursor: inout WriteCursor) -> (ready: [FlushWaiter], finished: Bool) {
        let wantSync = state.stopping || state.flushTarget > state.durableLSN
        if state.open.count > 0, state.stopping || state.flushTarget >= state.open.position {
            sealLocked()
        }
        let maxBatch = options.groupCommit.maxBatchBytes
        var count = 0
        var bytes = 0
        while count < state.sealed.count, count == 0 || bytes + state.sealed[count].diskLength <= maxBatch {
            bytes += state.sealed[count].diskLength
            count += 1
        }
        if count == 0 && cursor.unsynced.isEmpty && state.stopping { return ([], true) }
        var batch = Array(state.sealed[0..<count])
        // Sleepers whose target this batch covers wait for its generation; the others for the next.
        gate.inFlightCover = wantSync ? (batch.last?.lastLSN ?? state.writtenLSN) : nil
        var ends: [UInt32: UInt64] = [:]
        for c in state.containers.values where c.endOffset > 0 { ends[c.logical] = c.endOffset }
        lock.unlock()

        var syncs = 0
        do {
            try writeBatch(batch, closedEnds: ends, cursor: &cursor, syncs: &syncs)
            if wantSync { try syncUnsynced(&cursor, syncs: &syncs) }
        } catch {
            lock.lock()
            failLocked(error)
            return ([], false)
        }

        lock.lock()
        for b in state.sealed[0..<count] {
            state.dirtyBytes -= b.buffer.count  // what `sealLocked` counted
            if b.pooled { state.pool.append(b.buffer) } else { b.buffer.deallocate() }
        }
        let batchLast = batch.last?.lastLSN
        // The batch shares `state.sealed`'s storage: dropped first, the removal below is in place, not a copy.
        batch = []
        state.sealed.removeFirst(count)
        refreshAppendHintLocked()
        if let last = batchLast { state.writtenLSN = last }
        if wantSync && cursor.unsynced.isEmpty { state.durableLSN = state.writtenLSN }
        if wantSync { gate.completeLocked(durable: state.durableLSN) }
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
        return (ready, false)
    }

    /// Writes a batch: one `pwritev` per run of blocks that are contiguous in one container. Before the
    /// first block of a new logical container, the previous container is synced and the base file records
    /// the switch, so the base file never points past data that is not durable.
    private func writeBatch(
        _ batch: [SealedBlock], closedEnds: [UInt32: UInt64], cursor: inout WriteCursor, syncs: inout Int
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
                try syncUnsynced(&cursor, syncs: &syncs)
                // Everything written so far is on stable storage now; base-file snapshots may rely on it.
                // (`durableLSN` itself moves at the end of the batch, once the base file is written too.)
                lock.withLock { if cursor.lastLSN > state.syncedLSN { state.syncedLSN = cursor.lastLSN } }
                try recordContainerSwitch(to: first, closedEnds: closedEnds, previousLSN: cursor.lastLSN, previousCRC: cursor.lastCRC)
            }
            let fd = try fileDescriptor(physical: first.physical)
            for b in run { cursor.buffers.append(UnsafeRawBufferPointer(rebasing: b.buffer[0..<b.diskLength])) }
            do {
                defer { cursor.buffers.removeAll(keepingCapacity: true) }
                try io.writeAll(fd, cursor.buffers, at: first.offset)
            } catch let e as LogError {
                throw annotate(e, physical: first.physical, offset: first.offset)
            }
            cursor.unsynced.insert(first.physical)
            if let last = run.last {
                cursor.lastCRC = last.crc
                cursor.lastLSN = last.lastLSN
            }
            i = j
        }
    }

    /// Persists that `block`'s logical container is now the tail (and that the ones before it are closed).
    private func recordContainerSwitch(to block: SealedBlock, closedEnds: [UInt32: UInt64], previousLSN: LSN, previousCRC: UInt32) throws {
        let freed = try updateMeta { m in
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
        // The switch can free containers (the last one the scan started in, when no stream's base is
        // recorded yet): auto-shrink checks them, off this thread (see `shrinkInBackground`).
        if freed > 0 { shrinkInBackground() }
    }

    /// Syncs the containers written since their last sync, in order of physical id, and forgets them.
    /// The usual batch wrote one container: synced without sorting the set (an array per batch).
    private func syncUnsynced(_ cursor: inout WriteCursor, syncs: inout Int) throws {
        if cursor.unsynced.count == 1, let only = cursor.unsynced.first {
            try syncContainer(only)
            syncs += 1
        } else {
            for physical in cursor.unsynced.sorted() {
                try syncContainer(physical)
                syncs += 1
            }
        }
        cursor.unsynced.removeAll(keepingCapacity: true)
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
}
