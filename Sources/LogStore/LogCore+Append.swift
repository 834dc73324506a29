// Appending records to the open block, and sealing blocks. All of this runs under `lock`; no system
// call is made here, so append never blocks on I/O (only on back-pressure, see `waitForSpace`).

import LogFormat

extension LogCore {
    /// Copies one record into the open block and returns its LSN. When no container is free it grows
    /// the log within policy or asks the streams pinning the tail to move, then retries.
    /// `restartCovering` (restart records only): the LSN the restart area covers; when the stream's last
    /// record is at or below it as the record goes in, the record's LSN is noted in
    /// `StreamCold.restartCoversAllBelow`.
    func append(
        _ data: UnsafeRawBufferPointer, type: RecordType, stream: UInt16, previous: LSN, undoNext: LSN,
        useReservation: Bool = false, restartCovering: LSN? = nil
    ) throws -> LSN {
        guard data.count <= maxRecordSize else {
            throw LogError(.invalidArgument, "record of \(data.count) bytes exceeds the log's limit of \(maxRecordSize) bytes")
        }
        if readOnly { throw LogError(.readOnly, "the log is open read-only") }
        var progress = LogFullProgress()
        // Auto-shrink waits from the log-full path until this retry has taken the room it made. A local
        // flag: an append that never found the log full takes no lock for it.
        defer { endMakingRoom(&progress) }
        while true {
            lock.lock()
            let lsn: LSN?
            let generation = state.spaceGeneration
            do {
                lsn = try appendLocked(
                    data, type: type, stream: stream, previous: previous, undoNext: undoNext, useReservation: useReservation,
                    restartCovering: restartCovering)
            } catch {
                lock.unlock()
                throw error
            }
            // Which kind of full: the reservations' floor (room comes back when it clears), or no free
            // container (room comes back with one). Told apart here, under the same hold of the lock.
            let need: SpaceNeed = lsn == nil && !useReservation && !clearsReservationFloorLocked(cost: reservationCost(data.count))
                ? .floor(cost: reservationCost(data.count)) : .freeContainer
            // A reservation used may be all that kept a free container from a deferred auto-shrink.
            let shrinkDue = useReservation && lsn != nil && takeDeferredShrinkLocked()
            lock.unlock()
            if shrinkDue { shrinkInBackground() }
            if let lsn { return lsn }
            try handleLogFull(&progress, generation: generation, need: need)
            afterLogFullHandledForTesting?()
        }
    }

