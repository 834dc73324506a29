// Finding the end of the log on open: docs/format/README.md ("Recovery").
//
// The scan starts at the block the base file names (the first block of the newest container) and
// follows blocks forward while each one validates and chains to the one before. Where it stops is the
// end of the log. If that end is below a point some evidence calls durable, the damage is corruption;
// otherwise it is a torn tail, dropped and reported.

import LogFormat
#if canImport(Glibc)
import Glibc
#endif

/// What recovery found.
public struct RecoveryReport: Sendable, Equatable {
    /// Blocks scanned from the base file's scan start.
    public var blocksScanned = 0
    /// The LSN of the last record recovered (null for an empty log).
    public var lastLSN: LSN = .null
    /// A torn tail that was dropped: its position and why it was rejected.
    public var tornTail: String?
    /// Damage found in point-in-time mode, where the log stops.
    public var corruption: LogError?
    /// Notes on base-file slots that did not validate.
    public var metadataNotes: [String] = []
    /// True when the base file said the log was closed cleanly.
    public var cleanShutdown = false
}

struct RecoveryResult {
    var end: LSN
    var lastLSN: LSN
    var chainCRC: UInt32
    var report: RecoveryReport
    /// The highest durable hint of the blocks scanned: records at or below it were durable when one of them
    /// was sealed (null when no block was scanned, or none had a hint yet).
    var durableHint: LSN = .null
    /// Each stream's first and last record found in the scanned tail.
    var streamFirst: [UInt16: LSN] = [:]
    var streamLast: [UInt16: LSN] = [:]
    /// Container switches found in the log that the base file did not record.
    var switches: [RecoveredSwitch] = []
    /// Blocks written after the base file's version (``RecoveryScanner/newerHistory``): the base file is stale.
    var newerHistory: LogError?
}

/// A container switch recovery found by following the block chain.
struct RecoveredSwitch {
    var closed: UInt32
    var endOffset: UInt64
    var physical: UInt32
    var previousLSN: LSN
    var previousCRC: UInt32
}

extension RecoveredSwitch {
    /// Records the switch in a base record, as the writer would have.
    func apply(to m: inout BaseRecord) {
        for k in m.containers.indices {
            if m.containers[k].logicalID == closed, m.containers[k].state.holdsData { m.containers[k].endOffset = endOffset }
            if m.containers[k].physicalID == physical {
                m.containers[k].logicalID = closed + 1
                m.containers[k].state = .active
                m.containers[k].endOffset = 0
            }
        }
        m.scanStart = LSN(uncheckedContainer: closed + 1, blockOffset: UInt64(Format.containerDataStart), slot: 0)
        m.scanStartPreviousLSN = previousLSN
        m.scanStartPreviousCRC = previousCRC
    }
}

struct RecoveryScanner {
    let io: any FileIO
    let directory: String
    let meta: BaseRecord
    let containers: [UInt32: LiveContainer]
    let mode: RecoveryMode
    let maxRawLength: Int
    /// A read-only open, which may race a live writer (no lock keeps one out).
    var readOnly = false
    /// `LogOpenOptions.isCancelled`, asked before every block read.
    var isCancelled: (@Sendable () -> Bool)?
    /// A read-only log catching up with its writer (`LogStore.refresh()`): the scan neither looks past its
    /// end for blocks that claim it durable, nor for blocks newer than the base file, nor in the free
    /// containers for a switch the base file does not record. Each reads up to a whole container, or the
    /// first block of every free container, at every poll (an idle log's too); a reader only stops where
    /// the blocks stop, and it reads the base file before the blocks, while the writer records a new epoch
    /// and every switch there before it writes the blocks: those wait for its next catch-up. Its end is
    /// never a torn tail, `strict` or not: the block there may be one the writer is still writing.
    var catchingUp = false

    /// Throws `terminated` once the open's caller has given up on it: a scan of a large log otherwise held
    /// a terminate for as long as it took to read every block.
    func checkCancelled() throws {
        if let isCancelled, isCancelled() { throw LogError(.terminated, "the open was cancelled during the recovery scan") }
    }

