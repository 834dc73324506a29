// Reading records: by LSN, forward from an LSN, and along previous and undo-next chains. Records still in
// memory (open or not yet written) are served from memory; the rest come from the containers through
// the block cache.

import LogFormat

/// One record read back from the log.
public struct LogRecord: Sendable, Equatable {
    /// The record's LSN: its logical container, block offset and slot.
    public var lsn: LSN
    /// Data or restart record.
    public var type: RecordType
    /// The id of the stream the record belongs to (0: the default stream).
    public var stream: UInt16
    /// The previous-LSN link given at append (`LSN.invalid` ends the chain).
    public var previous: LSN
    /// The undo-next link given at append (`LSN.invalid` ends the chain).
    public var undoNext: LSN
    /// The record's bytes, as appended.
    public var data: [UInt8]
}

/// Where a block's bytes are, as seen under the lock. The bytes of a block in memory are copied under the
/// lock (its buffer goes back to the pool once written) and decoded after it is let go: decompressing and
/// checking a block (milliseconds for a jumbo record's) under the log's lock held up every append.
enum BlockSource {
    /// The block records are being appended to (no successor yet): a copy of its records.
    case open(header: BlockHeader, payload: [UInt8])
    /// Sealed, not yet written: a copy of its bytes as they will be on disk.
    case memory(bytes: [UInt8], identity: BlockIdentity)
    case disk(physical: UInt32, fd: Int32)
    /// Nothing at this position: the end of the log.
    case end
}

extension LogCore {
    /// The record with exactly this LSN.
    func read(_ lsn: LSN) throws -> LogRecord {
        guard lsn.isValid else { throw LogError(.invalidArgument, "\(lsn) is not a record's LSN", lsn: lsn) }
        // Below the base, the records from the lowest archive tail on are kept until archived, and stay
        // readable (CLFS: records between the archive tail and the base remain readable).
        let (floor, last, closed) = lock.withLock { (lsn < state.baseLSN ? readFloorLocked() : state.baseLSN, state.lastLSN, state.closed) }
        if closed { throw LogError(.closed, "the log is closed") }
        guard lsn <= last else { throw LogError(.invalidArgument, "\(lsn) is beyond the end of the log (\(last))", lsn: lsn) }
        guard lsn >= floor else { throw LogError(.notFound, "\(lsn) is below the log's base and every archive tail (\(floor))", lsn: lsn) }
        let (block, _) = try block(at: lsn.blockLSN, absentIsCorrupt: false)
        guard let block, Int(lsn.slot) < block.slots.count else {
            throw LogError(.notFound, "no record at \(lsn)", lsn: lsn)
        }
        return record(block, slot: Int(lsn.slot), position: lsn.blockLSN)
    }

    func record(_ block: DecodedBlock, slot: Int, position: LSN) -> LogRecord {
        let h = block.slots[slot].header
        return LogRecord(
            lsn: LSN(rawValue: position.rawValue | UInt64(slot)), type: h.type, stream: h.stream, previous: h.previous,
            undoNext: h.undoNext, data: block.data(at: slot))
    }