    /// Appends under the lock; returns nil when the record needs a new container and none is free, or
    /// (a plain append) when it would take space the reservations need.
    private func appendLocked(
        _ data: UnsafeRawBufferPointer, type: RecordType, stream: UInt16, previous: LSN, undoNext: LSN, useReservation: Bool,
        restartCovering: LSN?
    ) throws -> LSN? {
        try checkUsable()
        // Back-pressure first: the wait releases the lock, and a stream, its reservations and the free
        // space may change meanwhile. Checked after it, a reserved append that had waited took a
        // reservation another append or a release had already used (counters went negative).
        if state.dirtyBytes > options.groupCommit.maxDirtyBytes { try waitForSpaceLocked() }
        // A link names an earlier record. One that points forward would make every walk of the chain
        // report the healthy log `corrupt` (the chain check that stops a damaged log's loops).
        guard !previous.isValid || previous <= state.lastLSN, !undoNext.isValid || undoNext <= state.lastLSN else {
            throw LogError(
                .invalidArgument, "a record's previous (\(previous)) and undo-next (\(undoNext)) links must name earlier records (the last is \(state.lastLSN))")
        }
        let footprint = RecordHeader.footprint(dataLength: data.count)
        guard Int(stream) < state.hot.count, state.hot[Int(stream)].exists else {
            throw LogError(.notFound, "stream \(stream) does not exist (deleted?)")
        }
        let cost = reservationCost(data.count)
        if useReservation {
            let h = state.hot[Int(stream)]
            guard h.reservedRecords > 0 else {
                throw LogError(.invalidArgument, "stream \(stream) has no reservation covering a record of \(data.count) bytes")
            }
            // The reservation floor leaves one largest reserved record of slack per container boundary;
            // a larger record could lose more than that at a container's end and leave a later reserved
            // record without room.
            guard data.count <= h.reservedLargest else {
                throw LogError(
                    .invalidArgument,
                    "a record of \(data.count) bytes does not fit stream \(stream)'s reservations (largest reserved record: \(h.reservedLargest) bytes)")
            }
        } else if !clearsReservationFloorLocked(cost: cost) {
            // Full for plain appends: like a log with no free container, it may grow within policy or
            // ask the streams pinning the tail to move (handleLogFull), before the append says `logFull`.
            return nil
        }

        if state.open.count == Format.maxRecordsPerBlock || state.open.used + footprint > state.open.capacity {
            guard try makeRoomLocked(footprint: footprint) else { return nil }
        }
        var previous = previous
        // A restart record links to the stream's restart record appended just before it, decided under the
        // same hold of the lock: taken when writeRestartArea began, restart areas written at once from
        // several threads each linked to the one in force then, and the chain skipped all but one of them.
        if type == .restart, let cold = state.cold[stream] {
            let before = max(cold.restartAppended, cold.restart)
            previous = before == .null ? .invalid : before
        }
        var o = state.open
        let at = o.used
        RecordHeader(length: UInt32(data.count), type: type, stream: stream, previous: previous, undoNext: undoNext)
            .encode(into: o.payload, at: at)
        let base = o.payload.baseAddress! + at + RecordHeader.size
        if let src = data.baseAddress, !data.isEmpty { base.copyMemory(from: src, byteCount: data.count) }
        let pad = footprint - RecordHeader.size - data.count
        if pad > 0 { (base + data.count).initializeMemory(as: UInt8.self, repeating: 0, count: pad) }
        let lsn = LSN(uncheckedContainer: o.logical, blockOffset: o.offset, slot: UInt16(o.count))
        o.used += footprint
        o.count += 1
        o.streamMask |= 1 << UInt64(stream & 63)
        state.open = o
        state.lastLSN = lsn
        let i = Int(stream)
        // Once per container the stream moves into, not per record.
        if state.hot[i].last != .null, state.hot[i].last.container < lsn.container { state.cold[stream]?.lastInEarlierContainers.append(state.hot[i].last) }
        // Decided here, under the same hold of the lock as the append: nothing of the stream can slip in
        // between the covered LSN and the restart record unseen.
        if let covered = restartCovering, state.hot[i].last == .null || state.hot[i].last <= covered {
            state.cold[stream]?.restartCoversAllBelow = lsn
        }
        if type == .restart { state.cold[stream]?.restartAppended = lsn }
        state.hot[i].last = lsn
        if state.hot[i].base == .null { state.hot[i].base = lsn }
        if useReservation {
            // The smallest reserved size that fits (checked above: at most the largest). Its whole cost
            // goes back, so what stays reserved is exactly the sizes left, which a release must name.
            let (taken, largest) = state.cold[stream]?.takeReservedSize(atLeast: data.count) ?? (data.count, state.hot[i].reservedLargest)
            let takenCost = reservationCost(taken)
            state.hot[i].reservedRecords -= 1
            state.hot[i].reservedBytes -= takenCost
            state.hot[i].reservedLargest = largest
            state.reservedTotal -= takenCost
            if state.reservedTotal == 0 { state.maxReservedCost = 0 }
        }
        return lsn
    }

    /// Blocks the caller while too many sealed bytes wait for the writer (back-pressure).
    func waitForSpaceLocked() throws {
        while state.dirtyBytes > options.groupCommit.maxDirtyBytes, state.failed == nil, !state.closed {
            waitingForSpaceForTesting?()
            workCondition.signal()
            spaceCondition.wait()
        }
        try checkUsable()
    }

