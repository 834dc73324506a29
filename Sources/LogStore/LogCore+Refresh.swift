// A read-only log catching up with what its writer (another process or instance) wrote since it opened
// or last caught up: `LogStore.refresh()`. docs/format/README.md ("Recovery") describes the scan it continues.

import LogFormat
import Synchronization

extension LogCore {
    /// Reads the base file again if its generation changed, then goes on with the end-of-log scan from where
    /// the open or the last catch-up stopped. Returns whether the end of the log or the base file moved.
    ///
    /// Everything is worked out before anything changes: a catch-up that throws leaves the view as it was.
    func refresh() throws -> Bool {
        guard readOnly else { return false }
        return try metaLock.withLock {
            var attempt = 0
            while true {
                do { return try refreshOnce(mayRetry: attempt < 3) } catch is BaseFileMoved { attempt += 1 }
            }
        }
    }

    /// The writer changed the base file while a catch-up read it or the containers it names: start over.
    private struct BaseFileMoved: Error {}

    /// One attempt; holds `metaLock`.
    private func refreshOnce(mayRetry: Bool) throws -> Bool {
        try checkOpen()
        let basePath = directory + "/" + Format.baseFileName
        // Through the log's path, not the open's descriptor: a log removed, or replaced by another created at
        // its path, leaves that descriptor reading the old file, which never moves again.
        let pathFD: Int32
        do { pathFD = try io.open(basePath, mode: .readOnly) } catch let e as LogError where e.code == .notFound {
            throw LogError(.notFound, "the log's base file is gone (the log was removed since the open): \(e.message)", path: basePath)
        }
        defer { io.close(pathFD) }
        let (newest, _) = try BaseFile.readNewest(io: io, fd: pathFD, path: basePath)
        guard newest.logID == logID, newest.containerSize == containerSize, newest.blockSize == UInt32(blockSize),
            newest.maxRecordSize == UInt32(maxRecordSize)
        else {
            throw LogError(.invalidState, "the base file now describes another log (replaced since the open): reopen it", path: basePath)
        }
        // The same log, but another file (a copy of the log's directory moved to its path: the base file is
        // only ever written in place): the containers this view has open are the old files, which never
        // move again, and would be read as the copy's.
        if let opened = try io.fileIdentity(baseFD), let now = try io.fileIdentity(pathFD), opened != now {
            throw LogError(
                .invalidState, "the log at this path is another copy of it (its base file was replaced since the open): reopen it",
                path: basePath)
        }
        let baseChanged = newest.generation != meta.generation
        // A writer opened the log since this view was read (and recovered it on its own).
        let newEpoch = newest.epoch != meta.epoch
        let (view, current) = lock.withLock {
            ((end: state.open.position, last: state.lastLSN, chain: state.chainCRC), state.containers)
        }
        // The containers the base file names now. A container it still names is the same file (physical ids
        // are never reused): its descriptor is kept. One it no longer names was deleted or recycled away.
        var containers: [UInt32: LiveContainer] = [:]
        var opened: [Int32] = []
        do {
            if !baseChanged {
                containers = current
            } else {
                for entry in newest.containers {
                    let path = ContainerFiles.path(directory: directory, name: newest.containerNames[entry.physicalID], physicalID: entry.physicalID)
                    var live: LiveContainer
                    if let known = current[entry.physicalID] {
                        live = known
                        // A container file put back between two writer sessions (from a backup, say): that
                        // writer opened the file at the path; the one this view has open is written no more.
                        if newEpoch { try checkSameFile(known, path: path, mayRetry: mayRetry) }
                    } else {
                        let fd: Int32
                        do {
                            fd = try ContainerFiles.open(
                                io: io, path: path, logID: logID, physicalID: entry.physicalID, size: containerSize, readOnly: true)
                        } catch let e as LogError where e.code == .notFound && mayRetry {
                            // Removed by the writer after this base file was read.
                            throw BaseFileMoved()
                        }
                        opened.append(fd)
                        live = LiveContainer(physical: entry.physicalID, fd: fd, logical: 0, endOffset: 0, path: path)
                    }
                    live.logical = entry.state.holdsData ? entry.logicalID : 0
                    live.endOffset = entry.endOffset
                    live.pendingDelete = entry.state == .pendingDelete
                    live.pendingArchive = entry.state == .pendingArchive
                    containers[entry.physicalID] = live
                }
            }
            // Go on from this view's end while the container it is in still holds it and the base file's scan
            // start has not passed it. Otherwise the writer moved to a later container (or recycled this
            // one): scan from the base file's scan start, as an open does; the containers between are closed
            // and the base file records their ends.
            // After a new epoch, never: a writer that opened the log since recovered it on its own, and may
            // have found less than this view read (blocks a crash lost before they reached the disk, which
            // this reader had read from the page cache or over shared storage) and written its own blocks
            // there. From the scan start, the scan follows the history the log has now.
            var scanMeta = newest
            let continues = !newEpoch && view.end >= newest.scanStart && containers.values.contains { $0.logical == view.end.container }
            if continues {
                scanMeta.scanStart = view.end
                scanMeta.scanStartPreviousLSN = view.last
                scanMeta.scanStartPreviousCRC = view.chain
            }
            var scanner = RecoveryScanner(
                io: io, directory: directory, meta: scanMeta, containers: containers, mode: options.recovery, maxRawLength: maxRawLength,
                readOnly: true, isCancelled: nil)
            scanner.catchingUp = true
            let found = try scanner.scan()
            if let corruption = found.report.corruption { throw corruption }
            // The records this view read are not the log's any more: unless a writer moved the base file
            // meanwhile (then start over), that is for a reopen to sort out.
            func historyChanged(_ why: String) throws -> Never {
                if mayRetry, try BaseFile.readNewest(io: io, fd: pathFD, path: basePath).0.generation != newest.generation { throw BaseFileMoved() }
                throw LogError(.invalidState, "\(why), which this read-only log already read: reopen it", path: basePath)
            }
            // A scan from an older base file than the view came from would show less than the view already did;
            // so does one after a writer recovered less than the view read and has not written as far yet.
            guard found.lastLSN >= view.last else { try historyChanged("the log now ends at \(found.lastLSN), before \(view.last)") }
            var newMeta = newest
            for sw in found.switches {
                sw.apply(to: &newMeta)
                for (p, c) in containers where c.logical == sw.closed { containers[p]?.endOffset = sw.endOffset }
                containers[sw.physical]?.logical = sw.closed + 1
                containers[sw.physical]?.endOffset = 0
            }
            // That writer wrote on from where its recovery ended: over the view's last block, or it ended that
            // container before the view's end. (One block read, at a new epoch only.)
            if newEpoch, view.last.isValid, let c = containers.values.first(where: { $0.logical == view.last.container }) {
                let position = view.last.blockLSN
                let identity = BlockIdentity(
                    logSalt: logSalt, logicalContainer: position.container, blockOffset: UInt32(position.blockOffset), maxEpoch: newest.epoch)
                let again = try ContainerReader(io: io, fd: c.fd, size: containerSize).decode(
                    at: position.blockOffset, identity: identity, maxRawLength: maxRawLength)
                guard case .success(let block) = again, block.header.crc == view.chain else {
                    try historyChanged("a writer that opened the log since wrote other blocks at \(position)")
                }
                if c.endOffset > 0, c.endOffset < position.blockOffset + UInt64(block.header.diskLength) {
                    try historyChanged("logical container \(position.container) now ends at offset \(c.endOffset), before the block at \(position)")
                }
            }
            let moved = baseChanged || found.end != view.end || found.lastLSN != view.last
            guard moved else { return false }
            apply(meta: newMeta, baseChanged: baseChanged, found: found, containers: containers)
            return true
        } catch {
            for fd in opened { io.close(fd) }
            throw error
        }
    }

