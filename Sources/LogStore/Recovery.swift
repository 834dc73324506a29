// Finding the end of the log on open: docs/format/README.md ("Recovery").
//
// The scan starts at the block the base file names (the first block of the newest container) and
// follows blocks forward while each one validates and chains to the one before. Where it stops is the
// end of the log. If that end is below a point some evidence calls durable, the damage is corruption;
// otherwise it is a torn tail, dropped and reported.

import LogFormat

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
    /// Each stream's first and last record found in the scanned tail.
    var streamFirst: [UInt16: LSN] = [:]
    var streamLast: [UInt16: LSN] = [:]
}

struct RecoveryScanner {
    let io: any FileIO
    let directory: String
    let meta: BaseRecord
    let containers: [UInt32: LiveContainer]
    let mode: RecoveryMode
    let maxRawLength: Int

    func scan() throws -> RecoveryResult {
        var report = RecoveryReport()
        report.cleanShutdown = meta.flags & BaseRecord.cleanShutdownFlag != 0
        let logical = meta.scanStart.container
        guard let c = containers.values.first(where: { $0.logical == logical }) else {
            throw LogError(.corrupt, "the base file's scan start container \(logical) is not in the table")
        }
        var offset = meta.scanStart.blockOffset
        var streamFirst: [UInt16: LSN] = [:]
        var streamLast: [UInt16: LSN] = [:]
        var chain = meta.scanStartPreviousCRC
        var last = meta.scanStartPreviousLSN
        let size = meta.containerSize
        let reader = ContainerReader(io: io, fd: c.fd, size: size)
        while offset + UInt64(BlockHeader.size) <= size {
            let position = LSN(uncheckedContainer: logical, blockOffset: offset, slot: 0)
            let identity = BlockIdentity(logSalt: meta.logID.salt, logicalContainer: logical, blockOffset: UInt32(offset), maxEpoch: meta.epoch)
            let result = try reader.decode(at: offset, identity: identity, maxRawLength: maxRawLength)
            var failure: DecodedBlock.Failure?
            switch result {
            case .success(let block):
                if block.header.previousBlockCRC != chain {
                    failure = .absent("block does not chain to the one before (stale block from an earlier run)")
                } else {
                    chain = block.header.crc
                    last = LSN(uncheckedContainer: logical, blockOffset: offset, slot: block.header.recordCount - 1)
                    for (slot, record) in block.slots.enumerated() {
                        let lsn = LSN(uncheckedContainer: logical, blockOffset: offset, slot: UInt16(slot))
                        let stream = record.header.stream
                        if streamFirst[stream] == nil { streamFirst[stream] = lsn }
                        streamLast[stream] = lsn
                    }
                    offset += UInt64(block.header.diskLength)
                    report.blocksScanned += 1
                    continue
                }
            case .failure(let f):
                failure = f
            }
            // The scan stops here. Decide: a clean end, a torn tail, or corruption.
            guard let failure else { break }
            let reason: String
            let damaged: Bool
            switch failure {
            case .absent(let m): reason = m; damaged = false
            case .damaged(let m): reason = m; damaged = true
            }
            let durableEvidence = try durableClaim(beyond: position, reader: reader, logical: logical)
            if position <= meta.durableWatermark || durableEvidence != nil {
                let why = durableEvidence.map { "a later block (\($0)) says it was durable" }
                    ?? "the base file says the log was durable up to \(meta.durableWatermark)"
                let error = LogError(
                    .corrupt, "data at \(position) is lost or damaged (\(reason)), but \(why)", lsn: position,
                    container: c.physical, offset: offset, path: c.path)
                if mode == .pointInTime {
                    report.corruption = error
                    break
                }
                throw error
            }
            if damaged {
                if mode == .strict {
                    throw LogError(.corrupt, "torn tail at \(position): \(reason) (strict recovery)", lsn: position, container: c.physical, offset: offset)
                }
                report.tornTail = "\(position): \(reason)"
            }
            break
        }
        report.lastLSN = last
        return RecoveryResult(
            end: LSN(uncheckedContainer: logical, blockOffset: offset, slot: 0), lastLSN: last, chainCRC: chain, report: report,
            streamFirst: streamFirst, streamLast: streamLast)
    }

    /// Looks past a bad position for any valid block of this log and container whose durable hint claims
    /// the bad position was durable. Returns that block's position, or nil.
    private func durableClaim(beyond position: LSN, reader: ContainerReader, logical: UInt32) throws -> LSN? {
        if meta.flags & BaseRecord.cleanShutdownFlag != 0 { return nil }
        var offset = position.blockOffset + UInt64(Format.sectorSize)
        let chunk = 1 << 20
        var buffer = [UInt8](repeating: 0, count: chunk)
        while offset + UInt64(BlockHeader.size) <= meta.containerSize {
            let n = try buffer.withUnsafeMutableBytes { try io.readFully(reader.fd, into: $0, at: offset) }
            if n < BlockHeader.size { break }
            var at = 0
            while at + BlockHeader.size <= n {
                let magic = buffer.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at, as: UInt32.self) }
                if UInt32(littleEndian: magic) == Format.blockMagic {
                    let o = offset + UInt64(at)
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
        guard offset + UInt64(BlockHeader.size) <= size else { return .failure(.absent("end of container")) }
        var head = [UInt8](repeating: 0, count: BlockHeader.size)
        let n = try head.withUnsafeMutableBytes { try io.readFully(fd, into: $0, at: offset) }
        guard n == BlockHeader.size else { return .failure(.absent("short container")) }
        var length = BlockHeader.size
        if let h = try? head.withUnsafeBytes({ try BlockHeader.decode($0) }) {
            let available = size - offset
            let need = UInt64(BlockHeader.size) + UInt64(h.storedLength)
            length = Int(min(need, available))
        }
        var bytes = [UInt8](repeating: 0, count: length)
        let got = try bytes.withUnsafeMutableBytes { try io.readFully(fd, into: $0, at: offset) }
        return bytes.withUnsafeBytes {
            DecodedBlock.decode(UnsafeRawBufferPointer(rebasing: $0[0..<got]), expecting: identity, maxRawLength: maxRawLength)
        }
    }
}