    /// Seals the open block (if it has records) and opens one that can take `footprint` bytes, moving to
    /// the next container when this one is full. Returns false when that needs a container and none is free.
    /// Throws `logFull` when this one is the last logical container (id 2^32 − 1): it has no successor.
    func makeRoomLocked(footprint: Int) throws -> Bool {
        sealLocked()
        let normal = blockSize - BlockHeader.size
        var logical = state.open.logical
        var physical = state.open.physical
        var offset = state.open.offset
        if offset + UInt64(BlockHeader.size + footprint) > dataEnd {
            // LSNs hold 32-bit logical ids (docs/format/lsn.md, Limits): after the last one the log cannot
            // go on. A base file may name it, so this is an error, not an overflow trap on `logical += 1`.
            guard logical < .max else {
                throw LogError(.logFull, "the log has reached its last logical container (\(logical)); it cannot continue")
            }
            // Move to the next logical container; a free container takes it.
            guard let next = state.containers.values.filter({ $0.logical == 0 && !$0.pendingDelete }).min(by: { $0.physical < $1.physical })
            else { return false }
            state.containers[state.open.physical]?.endOffset = offset
            logical += 1
            physical = next.physical
            offset = UInt64(Format.containerDataStart)
            state.containers[physical]?.logical = logical
            state.containers[physical]?.endOffset = 0
            state.logicalToPhysical[logical] = physical
            refreshAppendHintLocked()  // one free container fewer
            callPinnersAheadIfLowLocked()
        }
        let left = Int(dataEnd - offset) - BlockHeader.size
        if footprint > normal {
            // A record larger than a block gets a block (and a buffer) of its own.
            releaseOpenBufferLocked()
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: roundUp(BlockHeader.size + footprint, to: Format.sectorSize), alignment: 4096)
            state.openBuffer = buffer
            state.openBufferPooled = false
            state.open.payload = Self.payloadView(of: buffer, count: footprint)
            state.open.capacity = footprint
        } else {
            if !state.openBufferPooled { installPoolBufferLocked() }
            state.open.capacity = min(normal, left)
        }
        state.open.logical = logical
        state.open.physical = physical
        state.open.offset = offset
        return true
    }

    /// Recomputes ``appendMayWait``: set when the sealed, unwritten bytes are within a margin of
    /// `maxDirtyBytes` (back-pressure), or the space left for plain appends before the reservations'
    /// floor is within a margin of nothing (the log-full path: flush, auto-grow, tail-pinned handlers).
    /// The margins (half the limit or of a container, at least a few blocks) cover what other threads
    /// append between a caller's read of the hint and its append; a limit or a container smaller than
    /// the margin keeps the hint set. Called where those quantities change (a seal, a written batch, a
    /// container taken or freed, a reservation); the open block's growth between seals is within the margin.
    func refreshAppendHintLocked() {
        let maxDirty = options.groupCommit.maxDirtyBytes
        let dirtyMargin = max(maxDirty / 2, 4 * blockSize)
        let fullMargin = max(containerDataBytes / 2, 4 * blockSize)
        var mayWait = state.dirtyBytes > maxDirty - dirtyMargin
        if !mayWait {
            // Once per seal and per batch: the free containers are counted once (a walk of every container).
            let free = freeContainerCountLocked()
            mayWait = freeBytesLocked(freeContainers: free) - reservationFloorLocked(freeContainers: free) < fullMargin
        }
        if appendMayWait.load(ordering: .relaxed) != mayWait { appendMayWait.store(mayWait, ordering: .relaxed) }
    }

    /// Frees the open block's buffer (back to the pool if it came from there).
    private func releaseOpenBufferLocked() {
        if state.openBufferPooled { state.pool.append(state.openBuffer) } else { state.openBuffer.deallocate() }
    }

    /// Gives the open block a pool buffer (after its buffer was sealed in place, or freed).
    private func installPoolBufferLocked() {
        if !state.openBufferPooled { state.openBuffer.deallocate() }
        takePoolBufferForOpenLocked()
    }

    /// Makes a pool buffer the open block's, without releasing the current one (already handed off).
    private func takePoolBufferForOpenLocked() {
        let buffer = state.pool.popLast() ?? .allocate(byteCount: Self.pooledBufferSize(blockSize: blockSize), alignment: 4096)
        state.openBuffer = buffer
        state.openBufferPooled = true
        state.open.payload = Self.payloadView(of: buffer, count: blockSize - BlockHeader.size)
    }

    /// Compresses and checksums the open block into a sealed block queued for the writer. A block the
    /// codec cannot shrink (or any block with codec `none`) is sealed in place: the header is written in
    /// front of its records in the open block's own buffer, which goes to the writer without a copy.
    func sealLocked() {
        let o = state.open
        guard o.count > 0 else { return }
        let raw = UnsafeRawBufferPointer(rebasing: o.payload[0..<o.used])
        let pooledSize = Self.pooledBufferSize(blockSize: blockSize)
        var buffer = state.openBuffer
        var pooled = state.openBufferPooled
        var stored = o.used
        var codecID: UInt8 = 0
        var inPlace = true
        if codec.id != Codec.none.id {
            let fits = roundUp(BlockHeader.size + o.used, to: Format.sectorSize) <= pooledSize
            let candidate = fits
                ? (state.pool.popLast() ?? .allocate(byteCount: pooledSize, alignment: 4096))
                : .allocate(byteCount: roundUp(BlockHeader.size + o.used, to: Format.sectorSize), alignment: 4096)
            if let n = codec.compress(raw, into: Self.payloadView(of: candidate, count: o.used)) {
                buffer = candidate
                pooled = fits
                stored = n
                codecID = codec.id
                inPlace = false
            } else if fits {
                state.pool.append(candidate)
            } else {
                candidate.deallocate()
            }
        }
        if inPlace { takePoolBufferForOpenLocked() }  // the open buffer now belongs to the sealed block
        var header = BlockHeader(
            codecID: codecID, codecLevel: codecID == 0 ? 0 : codec.level, recordCount: UInt16(o.count),
            storedLength: UInt32(stored), rawLength: UInt32(o.used), logicalContainer: o.logical,
            blockOffset: UInt32(o.offset), epoch: epoch, previousBlockCRC: state.chainCRC,
            durableHint: state.durableLSN, logSalt: logSalt, streamMask: o.streamMask)
        let crc = header.encode(into: buffer)
        let disk = header.diskLength
        let padStart = BlockHeader.size + stored
        if disk > padStart { (buffer.baseAddress! + padStart).initializeMemory(as: UInt8.self, repeating: 0, count: disk - padStart) }
        let first = LSN(uncheckedContainer: o.logical, blockOffset: o.offset, slot: 0)
        let last = LSN(uncheckedContainer: o.logical, blockOffset: o.offset, slot: UInt16(o.count - 1))
        state.sealed.append(
            SealedBlock(
                buffer: buffer, diskLength: disk, logical: o.logical, physical: o.physical, offset: o.offset,
                firstLSN: first, lastLSN: last, crc: crc, pooled: pooled))
        state.chainCRC = crc
        // The memory the block holds until it is written, not its length on disk: a compressed block keeps
        // a whole pool buffer, and counted by its stored length the sealed queue of a compressible
        // workload held many times `maxDirtyBytes` (docs/RELIABILITY.md, eleventh review).
        state.dirtyBytes += buffer.count
        state.open.offset += UInt64(disk)
        state.open.used = 0
        state.open.count = 0
        state.open.streamMask = 0
        state.open.capacity = openCapacity(offset: state.open.offset)
        refreshAppendHintLocked()
        if state.dirtyBytes >= options.groupCommit.maxBatchBytes { workCondition.signal() }
    }
}
