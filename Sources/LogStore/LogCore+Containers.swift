// Changes to the base file while the log is open: every update goes through `updateMeta`, which also
// records the stream table and recycles containers that every base and archive tail have passed (and
// deletes those pending delete). Adding containers is in LogCore+AddContainers.swift, removing them in
// LogCore+RemoveContainers.swift.

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

    /// Closes and unlinks containers the base file no longer names, on `deletionQueue`. This may be
    /// called on the writer thread in the middle of a batch, and freeing a container's blocks takes
    /// milliseconds (on a disk with online discard), which the batch's committers would otherwise wait
    /// for. A crash before the unlink leaves an orphan container file, which open never reads
    /// (docs/format/README.md, "The files of a log"). The caller has counted it in `deletions`.
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