    func scan() throws -> RecoveryResult {
        var report = RecoveryReport()
        report.cleanShutdown = meta.flags & BaseRecord.cleanShutdownFlag != 0
        var logical = meta.scanStart.container
        guard var c = containers.values.first(where: { $0.logical == logical }) else {
            throw LogError(.corrupt, "the base file's scan start container \(logical) is not in the table")
        }
        var offset = meta.scanStart.blockOffset
        var streamFirst: [UInt16: LSN] = [:]
        var streamLast: [UInt16: LSN] = [:]
        var chain = meta.scanStartPreviousCRC
        var last = meta.scanStartPreviousLSN
        var switches: [RecoveredSwitch] = []
        var durableHint = LSN.null
        // Reads again of the block at `rereadAt`. Counted per position: a read-only open that keeps catching
        // up with a live writer meets a block mid-write more than once, and a budget for the whole scan ran
        // out on a busy log (then an undamaged log failed to open with `corrupt`).
        var rereads = 0
        var rereadAt = LSN.null
        let size = meta.containerSize
        let dataEnd = Format.containerDataEnd(size: size)
        var reader = ContainerReader(io: io, fd: c.fd, size: size)
        scanning: while true {
            var failure: DecodedBlock.Failure = .absent("end of container")
            while offset + UInt64(BlockHeader.size) <= dataEnd {
                try checkCancelled()
                let identity = BlockIdentity(logSalt: meta.logID.salt, logicalContainer: logical, blockOffset: UInt32(offset), maxEpoch: meta.epoch)
                let result = try reader.decode(at: offset, identity: identity, maxRawLength: maxRawLength)
                guard case .success(let block) = result else {
                    if case .failure(let f) = result { failure = f }
                    break
                }
                guard block.header.previousBlockCRC == chain else {
                    failure = .absent("block does not chain to the one before (stale block from an earlier run)")
                    break
                }
                chain = block.header.crc
                durableHint = max(durableHint, block.header.durableHint)
                last = LSN(uncheckedContainer: logical, blockOffset: offset, slot: block.header.recordCount - 1)
                for (slot, record) in block.slots.enumerated() {
                    let lsn = LSN(uncheckedContainer: logical, blockOffset: offset, slot: UInt16(slot))
                    let stream = record.header.stream
                    if streamFirst[stream] == nil { streamFirst[stream] = lsn }
                    streamLast[stream] = lsn
                }
                offset += UInt64(block.header.diskLength)
                report.blocksScanned += 1
            }
            // The blocks of this container end here. If a free container starts with the next logical
            // container's first block, chained to the last block seen, the log went on there (the base file
            // that recorded the switch was lost, e.g. its newest slot was damaged): follow it. (Not when catching
            // up: the live writer recorded the switch before it wrote there, and the next catch-up reads that.)
            if case .absent = failure, !catchingUp, let next = try continuation(after: logical, chain: chain) {
                switches.append(RecoveredSwitch(closed: logical, endOffset: offset, physical: next.physical, previousLSN: last, previousCRC: chain))
                report.metadataNotes.append("recovered a container switch the base file did not record: logical container \(logical + 1) in container \(next.physical)")
                logical += 1
                c = next
                reader = ContainerReader(io: io, fd: c.fd, size: size)
                offset = UInt64(Format.containerDataStart)
                continue scanning
            }
            // Decide: a clean end, a torn tail, or corruption.
            let position = LSN(uncheckedContainer: logical, blockOffset: offset, slot: 0)
            guard offset + UInt64(BlockHeader.size) <= dataEnd else { break scanning }
            let reason: String
            let damaged: Bool
            switch failure {
            case .absent(let m): reason = m; damaged = false
            case .damaged(let m): reason = m; damaged = true
            }
            let durableEvidence = catchingUp ? nil : try durableClaim(beyond: position, reader: reader, logical: logical)
            if position != rereadAt { (rereadAt, rereads) = (position, 0) }
            // A read-only open can race a live writer: the block here may have been mid-write when it was
            // read and complete (and durable) by the time later blocks were. Read it again before judging.
            // A damaged block with no such claim may be one a live writer is writing right now, which a
            // read-only open would otherwise report as a torn tail (`strict`: fail with `corrupt`): it gets a
            // moment to complete, then it is read again too.
            let racing = readOnly && damaged && durableEvidence == nil && position > meta.durableWatermark
            if durableEvidence != nil || position <= meta.durableWatermark || racing, rereads < 3 {
                let identity = BlockIdentity(logSalt: meta.logID.salt, logicalContainer: logical, blockOffset: UInt32(offset), maxEpoch: meta.epoch)
                for attempt in 0..<(racing ? 3 : 1) {
                    try checkCancelled()
                    if racing { usleep(1_000 << attempt) }
                    if case .success(let again) = try reader.decode(at: offset, identity: identity, maxRawLength: maxRawLength),
                        again.header.previousBlockCRC == chain
                    {
                        rereads += 1
                        continue scanning
                    }
                }
            }
            if position <= meta.durableWatermark || durableEvidence != nil {
                let why = durableEvidence.map { "a later block (\($0)) says it was durable" }
                    ?? "the base file says the log was durable up to \(meta.durableWatermark)"
                let error = LogError(
                    .corrupt, "data at \(position) is lost or damaged (\(reason)), but \(why)", lsn: position,
                    container: c.physical, offset: offset, path: c.path)
                if mode == .pointInTime {
                    report.corruption = error
                    break scanning
                }
                throw error
            }
            // A catch-up cannot tell a block its writer is still writing from a torn one: it ends there for
            // now, in every mode, and the next catch-up reads it again (a reopen classifies it).
            if damaged, !catchingUp {
                if mode == .strict {
                    throw LogError(.corrupt, "torn tail at \(position): \(reason) (strict recovery)", lsn: position, container: c.physical, offset: offset)
                }
                report.tornTail = "\(position): \(reason)"
            }
            break scanning
        }
        report.lastLSN = last
        let end = LSN(uncheckedContainer: logical, blockOffset: offset, slot: 0)
        var result = RecoveryResult(
            end: end, lastLSN: last, chainCRC: chain, report: report, durableHint: durableHint, streamFirst: streamFirst,
            streamLast: streamLast, switches: switches)
        if report.corruption == nil, !catchingUp { result.newerHistory = try newerHistory(end: end, reader: reader, endContainer: c) }
        return result
    }

