// A read-only walk over every block of an open log, for `txlog verify`, `stats` and `map`: the tool holds
// no format logic. The rules it checks are docs/format/README.md ("Recovery") and block.md ("Validity").
//
// Order of the walk: both base-file slots, every container header, then every data-holding container in
// logical order from the oldest, block by block from offset 4096. A closed container's blocks must reach
// its end offset from the table exactly; the newest container is walked up to the end recovery found.
// Every block must decode (identity, CRC, decompression, records) and chain to the block before it.

import LogFormat

extension LogStore {
    /// Walks the base file, every container header and every block of every data-holding container, and
    /// validates each: identity, CRC, decompression, record structure and the block chain. Read-only.
    ///
    /// - Parameters:
    ///   - keepGoing: after damage, go on: resynchronise at the next 512-byte boundary holding a valid block
    ///     of the expected logical container, and report every problem. Otherwise stop at the first.
    ///   - progress: called with the fraction of the data area walked so far (0...1).
    /// - Throws: `closed`, or `io` if a read fails. Damage is reported in ``ScanReport/problems``, not thrown.
    ///
    /// The report lists every valid block in ``ScanReport/blocks``, so its size grows with the log (about
    /// 200 bytes a block). A tool that only tallies the blocks uses
    /// ``walkBlocks(keepGoing:progress:visit:)``, whose memory does not grow with the log.
    public func scanBlocks(keepGoing: Bool = false, progress: ((Double) -> Void)? = nil) throws -> ScanReport {
        var blocks: [ScannedBlock] = []
        var report = try walkBlocks(keepGoing: keepGoing, progress: progress) { blocks.append($0) }
        report.blocks = blocks
        return report
    }

    /// The walk of ``scanBlocks(keepGoing:progress:)``, handing each valid block to `visit` in log order
    /// instead of keeping it: the returned report's ``ScanReport/blocks`` is empty, and the walk holds a
    /// read window of at most 1 MiB whatever the size of the log. `txlog verify`, `stats` and `map` tally
    /// the blocks this way.
    ///
    /// - Parameters:
    ///   - keepGoing: as for ``scanBlocks(keepGoing:progress:)``.
    ///   - progress: called with the fraction of the data area walked so far (0...1).
    ///   - visit: called once per valid block, on the calling thread, before the walk goes on. It must
    ///     not close the log of the walk, nor remove a container the walk has not finished, on this thread
    ///     or by waiting for another: both wait for the walk, which uses each container's descriptor until
    ///     it is done with that container (close: until it returns). Moving a base or archive tail up to
    ///     the block visited is fine (auto-shrink may then remove the containers walked, not the others).
    /// - Throws: `closed`, or `io` if a read fails. Damage is reported in ``ScanReport/problems``, not thrown.
    public func walkBlocks(
        keepGoing: Bool = false, progress: ((Double) -> Void)? = nil, visit: (ScannedBlock) -> Void
    ) throws -> ScanReport {
        try withoutActuallyEscaping(visit) { visit in
            var scanner = LogScanner(core: core, keepGoing: keepGoing, progress: progress, visit: visit)
            return try scanner.run()
        }
    }
}

/// Reads a container through a window of up to 1 MiB, so small blocks cost no read of their own. A block is
/// always decoded from bytes that one read returned (a block is never seen half old and half new).
private struct WindowReader {
    let io: any FileIO
    let fd: Int32
    let size: UInt64
    var start: UInt64 = 0
    var bytes: [UInt8] = []
    static let window = 1 << 20

    init(io: any FileIO, fd: Int32, size: UInt64) {
        self.io = io
        self.fd = fd
        self.size = size
    }

    private mutating func fill(at offset: UInt64, count: Int) throws {
        let n = Int(min(UInt64(max(count, WindowReader.window)), size - offset))
        var buffer = [UInt8](repeating: 0, count: n)
        let got = try buffer.withUnsafeMutableBytes { try io.readFully(fd, into: $0, at: offset) }
        if got < n { buffer.removeLast(n - got) }
        bytes = buffer
        start = offset
    }

    private func covers(_ offset: UInt64, _ count: Int) -> Bool {
        offset >= start && offset + UInt64(count) <= start + UInt64(bytes.count)
    }

