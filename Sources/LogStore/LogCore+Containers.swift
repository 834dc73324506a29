// Changes to the base file while the log is open: every update goes through `updateMeta`, which also
// records the stream table and recycles containers that every base and archive tail have passed.

import Dispatch
import LogFormat

extension LogCore {
    /// Applies `change` to a copy of the base record, refreshes the stream table and recycling, writes it
    /// to the alternate slot and syncs it. Serialised by `metaLock`; `meta` and the live container table
    /// only change once the write succeeded. A record that would not validate, or would not fit a slot
    /// (too many streams with long names), is refused with `invalidArgument` before anything is written.
    /// A new `policy` is written with it and put in force once the write succeeded (see `setPolicy`).
    /// Returns how many containers the update's recycling freed.
    @discardableResult
    func updateMeta(cleanShutdown: Bool = false, policy: LogPolicy? = nil, _ change: (inout BaseRecord) throws -> Void) throws -> Int {
        guard let baseFile else { throw LogError(.readOnly, "the log is open read-only") }
        var deleted: [LiveContainer] = []
        var freed = 0
        try metaLock.withLock {
            // close() writes the last base record (cleanShutdown) and then releases the files; nothing else
            // may write the base file once close has begun its final update.
            try lock.withLock {
                if state.filesReleased || (state.closed && !cleanShutdown) { throw LogError(.closed, "the log is closed") }
                // Sticky: once the log failed (here, often an update that held this lock before us and
                // got EIO) no change is written or acknowledged, though the caller checked before waiting.
                if let failed = state.failed { throw failed }
            }
            var next = meta
            try change(&next)
            lock.withLock {
                next.streams = streamEntriesLocked(scanStart: next.scanStart, previous: meta.streams)
                next.nextStreamID = state.nextStreamID
                next.archiveTail = state.archiveTail
                next.policy = policy ?? state.policy
            }
            let recycled = Recycling.apply(to: &next)
            next.generation += 1
            if cleanShutdown { next.flags |= BaseRecord.cleanShutdownFlag } else { next.flags &= ~BaseRecord.cleanShutdownFlag }
            // Checked before validate() (which checks it too) for a message that says what to do.
            guard next.payloadLength <= BaseRecord.maxPayloadLength else {
                throw LogError(
                    .invalidArgument,
                    "refused a base-file update: the stream table (\(next.streams.count) streams), container table and container names would take \(next.payloadLength) bytes, more than the \(BaseRecord.maxPayloadLength) a base-file slot holds; delete streams or use shorter stream names"
                )
            }
            do { try next.validate() } catch let e as LogError {
                throw LogError(.invalidArgument, "refused a base-file update that would not validate: \(e.message)")
            }
            do { try baseFile.write(next) } catch var e as LogError {
                e.path = baseFile.path
                // Failed here, under `metaLock`, not by the caller after it let go: an update waiting for
                // the lock would otherwise write (and acknowledge) its change in between.
                if e.code == .io { lock.withLock { failLocked(e) } }
                throw e
            }
            meta = next
            freed = recycled.freed.count
            deleted = lock.withLock {
                if let policy { state.policy = policy }
                state.persistedTailContainer = next.scanStart.container
                return applyRecyclingLocked(recycled)
            }
            // Counted before `metaLock` is let go: close() makes its last update under it and then waits for
            // the deletions, so one counted after it could close a descriptor and unlink a file after
            // close() returned (the descriptor's number perhaps another file's by then).
            if !deleted.isEmpty { deletions.enter() }
        }
        lock.withLock { state.stats.baseWrites += 1 }
        afterMetaUpdateForTesting?(deleted.count)
        if !deleted.isEmpty { deleteInBackground(deleted) }
        return freed
    }

    /// Brings the live container table in line with a recycling decision that is now persisted.
    private func applyRecyclingLocked(_ r: Recycling.Result) -> [LiveContainer] {
        var deleted: [LiveContainer] = []
        for p in r.freed {
            if let l = state.containers[p]?.logical, l != 0 {
                state.logicalToPhysical[l] = nil
                cache.evict(container: l)
            }
            state.containers[p]?.logical = 0
            state.containers[p]?.endOffset = 0
            state.containers[p]?.pendingArchive = false
        }
        for p in r.deleted {
            if let c = state.containers.removeValue(forKey: p) {
                if c.logical != 0 {
                    state.logicalToPhysical[c.logical] = nil
                    cache.evict(container: c.logical)
                }
                deleted.append(c)
            }
        }
        for p in r.pendingArchive { state.containers[p]?.pendingArchive = true }
        if !r.freed.isEmpty || !r.deleted.isEmpty {
            state.spaceGeneration += 1
            refreshAppendHintLocked()
        }
        state.baseLSN = logWideBaseLocked()
        return deleted
    }