    /// The decoded block at `position` and, when it has a successor, its length on disk.
    /// Returns nil for the block at the end of the log.
    /// `absentIsCorrupt`: a cursor walking the log's own block chain treats a missing block as damage;
    /// a read of a caller's LSN that names no block gets `notFound`.
    func block(at position: LSN, skippingUnless stream: UInt16? = nil, absentIsCorrupt: Bool = true) throws -> (DecodedBlock?, Int?) {
        let source: BlockSource = try lock.withLock {
            if state.closed || state.filesReleased { throw LogError(.closed, "the log is closed") }
            let o = state.open
            if position == o.position {
                guard o.count > 0 else { return .end }
                let payload = [UInt8](UnsafeRawBufferPointer(rebasing: o.payload[0..<o.used]))
                let header = BlockHeader(
                    codecID: 0, codecLevel: 0, recordCount: UInt16(o.count), storedLength: UInt32(o.used),
                    rawLength: UInt32(o.used), logicalContainer: o.logical, blockOffset: UInt32(o.offset), epoch: epoch,
                    previousBlockCRC: state.chainCRC, durableHint: state.durableLSN, logSalt: logSalt, streamMask: o.streamMask)
                return .open(header: header, payload: payload)
            }
            if position > o.position { return .end }
            if let first = state.sealed.first, position >= first.firstLSN {
                // Inside the blocks not written yet but at none's start: no block starts here.
                guard let b = state.sealed.first(where: { $0.firstLSN == position }) else {
                    if absentIsCorrupt { throw LogError(.corrupt, "no block starts at \(position) in the blocks not yet written", lsn: position) }
                    throw LogError(.notFound, "no block starts at \(position)", lsn: position)
                }
                let bytes = [UInt8](UnsafeRawBufferPointer(rebasing: b.buffer[0..<b.diskLength]))
                let identity = BlockIdentity(logSalt: logSalt, logicalContainer: b.logical, blockOffset: UInt32(b.offset), maxEpoch: epoch)
                return .memory(bytes: bytes, identity: identity)
            }
            guard let physical = state.logicalToPhysical[position.container], let c = state.containers[physical] else {
                throw LogError(.notFound, "logical container \(position.container) is not in the log", lsn: position)
            }
            state.reads.begin(c.fd)
            return .disk(physical: physical, fd: c.fd)
        }
        switch source {
        case .end: return (nil, nil)
        case .open(let header, let payload):
            return (DecodedBlock(header: header, payload: payload, slots: try DecodedBlock.parseRecords(payload, count: Int(header.recordCount))), nil)
        case .memory(let bytes, let identity):
            decodingInMemoryBlockForTesting?()
            let decoded = bytes.withUnsafeBytes { DecodedBlock.decode($0, expecting: identity, maxRawLength: maxRawLength) }
            switch decoded {
            case .success(let d): return (d, d.header.diskLength)
            case .failure(let f): throw LogError(.corrupt, "in-memory block failed to decode: \(f)", lsn: position)
            }
        case .disk(let physical, let fd):
            defer { endRead(fd) }
            if let cached = cache.get(position) { return (cached, cached.header.diskLength) }
            let d = try readBlockFromDisk(
                position: position, physical: physical, fd: fd, skippingUnless: stream, absentIsCorrupt: absentIsCorrupt)
            if !d.slots.isEmpty { cache.put(position, d) }
            return (d, d.header.diskLength)
        }
    }

    /// Reads and fully validates one block from a container.
    /// With `stream`, a block whose stream mask says it holds none of that stream's records is checked
    /// (identity and CRC) but not decompressed, and comes back with no slots.
    func readBlockFromDisk(
        position: LSN, physical: UInt32, fd: Int32, skippingUnless stream: UInt16? = nil, absentIsCorrupt: Bool = true
    ) throws -> DecodedBlock {
        let offset = position.blockOffset
        guard offset >= UInt64(Format.containerDataStart), offset + UInt64(BlockHeader.size) <= containerSize else {
            // In the container's header or past its end: a caller's LSN there (at or below the log's end)
            // names no record, as `read` documents; only the log's own chain leading here is invalid.
            throw LogError(absentIsCorrupt ? .invalidArgument : .notFound, "\(position) is not a block position", lsn: position)
        }
        let bytes = try readBlockBytes(fd: fd, at: offset)
        let identity = BlockIdentity(logSalt: logSalt, logicalContainer: position.container, blockOffset: UInt32(offset), maxEpoch: readEpoch)
        let result: Result<DecodedBlock, DecodedBlock.Failure> = bytes.withUnsafeBytes {
            let raw = UnsafeRawBufferPointer($0)
            if let stream {
                switch DecodedBlock.validate(raw, expecting: identity, maxRawLength: maxRawLength) {
                case .success(let h) where h.streamMask & (1 << UInt64(stream & 63)) == 0:
                    return .success(DecodedBlock(header: h, payload: [], slots: []))
                case .failure(let f): return .failure(f)
                default: break
                }
            }
            return DecodedBlock.decode(raw, expecting: identity, maxRawLength: maxRawLength)
        }
        // Every base passed the container between the lookup and this read, and the writer reused it for a
        // newer logical container: the bytes here are another cycle's. The records are gone, not damaged
        // (a cursor that reads its next block then would otherwise report the log `corrupt`).
        if case .failure = result, lock.withLock({ state.logicalToPhysical[position.container] != physical }) {
            throw LogError(
                .notFound, "the records at \(position) were recycled while they were read (every base has passed them)",
                lsn: position, container: physical, offset: offset)
        }
        // A writer (another process, or another instance) reused this container after this read-only open:
        // the records are gone, which is not damage. (Unless the open already found blocks newer than the
        // base file: then the base file is stale, and that is damage.)
        if case .failure = result, readOnly, recoveryReport.corruption == nil,
            let now = try logicalRecycledInto(fd: fd, newerThan: lock.withLock({ state.open.logical }))
        {
            throw LogError(
                .notFound, "the records at \(position) were recycled since this read-only open: container \(physical) now holds logical container \(now)",
                lsn: position, container: physical, offset: offset)
        }
        switch result {
        case .success(let d): return d
        case .failure(.absent(let why)) where !absentIsCorrupt:
            // A caller's LSN that names no block (it points inside one, or past a closed container's end)
            // is not found. But where a block of the log must start (nothing covers the position), the
            // block was there and its header is gone (a zeroed or overwritten sector): that is damage,
            // never a quiet "not found" a caller could take for the end of a chain.
            if try !blockMustStart(at: position, fd: fd) {
                throw LogError(.notFound, "no block starts at \(position) (\(why))", lsn: position, container: physical, offset: offset)
            }
            throw LogError(
                .corrupt, "block at \(position) is damaged: \(why), but the blocks before it lead here", lsn: position, container: physical,
                offset: offset, path: lock.withLock { state.containers[physical]?.path })
        case .failure(let f):
            let why: String
            switch f {
            case .absent(let m), .damaged(let m): why = m
            }
            throw LogError(.corrupt, "block at \(position) is damaged: \(why)", lsn: position, container: physical, offset: offset,
                           path: lock.withLock { state.containers[physical]?.path })
        }
    }