    /// The header at `offset`, if one parses (for telling a recycled container from damage).
    mutating func header(at offset: UInt64) throws -> (BlockHeader, Bool)? {
        guard offset + UInt64(BlockHeader.size) <= size else { return nil }
        if !covers(offset, BlockHeader.size) { try fill(at: offset, count: BlockHeader.size) }
        guard covers(offset, BlockHeader.size) else { return nil }
        let at = Int(offset - start)
        return bytes.withUnsafeBytes { raw -> (BlockHeader, Bool)? in
            let slice = UnsafeRawBufferPointer(rebasing: raw[at...])
            guard let h = try? BlockHeader.decode(slice) else { return nil }
            return (h, h.verifyChecksum(block: slice))
        }
    }

    mutating func decode(at offset: UInt64, identity: BlockIdentity, maxRawLength: Int) throws -> Result<DecodedBlock, DecodedBlock.Failure> {
        guard offset + UInt64(BlockHeader.size) <= size else { return .failure(.absent("end of container")) }
        if !covers(offset, BlockHeader.size) { try fill(at: offset, count: BlockHeader.size) }
        guard covers(offset, BlockHeader.size) else { return .failure(.absent("short container")) }
        var at = Int(offset - start)
        let h = bytes.withUnsafeBytes { try? BlockHeader.decode(UnsafeRawBufferPointer(rebasing: $0[at...])) }
        if let h {
            let need = min(BlockHeader.size + Int(h.storedLength), Int(size - offset))
            // Only lengths the log allows are worth reading; a larger one fails validation anyway.
            if !covers(offset, need), Int(h.rawLength) <= maxRawLength {
                try fill(at: offset, count: need)
                at = 0
            }
        }
        let end = bytes.count
        return bytes.withUnsafeBytes {
            DecodedBlock.decode(UnsafeRawBufferPointer(rebasing: $0[at..<end]), expecting: identity, maxRawLength: maxRawLength)
        }
    }
}

private struct LogScanner {
    let core: LogCore
    let keepGoing: Bool
    let progress: ((Double) -> Void)?
    /// Each valid block goes here, in log order; the report keeps none.
    let visit: (ScannedBlock) -> Void
    var report = ScanReport()

    init(core: LogCore, keepGoing: Bool, progress: ((Double) -> Void)?, visit: @escaping (ScannedBlock) -> Void) {
        self.core = core
        self.keepGoing = keepGoing
        self.progress = progress
        self.visit = visit
    }

    /// True when the scan should stop (a problem was found and `keepGoing` is off).
    private mutating func problem(_ p: ScanProblem) -> Bool {
        report.problems.append(p)
        if !keepGoing { report.complete = false }
        return !keepGoing
    }

    mutating func run() throws -> ScanReport {
        // Registered as a read for the whole walk: close() releases the descriptors only after it.
        try core.lock.withLock {
            if core.state.closed || core.state.filesReleased { throw LogError(.closed, "the log is closed") }
            core.state.reads.begin(nil)
        }
        defer { core.endRead(nil) }
        if try checkBase() { return report }
        if try checkContainerHeaders() { return report }
        // Point-in-time recovery's finding away from the end of the log (a container holding blocks newer
        // than the base file): reported as it is; the walk then covers what the base file describes.
        if let c = core.recoveryReport.corruption, c.lsn == nil {
            report.end = core.lock.withLock { core.state.open.position }
            if problem(ScanProblem(kind: .base, message: c.message, container: c.container, offset: c.offset, path: c.path)) { return report }
        }
        try walkBlocks()
        return report
    }

    // MARK: Base file