    /// Blocks of this log written after the base file's version: at the end of the scan a valid block of a
    /// later epoch, or at the start of any container a valid block of a logical container beyond the end or of
    /// a later epoch. The writer records a new epoch and every container switch in the base file before it
    /// writes such a block, so they exist only if the base file's newest version was lost (a damaged slot)
    /// or an older copy of the base file was put in place. The log then goes on past the end recovery found,
    /// with data that may have been acknowledged: corruption (I4), never a clean end. Returns it, or nil.
    private func newerHistory(end: LSN, reader: ContainerReader, endContainer: LiveContainer) throws -> LogError? {
        let stale = "the base file (generation \(meta.generation), epoch \(meta.epoch)) is older than the containers"
        let why = "its newest version was lost or an older copy was put in place"
        let salt = meta.logID.salt
        if end.blockOffset + UInt64(BlockHeader.size) <= Format.containerDataEnd(size: meta.containerSize) {
            let identity = BlockIdentity(logSalt: salt, logicalContainer: end.container, blockOffset: UInt32(end.blockOffset), maxEpoch: .max)
            if case .success(let b) = try reader.decode(at: end.blockOffset, identity: identity, maxRawLength: maxRawLength),
                b.header.epoch > meta.epoch
            {
                return LogError(
                    .corrupt, "\(stale): the log goes on at \(end) with a block of epoch \(b.header.epoch) (\(why))", lsn: end,
                    container: endContainer.physical, offset: end.blockOffset, path: endContainer.path)
            }
        }
        let start = UInt64(Format.containerDataStart)
        for c in containers.values.sorted(by: { $0.physical < $1.physical }) {
            try checkCancelled()
            var bytes = [UInt8](repeating: 0, count: BlockHeader.size)
            guard try bytes.withUnsafeMutableBytes({ try io.readFully(c.fd, into: $0, at: start) }) == BlockHeader.size,
                let h = try? bytes.withUnsafeBytes({ try BlockHeader.decode($0) }),
                h.logSalt == salt, h.blockOffset == UInt32(start), h.logicalContainer > end.container || h.epoch > meta.epoch
            else { continue }
            let identity = BlockIdentity(logSalt: salt, logicalContainer: h.logicalContainer, blockOffset: UInt32(start), maxEpoch: .max)
            let reader = ContainerReader(io: io, fd: c.fd, size: meta.containerSize)
            guard case .success = try reader.decode(at: start, identity: identity, maxRawLength: maxRawLength) else { continue }
            return LogError(
                .corrupt,
                "\(stale): container \(c.physical) holds logical container \(h.logicalContainer) (epoch \(h.epoch)), beyond the end the base file leads to (\(end)) (\(why))",
                container: c.physical, offset: start, path: c.path)
        }
        return nil
    }

    /// A free container whose first block is logical container `logical + 1`'s and chains to `chain`.
    private func continuation(after logical: UInt32, chain: UInt32) throws -> LiveContainer? {
        // The last logical id has no successor (a base file may name it: `logical + 1` trapped the open).
        guard logical < .max else { return nil }
        for c in containers.values.sorted(by: { $0.physical < $1.physical }) where c.logical == 0 {
            try checkCancelled()
            let identity = BlockIdentity(
                logSalt: meta.logID.salt, logicalContainer: logical + 1, blockOffset: UInt32(Format.containerDataStart), maxEpoch: meta.epoch)
            let reader = ContainerReader(io: io, fd: c.fd, size: meta.containerSize)
            if case .success(let b) = try reader.decode(at: UInt64(Format.containerDataStart), identity: identity, maxRawLength: maxRawLength),
                b.header.previousBlockCRC == chain
            {
                return c
            }
        }
        return nil
    }