    /// How many containers `addContainers` adds.
    enum ContainerCount {
        /// Exactly this many (an explicit add): bound only by `Format.maxContainerCount`, not by the policy.
        case exactly(Int)
        /// What the policy allows when the log is full (auto-grow): see `policyGrowthLocked`.
        case policyGrowth
    }

    /// Creates `count` containers and records them in the base file. Returns their physical ids.
    func addContainers(_ count: Int) throws -> [UInt32] { try addContainers(.exactly(count)) }

    /// Creates containers and records them in the base file. Returns their physical ids: none for
    /// `.policyGrowth` when the policy leaves no room or another add is in progress.
    ///
    /// How many is decided, and reserved (`containersBeingAdded`), under `lock`, so appenders that find
    /// the log full at once cannot together grow it past the policy. The files are created, zero-filled
    /// and synced, and the directory synced, before `metaLock` is taken, so the writer is never held up
    /// by a large container being prepared. Once the base-file write has been attempted the files are
    /// kept whatever happens: the base file may name them. `prefix` names the files instead of the
    /// policy's prefix (`setPolicy` adds containers before its new policy is in force).
    func addContainers(_ request: ContainerCount, prefix override: String? = nil) throws -> [UInt32] {
        if readOnly { throw LogError(.readOnly, "the log is open read-only") }
        let (first, count, prefix): (UInt32, Int, String) = try lock.withLock {
            try checkUsable()
            let count: Int
            switch request {
            case .exactly(let n):
                guard state.containers.count + state.containersBeingAdded + n <= Format.maxContainerCount else {
                    throw LogError(.invalidArgument, "a log has at most \(Format.maxContainerCount) containers")
                }
                count = n
            case .policyGrowth:
                count = policyGrowthLocked()
            }
            let first = state.nextPhysicalID
            // Physical ids are u32 and never reused; the base file may name the last one (`+=` trapped).
            guard UInt64(first) + UInt64(count) <= UInt64(UInt32.max) else {
                throw LogError(.invalidArgument, "the log has used every physical container id (next is \(first))")
            }
            state.nextPhysicalID += UInt32(count)
            state.containersBeingAdded += count
            return (first, count, override ?? state.policy.containerPrefix)
        }
        if count == 0 { return [] }
        defer {
            lock.withLock {
                state.containersBeingAdded -= count
                spaceCondition.broadcast()  // appenders waiting in handleLogFull for this add to end
            }
        }
        var added: [LiveContainer] = []
        func discard() {
            for c in added {
                io.close(c.fd)
                try? io.unlink(c.path)
            }
        }
        do {
            for physical in first..<(first + UInt32(count)) {
                let name = ContainerFiles.name(prefix: prefix, physicalID: physical)
                let path = directory + "/" + name
                let fd = try ContainerFiles.create(io: io, path: path, logID: logID, physicalID: physical, size: containerSize)
                added.append(LiveContainer(physical: physical, fd: fd, logical: 0, endOffset: 0, path: path))
            }
            // The new files' directory entries are durable before the base file names them.
            try io.fsyncDirectory(directory)
        } catch {
            discard()
            // Give the ids back unless another add took ids after them.
            lock.withLock { if state.nextPhysicalID == first + UInt32(count) { state.nextPhysicalID = first } }
            throw error
        }
        var writeAttempted = false
        do {
            try updateMetaOrFail { m in
                guard m.containers.count + count <= Format.maxContainerCount else {
                    throw LogError(.invalidArgument, "a log has at most \(Format.maxContainerCount) containers")
                }
                for c in added {
                    m.containers.append(ContainerEntry(physicalID: c.physical, logicalID: 0, state: .inactive, endOffset: 0))
                    let name = String(c.path.dropFirst(directory.count + 1))
                    if name != ContainerFiles.name(physicalID: c.physical) { m.containerNames[c.physical] = name }
                }
                m.nextPhysicalID = max(m.nextPhysicalID, first + UInt32(count))
                writeAttempted = true
            }
        } catch {
            // A refusal (`invalidArgument`: the record would not fit a slot or validate) comes after the
            // change ran but writes nothing: the files are not named and go, like a failure before it.
            // Only an error of the write itself (`io`, or `failed` once the log failed) may leave them named.
            if writeAttempted, (error as? LogError)?.code != .invalidArgument {
                for c in added { io.close(c.fd) }
            } else {
                discard()
                lock.withLock { if state.nextPhysicalID == first + UInt32(count) { state.nextPhysicalID = first } }
            }
            throw error
        }
        lock.withLock {
            for c in added { state.containers[c.physical] = c }
            state.spaceGeneration += 1
            refreshAppendHintLocked()
        }
        return added.map(\.physical)
    }