    /// Whether a block of the log must start at `position`, which holds none: it is inside the data the
    /// container holds (below a closed container's end offset), and no block before it reaches over it.
    /// Looks back from the position for the nearest header of this container (as far as the longest block
    /// the log allows): one that covers the position means the position is inside that block.
    func blockMustStart(at position: LSN, fd: Int32) throws -> Bool {
        let offset = position.blockOffset
        let dataStart = UInt64(Format.containerDataStart)
        let end: UInt64 = lock.withLock {
            // Freed while it was read (every base moved past it): gone, not damaged.
            guard let p = state.logicalToPhysical[position.container] else { return 0 }
            if position.container == state.open.logical { return state.open.offset }
            guard let c = state.containers[p], c.endOffset > 0 else { return dataEnd }
            return c.endOffset
        }
        guard offset >= dataStart, offset < end else { return false }
        let sector = UInt64(Format.sectorSize)
        let longest = UInt64(roundUp(BlockHeader.size + maxRawLength, to: Format.sectorSize))
        let lowest = offset - dataStart > longest ? offset - longest : dataStart
        let window: UInt64 = 64 * 1024
        var high = offset  // the sectors below `high` are still to be looked at
        var bytes = [UInt8](repeating: 0, count: Int(window))
        while high > lowest {
            let low = high - lowest > window ? high - window : lowest
            let n = try bytes.withUnsafeMutableBytes { try io.readFully(fd, into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<Int(high - low)]), at: low) }
            var o = high - sector
            while true {
                let at = Int(o - low)
                if at + BlockHeader.size <= n,
                    let h = try? bytes.withUnsafeBytes({ try BlockHeader.decode(UnsafeRawBufferPointer(rebasing: $0[at..<(at + BlockHeader.size)])) }),
                    h.logSalt == logSalt, h.logicalContainer == position.container, UInt64(h.blockOffset) == o, h.epoch <= readEpoch
                {
                    return o + UInt64(h.diskLength) <= offset
                }
                if o == low { break }
                o -= sector
            }
            high = low
        }
        return true
    }

    /// The bytes of the block at `offset`: at least a block's worth (or the rest of the container), and
    /// the whole block when its header names a longer one that fits. Fewer at the end of the file.
    private func readBlockBytes(fd: Int32, at offset: UInt64) throws -> [UInt8] {
        let available = Int(containerSize - offset)
        var bytes = [UInt8](repeating: 0, count: min(available, max(blockSize, 4096)))
        var n = try bytes.withUnsafeMutableBytes { try io.readFully(fd, into: $0, at: offset) }
        // A header claiming more than the log allows fails validation anyway: it must not size a read
        // (docs/format/block.md bounds what a hostile header can make a reader allocate by `maxRawLength`).
        if n >= BlockHeader.size, let h = try? bytes.withUnsafeBytes({ try BlockHeader.decode($0) }), Int(h.rawLength) <= maxRawLength {
            let need = BlockHeader.size + Int(h.storedLength)
            if need > n, need <= available {
                bytes = [UInt8](repeating: 0, count: need)
                n = try bytes.withUnsafeMutableBytes { try io.readFully(fd, into: $0, at: offset) }
            }
        }
        if n < bytes.count { bytes.removeLast(bytes.count - n) }
        return bytes
    }

    /// The logical container this container file holds now, when a writer has reused it for one newer than
    /// `newest` (its first block is a valid block of this log for that logical container). Nil otherwise:
    /// then a bad block there is damage. For read-only instances, whose view a live writer moves past.
    func logicalRecycledInto(fd: Int32, newerThan newest: UInt32) throws -> UInt32? {
        let start = UInt64(Format.containerDataStart)
        let bytes = try readBlockBytes(fd: fd, at: start)
        guard bytes.count >= BlockHeader.size, let h = try? bytes.withUnsafeBytes({ try BlockHeader.decode($0) }),
            h.logicalContainer > newest
        else { return nil }
        let identity = BlockIdentity(logSalt: logSalt, logicalContainer: h.logicalContainer, blockOffset: UInt32(start), maxEpoch: .max)
        guard case .success = bytes.withUnsafeBytes({ DecodedBlock.validate($0, expecting: identity, maxRawLength: maxRawLength) }) else {
            return nil
        }
        return h.logicalContainer
    }

    /// The position of the block after one that ends at `offset` in logical container `logical`.
    func nextBlockPosition(logical: UInt32, offset: UInt64) -> LSN {
        lock.withLock {
            if logical < .max, let p = state.logicalToPhysical[logical], let c = state.containers[p], c.endOffset > 0, offset >= c.endOffset {
                return LSN(uncheckedContainer: logical + 1, blockOffset: UInt64(Format.containerDataStart), slot: 0)
            }
            return LSN(uncheckedContainer: logical, blockOffset: offset, slot: 0)
        }
    }
}