    /// Throws `invalidState` when the file at a container's path is not the one this view has open.
    private func checkSameFile(_ container: LiveContainer, path: String, mayRetry: Bool) throws {
        let fd: Int32
        do { fd = try io.open(path, mode: .readOnly) } catch let e as LogError where e.code == .notFound && mayRetry {
            // Removed by the writer after this base file was read.
            throw BaseFileMoved()
        }
        defer { io.close(fd) }
        if let opened = try io.fileIdentity(container.fd), let now = try io.fileIdentity(fd), opened != now {
            throw LogError(
                .invalidState,
                "container \(container.physical) at this path is another file than the one this read-only log has open (replaced since the open): reopen it",
                container: container.physical, path: path)
        }
    }

    /// Puts a catch-up's findings in force; holds `metaLock`.
    private func apply(meta newMeta: BaseRecord, baseChanged: Bool, found: RecoveryResult, containers: [UInt32: LiveContainer]) {
        viewEpoch.store(newMeta.epoch, ordering: .releasing)
        let gone: [Int32] = lock.withLock {
            let gone = state.containers.values.filter { containers[$0.physical] == nil }.map(\.fd)
            state.containers = containers
            let before = state.logicalToPhysical
            state.logicalToPhysical = [:]
            for c in containers.values where c.logical != 0 { state.logicalToPhysical[c.logical] = c.physical }
            // The cached blocks of logical containers the writer recycled or deleted: no read can reach them
            // (a read looks its container up first), and kept, they held the cache's memory until newer
            // blocks pushed them out. The writer drops them as it recycles (`applyRecyclingLocked`).
            for logical in before.keys where state.logicalToPhysical[logical] == nil { cache.evict(container: logical) }
            state.open.logical = found.end.container
            state.open.offset = found.end.blockOffset
            state.open.physical = containers.values.first { $0.logical == found.end.container }?.physical ?? 0
            state.chainCRC = found.chainCRC
            state.lastLSN = found.lastLSN
            state.writtenLSN = found.lastLSN
            // Only what the base file and the blocks' hints prove: the writer may not have synced the blocks
            // just read. Never back: the view's end only moves on.
            state.durableLSN = max(state.durableLSN, Self.provenDurable(meta: newMeta, found: found))
            if baseChanged {
                state.archiveTail = newMeta.archiveTail
                state.policy = newMeta.policy
                state.nextPhysicalID = newMeta.nextPhysicalID
                state.persistedTailContainer = newMeta.scanStart.container
                reloadStreamsLocked(newMeta)
            }
            for (id, scanned) in found.streamLast {
                guard Int(id) < state.hot.count, state.hot[Int(id)].exists else {
                    // The writer created this stream after the base file this refresh read was read, and wrote
                    // to it before the scan: the records are the stream's once a refresh learns of it. (Ids are
                    // never given again, so one below the next id that is not in the table was deleted.)
                    if id >= state.nextStreamID, let first = found.streamFirst[id] {
                        unseenStreams[id] = (unseenStreams[id]?.first ?? first, scanned)
                    }
                    continue
                }
                var hot = state.hot[Int(id)]
                if scanned > hot.last { hot.last = scanned }
                if hot.base == .null, let first = found.streamFirst[id] { hot.base = first }
                state.hot[Int(id)] = hot
            }
            state.baseLSN = logWideBaseLocked()
            // A read in progress may be using a descriptor about to be closed: with the table swapped, no
            // new read can pick one up, so this waits only for the reads already using them.
            if !gone.isEmpty { waitForReadsLocked(of: gone) }
            return gone
        }
        meta = newMeta
        for fd in gone { io.close(fd) }
    }