    /// The containers auto-grow may add now: the policy's increment, within its maximum count and size
    /// counting the containers being added, and 0 while another add is in progress (the caller waits for
    /// it instead of adding more) or when auto-grow is off.
    private func policyGrowthLocked() -> Int {
        let p = state.policy
        guard p.autoGrow, state.containersBeingAdded == 0 else { return 0 }
        let total = state.containers.count
        let sizeRoom = p.maxSizeBytes == 0 ? Int.max : Int(p.maxSizeBytes / containerSize) - total
        return max(0, min(Int(p.growthIncrement), Int(p.maxContainers) - total, sizeRoom, Format.maxContainerCount - total))
    }

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

    /// Closes and unlinks containers the base file no longer names, on `deletionQueue`. This may be
    /// called on the writer thread in the middle of a batch, and freeing a container's blocks takes
    /// milliseconds (on a disk with online discard), which the batch's committers would otherwise wait
    /// for. A crash before the unlink leaves an orphan container file, which open never reads
    /// (docs/format/README.md, "The files of a log").
    /// Closes and unlinks `containers` on the deletion queue; the caller has counted it in `deletions`.
    private func deleteInBackground(_ containers: [LiveContainer]) {
        let io = self.io
        let directory = self.directory
        let files = containers.map { (fd: $0.fd, path: $0.path) }
        deletionQueue.async { [self] in
            // A read that looked up one of these descriptors before recycling removed it finishes first.
            lock.withLock { waitForReadsLocked(of: files.map(\.fd)) }
            for f in files {
                io.close(f.fd)
                try? io.unlinkFreeingGradually(f.path)  // in steps: see unlinkFreeingGradually
            }
            // Fail-stop, as every sync error is (see `removeFreeContainer`): Linux may have dropped what
            // the failed sync was to write, and a later sync of the directory "succeeds" without it.
            do { try io.fsyncDirectory(directory) } catch let e as LogError where e.code == .io {
                lock.withLock { failLocked(e) }
            } catch {}
            deletions.leave()
        }
    }
}

/// Which containers every base and archive tail have passed.
enum Recycling {
    struct Result {
        var freed: [UInt32] = []
        var deleted: [UInt32] = []
        var pendingArchive: [UInt32] = []
    }

    /// Marks containers below every stream's base: free (or gone, if pending delete) when also below every
    /// archive tail, otherwise pending archive. Never touches the container recovery starts in.
    static func apply(to m: inout BaseRecord) -> Result {
        var result = Result()
        let bases = m.streams.map(\.base).filter { $0 != .null }
        let basePoint = bases.min() ?? m.scanStart
        let tails = m.streams.map(\.archiveTail).filter { $0 != .null } + (m.archiveTail != .null ? [m.archiveTail] : [])
        let archivePoint = tails.min() ?? .invalid
        m.baseLSN = bases.min() ?? .null
        var keep: [ContainerEntry] = []
        for var c in m.containers {
            if c.state.holdsData, c.logicalID < m.scanStart.container, c.logicalID < basePoint.container {
                if c.logicalID < archivePoint.container {
                    if c.state == .pendingDelete {
                        result.deleted.append(c.physicalID)
                        m.containerNames[c.physicalID] = nil
                        continue
                    }
                    result.freed.append(c.physicalID)
                    c.state = .inactive
                    c.logicalID = 0
                    c.endOffset = 0
                } else if c.state == .active {
                    c.state = .pendingArchive
                    result.pendingArchive.append(c.physicalID)
                }
            }
            keep.append(c)
        }
        m.containers = keep
        if let minLogical = m.containers.filter({ $0.state.holdsData }).map(\.logicalID).min(),
            m.baseLSN != .null, m.baseLSN.container < minLogical
        {
            m.baseLSN = .null
        }
        return result
    }
}