    private mutating func checkBase() throws -> Bool {
        let io = core.io
        let path = core.directory + "/" + Format.baseFileName
        let size = try io.fileSize(core.baseFD)
        var image = [UInt8](repeating: 0, count: 2 * Format.baseSlotSize)
        let n = try image.withUnsafeMutableBytes { try io.readFully(core.baseFD, into: $0, at: 0) }
        if size != UInt64(2 * Format.baseSlotSize) {
            if problem(ScanProblem(kind: .base, message: "base file is \(size) bytes, expected \(2 * Format.baseSlotSize)", path: path)) {
                return true
            }
        }
        var slots: [ScannedBaseSlot] = []
        for slot in 0..<2 {
            let start = slot * Format.baseSlotSize
            let end = min(n, start + Format.baseSlotSize)
            let bytes = end > start ? image[start..<end] : []
            if bytes.allSatisfy({ $0 == 0 }) {
                slots.append(ScannedBaseSlot(slot: slot, state: .unused))
                continue
            }
            do {
                let r = try bytes.withUnsafeBytes { try BaseRecord.decode($0) }
                if r.generation % 2 != UInt64(slot) {
                    slots.append(ScannedBaseSlot(slot: slot, state: .damaged, generation: r.generation))
                    if problem(ScanProblem(
                        kind: .base, message: "base slot \(slot) holds generation \(r.generation), which belongs to the other slot",
                        offset: UInt64(start), path: path))
                    { return true }
                    continue
                }
                slots.append(ScannedBaseSlot(slot: slot, state: .previous, generation: r.generation))
            } catch {
                let why = (error as? LogError)?.message ?? "\(error)"
                slots.append(ScannedBaseSlot(slot: slot, state: .damaged))
                if problem(ScanProblem(kind: .base, message: "base slot \(slot) is damaged: \(why)", offset: UInt64(start), path: path)) {
                    report.baseSlots = slots
                    return true
                }
            }
        }
        let newest = slots.filter { $0.state == .previous }.max { ($0.generation ?? 0) < ($1.generation ?? 0) }
        for i in slots.indices where slots[i].slot == newest?.slot { slots[i].state = .current }
        report.baseSlots = slots
        // From generation 2 on both slots have been written (create: 1 in slot 1; first open: 2 in slot 0).
        if let g = newest?.generation, g >= 2, let zero = slots.first(where: { $0.state == .unused }) {
            let message = "base slot \(zero.slot) is all zeros, but both slots were written (generation \(g)): zeroed"
            if problem(ScanProblem(kind: .base, message: message, offset: UInt64(zero.slot * Format.baseSlotSize), path: path)) { return true }
        }
        return false
    }

    // MARK: Container headers

    private mutating func checkContainerHeaders() throws -> Bool {
        let io = core.io
        // The descriptors are counted as in use while the headers are read: a removal closes one only after.
        let containers = core.lock.withLock {
            let containers = core.state.containers.values.sorted { $0.physical < $1.physical }
            core.state.reads.begin(containers.map(\.fd))
            return containers
        }
        defer { core.endRead(containers.map(\.fd)) }
        for c in containers {
            report.containersChecked += 1
            let size = try io.fileSize(c.fd)
            if size != core.containerSize {
                if problem(ScanProblem(
                    kind: .container, message: "container \(c.physical) is \(size) bytes, expected \(core.containerSize)",
                    container: c.physical, path: c.path))
                { return true }
                continue
            }
            var bytes = [UInt8](repeating: 0, count: ContainerHeader.size)
            _ = try bytes.withUnsafeMutableBytes { try io.readFully(c.fd, into: $0, at: 0) }
            do {
                let h = try bytes.withUnsafeBytes { try ContainerHeader.decode($0) }
                guard h.logID == core.logID, h.physicalID == c.physical, h.containerSize == core.containerSize else {
                    if problem(ScanProblem(
                        kind: .container, message: "container \(c.physical)'s header names another log, id or size",
                        container: c.physical, offset: 0, path: c.path))
                    { return true }
                    continue
                }
            } catch {
                let why = (error as? LogError)?.message ?? "\(error)"
                if problem(ScanProblem(kind: .container, message: "container \(c.physical) header: \(why)", container: c.physical, offset: 0, path: c.path)) {
                    return true
                }
            }
        }
        return false
    }

    // MARK: Blocks

    private struct Target {
        var logical: UInt32
        var live: LiveContainer
        /// Where the container's blocks end: its end offset (closed) or the recovered end (newest).
        var end: UInt64
        var newest: Bool
    }