    /// Replaces the stream table with the base file's, keeping what this view already knew of each stream
    /// the base file still has (records it scanned that the base file does not record yet).
    private func reloadStreamsLocked(_ newMeta: BaseRecord) {
        let (oldHot, oldCold) = (state.hot, state.cold)
        let entries: [StreamEntry]
        (entries, state.nextStreamID) = LogCore.streamTable(of: newMeta, defaultLast: .null)
        state.hot = []
        state.cold = [:]
        state.streamIDs = [:]
        for e in entries where !e.isDeleted {  // a deleted stream's entry is no stream (see loadStreams)
            var hot = StreamHot()
            hot.exists = true
            hot.base = e.base
            hot.last = e.last
            let same = Int(e.id) < oldHot.count && oldHot[Int(e.id)].exists && oldCold[e.id]?.name == e.name
            if same {
                let old = oldHot[Int(e.id)]
                if old.last > hot.last { hot.last = old.last }
                if hot.base == .null { hot.base = old.base }
            } else if let seen = unseenStreams[e.id] {
                if seen.last > hot.last { hot.last = seen.last }
                if hot.base == .null { hot.base = seen.first }
            }
            setHot(e.id, hot)
            state.cold[e.id] = StreamCold(
                name: e.name, archiveTail: e.archiveTail, restart: e.restart, tailPinned: same ? oldCold[e.id]?.tailPinned : nil,
                archiveTailPinned: same ? oldCold[e.id]?.archiveTailPinned : nil)
            state.streamIDs[e.name] = e.id
        }
        unseenStreams = unseenStreams.filter { $0.key >= state.nextStreamID }
        // A stream's cursor checks that its stream still exists only after a deletion.
        let deleted = oldHot.indices.contains { oldHot[$0].exists && (state.hot.count <= $0 || !state.hot[$0].exists) }
        if deleted { streamDeletions.add(1, ordering: .releasing) }
    }
}