    /// Looks past a bad position for any valid block of this log and container whose durable hint claims
    /// the bad position was durable. Returns that block's position, or nil.
    private func durableClaim(beyond position: LSN, reader: ContainerReader, logical: UInt32) throws -> LSN? {
        if meta.flags & BaseRecord.cleanShutdownFlag != 0 { return nil }
        var offset = position.blockOffset + UInt64(Format.sectorSize)
        let chunk = 1 << 20
        var buffer = [UInt8](repeating: 0, count: chunk)
        // Bytes of candidate blocks read and checksummed. The blocks of one epoch in one container never
        // overlap, so an honest container's candidates add up to less than its size; headers that claim
        // overlapping blocks (one at every sector, say) would otherwise make this search read and checksum
        // up to `maxRawLength` bytes per sector: quadratic in the container's size. Past the budget, no
        // block here is evidence.
        var checked = 0
        while offset + UInt64(BlockHeader.size) <= Format.containerDataEnd(size: meta.containerSize) {
            try checkCancelled()
            let n = try buffer.withUnsafeMutableBytes { try io.readFully(reader.fd, into: $0, at: offset) }
            if n < BlockHeader.size { break }
            var at = 0
            while at + BlockHeader.size <= n {
                let o = offset + UInt64(at)
                // Only a header that could prove the claim is worth reading its block for.
                let header = buffer.withUnsafeBytes { try? BlockHeader.decode(UnsafeRawBufferPointer(rebasing: $0[at..<(at + BlockHeader.size)])) }
                if let h = header, h.logSalt == meta.logID.salt, h.logicalContainer == logical, UInt64(h.blockOffset) == o,
                    h.epoch == meta.epoch, h.durableHint >= position, Int(h.rawLength) <= maxRawLength
                {
                    checked += BlockHeader.size + Int(h.storedLength)
                    if checked > Int(meta.containerSize) { return nil }
                    let identity = BlockIdentity(logSalt: meta.logID.salt, logicalContainer: logical, blockOffset: UInt32(o), maxEpoch: meta.epoch)
                    if case .success(let b) = try reader.decode(at: o, identity: identity, maxRawLength: maxRawLength),
                        b.header.epoch == meta.epoch, b.header.durableHint >= position
                    {
                        return LSN(uncheckedContainer: logical, blockOffset: o, slot: 0)
                    }
                }
                at += Format.sectorSize
            }
            offset += UInt64(n - n % Format.sectorSize)
            if n < chunk { break }
        }
        return nil
    }
}

/// Reads blocks from one container for recovery and verification.
struct ContainerReader {
    let io: any FileIO
    let fd: Int32
    let size: UInt64

    func decode(at offset: UInt64, identity: BlockIdentity, maxRawLength: Int) throws -> Result<DecodedBlock, DecodedBlock.Failure> {
        // Blocks end by the end of the data area (4 GiB − 512 in a 4 GiB container): the position after one
        // that ran on to 4 GiB has no LSN (it was masked to offset 0, the container's header, where the
        // writer then wrote). Such a block runs past the end, as the decoder says.
        let dataEnd = Format.containerDataEnd(size: size)
        guard offset + UInt64(BlockHeader.size) <= dataEnd else { return .failure(.absent("end of container")) }
        // One read covers the header and, for blocks up to 64 KiB, the body too, so a block is never seen
        // half old and half new because a writer landed between two reads.
        let available = Int(dataEnd - offset)
        var bytes = [UInt8](repeating: 0, count: min(available, 64 * 1024))
        var got = try bytes.withUnsafeMutableBytes { try io.readFully(fd, into: $0, at: offset) }
        guard got >= BlockHeader.size else { return .failure(.absent("short container")) }
        // Only lengths the log allows are worth reading; a larger one fails validation anyway, and must not
        // make recovery allocate and read up to 64 MiB per header.
        if let h = try? bytes.withUnsafeBytes({ try BlockHeader.decode($0) }), Int(h.rawLength) <= maxRawLength {
            let need = BlockHeader.size + Int(h.storedLength)
            if need > bytes.count, need <= available {
                bytes = [UInt8](repeating: 0, count: need)
                got = try bytes.withUnsafeMutableBytes { try io.readFully(fd, into: $0, at: offset) }
            }
        }
        return bytes.withUnsafeBytes {
            DecodedBlock.decode(UnsafeRawBufferPointer(rebasing: $0[0..<got]), expecting: identity, maxRawLength: maxRawLength)
        }
    }
}