    private mutating func walkBlocks() throws {
        let (targets, recoveredEnd) = core.lock.withLock { () -> ([Target], LSN) in
            let open = core.state.open.position
            let data = core.state.containers.values.filter { $0.logical != 0 }.sorted { $0.logical < $1.logical }
            let newest = data.last?.logical ?? 0
            // Each in use until the walk is done with it (a removal waits for this walk, not for the walks
            // after it).
            core.state.reads.begin(data.map(\.fd))
            return (data.map { c in
                Target(logical: c.logical, live: c, end: c.logical == newest ? open.blockOffset : c.endOffset, newest: c.logical == newest)
            }, open)
        }
        // The descriptors still in use: a container walked is let go at once, so removing it (recycled
        // since, then auto-shrunk) waits no longer for the rest of the walk. Held to the end, a visit that
        // moved a base or archive tail past it, which auto-shrink followed by removing it, waited for
        // itself for ever.
        var inUse = targets.map(\.live.fd)
        defer { core.endRead(inUse) }
        let recovery = core.recoveryReport
        if let torn = recovery.tornTail { report.notes.append("torn tail dropped by recovery at \(torn)") }
        report.notes.append(contentsOf: recovery.metadataNotes)
        let newestAtOpen = targets.last?.logical ?? 0
        let dataStart = UInt64(Format.containerDataStart)
        let total = targets.reduce(UInt64(0)) { $0 + ($1.end > dataStart ? $1.end - dataStart : 0) }
        var done: UInt64 = 0
        var chain: UInt32?  // the CRC the next block must carry as its previous CRC (nil: unknown)
        report.end = recoveredEnd
        for t in targets {
            var reader = WindowReader(io: core.io, fd: t.live.fd, size: core.containerSize)
            var offset = dataStart
            var resynced = false  // inside the newest container after damage: the chain decides where it ends
            // Recovery (point-in-time) already found damage in the newest container at this position.
            let damageAt: LogError? = t.newest && recovery.corruption?.lsn != nil ? recovery.corruption : nil
            func lsn(_ o: UInt64) -> LSN { LSN(uncheckedContainer: t.logical, blockOffset: o, slot: 0) }
            blocks: while true {
                if !resynced, offset >= t.end {
                    if let damageAt, offset == t.end {
                        let p = ScanProblem(
                            kind: .block, message: damageAt.message, lsn: lsn(offset), container: t.live.physical, offset: offset, path: t.live.path)
                        if problem(p) {
                            report.end = lsn(offset)
                            return
                        }
                        guard let next = try resync(&reader, t, after: offset, limit: core.containerSize) else { break blocks }
                        offset = next
                        chain = nil
                        resynced = true
                        continue
                    }
                    if offset > t.end, !t.newest, problem(ScanProblem(
                        kind: .block, message: "the last block runs past the container's end offset \(t.end) in the base file",
                        lsn: lsn(offset), container: t.live.physical, offset: offset, path: t.live.path))
                    {
                        report.end = lsn(offset)
                        return
                    }
                    break blocks
                }
                let identity = BlockIdentity(logSalt: core.logSalt, logicalContainer: t.logical, blockOffset: UInt32(offset), maxEpoch: core.readEpoch)
                let result = try reader.decode(at: offset, identity: identity, maxRawLength: core.maxRawLength)
                let why: String
                switch result {
                case .success(let b):
                    if let expected = chain, b.header.previousBlockCRC != expected {
                        if resynced { break blocks }  // a stale block from an earlier run: the end of the log
                        // Valid but unchained: reported, then taken as the new start of the chain.
                        let p = ScanProblem(
                            kind: .block,
                            message: "block does not chain to the block before it (previous CRC \(hex(b.header.previousBlockCRC)), expected \(hex(expected)))",
                            lsn: lsn(offset), container: t.live.physical, offset: offset, path: t.live.path)
                        if problem(p) {
                            report.end = lsn(offset)
                            return
                        }
                    }
                    do {
                        record(b, at: offset, t)
                        chain = b.header.crc
                        let length = UInt64(b.header.diskLength)
                        offset += length
                        done += length
                        report.bytesScanned += length
                        progress?(total == 0 ? 1 : min(1, Double(done) / Double(total)))
                        continue blocks
                    }
                case .failure(.absent(let m)):
                    if resynced { break blocks }
                    // A live writer may have recycled a closed container since the open: its block then
                    // belongs to a newer logical container and checks out, or (the new blocks' boundaries
                    // differ) no block starts here but the container's first block is the newer one's.
                    // That is not damage.
                    if !t.newest, try recycled(&reader, at: offset, t, newestAtOpen: newestAtOpen) {
                        report.notes.append("container \(t.live.physical) was recycled by a writer while it was scanned; stopped at offset \(offset)")
                        chain = nil  // the rest of its blocks were not seen: the next container cannot be chained to them
                        break blocks
                    }
                    why = "no valid block where the log continues (\(m))"
                case .failure(.damaged(let m)):
                    why = "block is damaged: \(m)"
                }
                let p = ScanProblem(kind: .block, message: why, lsn: lsn(offset), container: t.live.physical, offset: offset, path: t.live.path)
                if problem(p) {
                    report.end = lsn(offset)
                    return
                }
                let limit = t.newest ? core.dataEnd : t.end
                guard let next = try resync(&reader, t, after: offset, limit: limit) else {
                    chain = nil
                    break blocks
                }
                done += next - offset
                offset = next
                chain = nil
                if t.newest, offset >= t.end { resynced = true }
            }
            core.releaseRead(t.live.fd)
            inUse.removeFirst()
            if t.newest {
                report.end = LSN(uncheckedContainer: t.logical, blockOffset: offset, slot: 0)
                progress?(1)
            }
        }
    }