/// Reads records forward in LSN order: every record, or one stream's. A stream cursor skips blocks
/// whose stream summary shows none of its records without decompressing them.
/// Not thread-safe; make one per reader.
public struct LogCursor: Sendable {
    let core: LogCore
    let stream: UInt16?
    var position: LSN
    var slot: Int
    var block: DecodedBlock?
    var blockIsOpen = false
    var diskLength: Int?
    /// `core.streamDeletions` when this stream cursor last saw its stream exist.
    var deletionsSeen: UInt64
    /// Whether `position` was reached along the log's blocks (a block must start there) rather than given
    /// by the caller (which may name no block: `notFound`, not damage).
    var followed = false

    init(core: LogCore, from lsn: LSN, stream: UInt16? = nil) {
        self.core = core
        self.stream = stream
        self.position = lsn.blockLSN
        self.slot = Int(lsn.slot)
        self.deletionsSeen = core.streamDeletions.load(ordering: .acquiring)
    }

    /// The next record, or nil at the current end of the log. A later call may return records appended since.
    ///
    /// - Throws: `corrupt` for a damaged block; `notFound` when the cursor was started at an LSN where no
    ///   block starts (inside a block, say); `notFound` where the records it was to read next were
    ///   recycled (every base moved past them; also while it read them), and on a read-only log where a
    ///   live writer has recycled them since the open (not damage: they are gone); for a stream's cursor,
    ///   `notFound` once the stream is deleted; `closed` once the log is closed, also for the records
    ///   left in the block the cursor had already read.
    public mutating func next() throws -> LogRecord? { try next(beforeEachBlock: {}) }

    /// As ``next()``, calling `check` before each block it reads, also the blocks a stream's cursor
    /// passes over because they hold none of the stream's records: a scan that finds few records in a
    /// long stretch of the log can still be stopped between blocks by throwing from `check`.
    public mutating func next(beforeEachBlock check: () throws -> Void) throws -> LogRecord? {
        // The block it holds was decoded before: after close() it is not served either (no lock per record).
        if core.closedForReads.load(ordering: .acquiring) { throw LogError(.closed, "the log is closed") }
        // A deleted stream's records are no longer readable through it, also by a cursor made before.
        if let stream {
            let deletions = core.streamDeletions.load(ordering: .acquiring)
            if deletions != deletionsSeen {
                _ = try core.streamInfo(stream)
                deletionsSeen = deletions
            }
        }
        while true {
            if block == nil || (blockIsOpen && slot >= (block?.slots.count ?? 0)) {
                // A cursor parked at the end of a container follows the log once it moves to the next one.
                if block == nil, slot == 0 { position = core.nextBlockPosition(logical: position.container, offset: position.blockOffset) }
                try check()
                let (b, length) = try core.block(at: position, skippingUnless: stream, absentIsCorrupt: followed)
                guard let b else { return nil }
                followed = true
                block = b
                diskLength = length
                blockIsOpen = length == nil
                if blockIsOpen && slot >= b.slots.count { return nil }
            }
            guard let current = block else { return nil }
            while slot < current.slots.count {
                defer { slot += 1 }
                if let stream, current.slots[slot].header.stream != stream { continue }
                return core.record(current, slot: slot, position: position)
            }
            if blockIsOpen { continue }
            guard let length = diskLength else { return nil }
            position = core.nextBlockPosition(logical: position.container, offset: position.blockOffset + UInt64(length))
            slot = 0
            block = nil
        }
    }
}