    /// Whether a writer has reused `t`'s container for a logical container newer than any at the open:
    /// the block at `offset` or the container's first block is a valid one of such a container.
    private func recycled(_ reader: inout WindowReader, at offset: UInt64, _ t: Target, newestAtOpen: UInt32) throws -> Bool {
        if let (h, crcOK) = try reader.header(at: offset), crcOK, h.logSalt == core.logSalt, h.logicalContainer > newestAtOpen {
            return true
        }
        return try core.logicalRecycledInto(fd: t.live.fd, newerThan: newestAtOpen) != nil
    }

    /// The next 512-byte boundary after `offset` (below `limit`) holding a valid block of the container.
    private func resync(_ reader: inout WindowReader, _ t: Target, after offset: UInt64, limit: UInt64) throws -> UInt64? {
        var o = offset + UInt64(Format.sectorSize)
        while o + UInt64(BlockHeader.size) <= min(limit, core.dataEnd) {
            if let (h, _) = try reader.header(at: o), h.logSalt == core.logSalt, h.logicalContainer == t.logical, h.blockOffset == UInt32(o) {
                let identity = BlockIdentity(logSalt: core.logSalt, logicalContainer: t.logical, blockOffset: UInt32(o), maxEpoch: core.readEpoch)
                if case .success = try reader.decode(at: o, identity: identity, maxRawLength: core.maxRawLength) { return o }
            }
            o += UInt64(Format.sectorSize)
        }
        return nil
    }

    private mutating func record(_ b: DecodedBlock, at offset: UInt64, _ t: Target) {
        var streams: [UInt16: ScanUsage] = [:]
        var restarts = 0
        for s in b.slots {
            streams[s.header.stream, default: ScanUsage()].records += 1
            streams[s.header.stream, default: ScanUsage()].dataBytes += Int(s.header.length)
            if s.header.type == .restart { restarts += 1 }
        }
        let h = b.header
        let codec = (try? Codec(id: h.codecID, level: h.codecID == 2 ? h.codecLevel : 0)) ?? .none
        visit(ScannedBlock(
            lsn: LSN(uncheckedContainer: t.logical, blockOffset: offset, slot: 0), physicalID: t.live.physical, offset: offset,
            codec: codec, storedLength: Int(h.storedLength), rawLength: Int(h.rawLength), diskLength: h.diskLength,
            recordCount: Int(h.recordCount), restartRecords: restarts, epoch: h.epoch, streamMask: h.streamMask, streams: streams))
    }
}

private func hex(_ v: UInt32) -> String {
    let s = String(v, radix: 16)
    return "0x" + String(repeating: "0", count: 8 - s.count) + s
}
