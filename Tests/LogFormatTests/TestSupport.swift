// Shared helpers for the format tests: a seeded generator, the fixed sample values that the golden
// fixtures and the worked examples in docs/format/ are built from, and byte-patching helpers.

import Testing
@_exported import TxLogTestSupport
@testable import LogFormat

/// One record as a test describes it.
struct SampleRecord: Equatable {
    var type: RecordType
    var stream: UInt16
    var previous: LSN
    var undoNext: LSN
    var data: [UInt8]
}

/// The fixed inputs of the golden fixtures. docs/format/*.md quote these values in their worked examples;
/// change them only together with the docs (and regenerate with TXLOG_UPDATE_FIXTURES=1).
enum Sample {
    static let logID = LogID(high: 0x0123_4567_89AB_CDEF, low: 0xFEDC_BA98_7654_3210)
    static let containerSize: UInt64 = 1 << 20
    static let blockSize: UInt32 = 64 * 1024
    static let epoch: UInt32 = 3

    /// Physical id of the container header fixture.
    static let containerPhysicalID: UInt32 = 2

    /// The block fixtures are the first block of logical container 5.
    static let blockLogical: UInt32 = 5
    static let blockOffset: UInt32 = 4096
    static let previousBlockCRC: UInt32 = 0x1234_ABCD
    static let durableHint = LSN(container: 4, blockOffset: 1_047_040, slot: 2)!
    static let position = LSN(container: 5, blockOffset: 4096, slot: 0)!

    static let records: [SampleRecord] = [
        SampleRecord(type: .data, stream: 0, previous: .invalid, undoNext: .invalid, data: Array("hello, txlog".utf8)),
        SampleRecord(type: .data, stream: 3, previous: LSN(container: 5, blockOffset: 4096, slot: 0)!, undoNext: .invalid, data: []),
        SampleRecord(
            type: .restart, stream: 1, previous: LSN(container: 5, blockOffset: 4096, slot: 1)!,
            undoNext: LSN(container: 5, blockOffset: 4096, slot: 0)!,
            data: Array(String(repeating: "txlog ", count: 16).utf8)),
    ]
    /// Bits 0, 1 and 3: streams 0, 1 and 3 are present.
    static let streamMask: UInt64 = 0xB

    static var identity: BlockIdentity {
        BlockIdentity(logSalt: logID.salt, logicalContainer: blockLogical, blockOffset: blockOffset, maxEpoch: epoch)
    }

    /// What LogStore.open passes for this base record: max(blockSize - 64, footprint(maxRecordSize)).
    static var maxRawLength: Int {
        max(Int(blockSize) - BlockHeader.size, RecordHeader.footprint(dataLength: Int(baseRecord.maxRecordSize)))
    }

    static var containerHeader: ContainerHeader {
        ContainerHeader(logID: logID, physicalID: containerPhysicalID, containerSize: containerSize)
    }

    /// A base record in the middle of a log's life: logical container 4 is closed, 5 is being written,
    /// physical container 2 is free.
    static var baseRecord: BaseRecord {
        BaseRecord(
            generation: 5, flags: 0, logID: logID, containerSize: containerSize, blockSize: blockSize,
            maxRecordSize: UInt32(LogLimits.largestRecord(containerSize: containerSize)), codec: .lz4, epoch: epoch,
            baseLSN: LSN(container: 4, blockOffset: 8192, slot: 0)!, durableWatermark: durableHint,
            scanStart: position, scanStartPreviousLSN: durableHint, scanStartPreviousCRC: previousBlockCRC,
            nextPhysicalID: 3,
            containers: [
                ContainerEntry(physicalID: 0, logicalID: 4, state: .active, endOffset: 1_047_552),
                ContainerEntry(physicalID: 1, logicalID: 5, state: .active, endOffset: 0),
                ContainerEntry(physicalID: 2, logicalID: 0, state: .inactive, endOffset: 0),
            ])
    }

    /// ``baseRecord`` with the optional sections of base-file.md: a stream table (streams 0, 1 `orders`
    /// and 3 `audit`, the streams of the block fixtures), a space policy whose container prefix is `ctr-`,
    /// and the name of physical container 2, created under that prefix (base-slot-sections.bin).
    static var baseRecordWithSections: BaseRecord {
        var r = baseRecord
        let base = LSN(container: 4, blockOffset: 8192, slot: 0)!
        r.streams = [
            StreamEntry(id: 0, name: ""),
            StreamEntry(id: 1, name: "orders", base: base, last: durableHint, restart: LSN(container: 4, blockOffset: 1_047_040, slot: 1)!),
            StreamEntry(id: 3, name: "audit", archiveTail: base),
        ]
        r.nextStreamID = 4
        var p = LogPolicy()
        p.minContainers = 3
        p.maxContainers = 16
        p.growthIncrement = 2
        p.autoGrow = true
        p.autoShrinkPercent = 50
        p.maxSizeBytes = 64 << 20
        p.containerPrefix = "ctr-"
        r.policy = p
        r.containerNames = [2: "ctr-000002"]
        return r
    }

    /// The LSNs of the lsn.txt fixture.
    static let lsns: [LSN] = [
        .null,
        LSN(rawValue: 1),
        LSN(container: 1, blockOffset: 4096, slot: 0)!,
        LSN(container: 3, blockOffset: 8192, slot: 17)!,
        LSN(container: 5, blockOffset: 4096, slot: 2)!,
        LSN(container: 4, blockOffset: 1_047_040, slot: 2)!,
        LSN(rawValue: .max - 1),
        .invalid,
    ]
}

/// The raw (uncompressed) payload of `records`, laid out exactly as LogCore.append does.
func rawPayload(_ records: [SampleRecord]) -> [UInt8] {
    let size = records.reduce(0) { $0 + RecordHeader.footprint(dataLength: $1.data.count) }
    var payload = [UInt8](repeating: 0, count: size)
    payload.withUnsafeMutableBytes { p in
        var at = 0
        for r in records {
            RecordHeader(length: UInt32(r.data.count), type: r.type, stream: r.stream, previous: r.previous, undoNext: r.undoNext)
                .encode(into: p, at: at)
            for (i, b) in r.data.enumerated() { p[at + RecordHeader.size + i] = b }
            at += RecordHeader.footprint(dataLength: r.data.count)
        }
    }
    return payload
}

/// Seals `records` into a full block image (header + stored payload + zero padding to 512) the way
/// LogCore.sealLocked does: compress if that makes the payload smaller, else store it as is.
func sealBlock(
    _ records: [SampleRecord], codec: Codec, logical: UInt32 = Sample.blockLogical, offset: UInt32 = Sample.blockOffset,
    epoch: UInt32 = Sample.epoch, previousCRC: UInt32 = Sample.previousBlockCRC, durableHint: LSN = Sample.durableHint,
    salt: UInt64 = Sample.logID.salt
) -> [UInt8] {
    let raw = rawPayload(records)
    let used = raw.count
    var buffer = [UInt8](repeating: 0, count: roundUp(BlockHeader.size + used, to: Format.sectorSize))
    var mask: UInt64 = 0
    for r in records { mask |= 1 << UInt64(r.stream & 63) }
    var disk = 0
    buffer.withUnsafeMutableBytes { b in
        var stored = used
        var codecID: UInt8 = 0
        let target = UnsafeMutableRawBufferPointer(rebasing: b[BlockHeader.size..<(BlockHeader.size + used)])
        let n = raw.withUnsafeBytes { codec.compress($0, into: target) }
        if let n {
            stored = n
            codecID = codec.id
        } else {
            raw.withUnsafeBytes { target.copyMemory(from: $0) }
        }
        // sealLocked zeroes the padding after the stored payload (compression may have left raw bytes there).
        for i in (BlockHeader.size + stored)..<b.count { b[i] = 0 }
        var header = BlockHeader(
            codecID: codecID, codecLevel: codecID == 0 ? 0 : codec.level, recordCount: UInt16(records.count),
            storedLength: UInt32(stored), rawLength: UInt32(used), logicalContainer: logical, blockOffset: offset,
            epoch: epoch, previousBlockCRC: previousCRC, durableHint: durableHint, logSalt: salt, streamMask: mask)
        header.encode(into: b)
        disk = header.diskLength
    }
    return Array(buffer[0..<disk])
}

/// A block whose uncompressed payload is exactly `payload` (any bytes, valid or not) with a correct CRC.
func uncompressedBlock(payload: [UInt8], recordCount: UInt16, rawLength: UInt32? = nil) -> [UInt8] {
    var block = [UInt8](repeating: 0, count: BlockHeader.size + payload.count)
    block.replaceSubrange(BlockHeader.size..., with: payload)
    var header = BlockHeader(
        codecID: 0, codecLevel: 0, recordCount: recordCount, storedLength: UInt32(payload.count),
        rawLength: rawLength ?? UInt32(payload.count), logicalContainer: Sample.blockLogical, blockOffset: Sample.blockOffset,
        epoch: Sample.epoch, previousBlockCRC: Sample.previousBlockCRC, durableHint: Sample.durableHint,
        logSalt: Sample.logID.salt, streamMask: 1)
    block.withUnsafeMutableBytes { _ = header.encode(into: $0) }
    return block
}

/// Recomputes a block's CRC in place after a test patched header bytes: CRC32C of bytes 0..<4, four
/// zero bytes, then bytes 8..<64+storedLength. Does nothing if the stored length runs past the buffer.
func resealBlockCRC(_ block: inout [UInt8]) {
    guard block.count >= BlockHeader.size else { return }
    let stored = Int(le32(block, 16))
    guard BlockHeader.size + stored <= block.count else { return }
    var copy = Array(block[0..<(BlockHeader.size + stored)])
    put32(&copy, 4, 0)
    put32(&block, 4, CRC32C.checksum(copy))
}

/// Recomputes a base slot's CRC (bytes 0..<128+payloadLength with bytes 12..<16 zero) in place.
func resealBaseCRC(_ slot: inout [UInt8]) {
    guard slot.count >= BaseRecord.headerSize else { return }
    let end = BaseRecord.headerSize + Int(le32(slot, 24))
    guard end <= slot.count else { return }
    var copy = Array(slot[0..<end])
    put32(&copy, 12, 0)
    put32(&slot, 12, CRC32C.checksum(copy))
}

/// Recomputes a container header's CRC (bytes 0..<64 with bytes 12..<16 zero) in place.
func resealContainerCRC(_ header: inout [UInt8]) {
    guard header.count >= ContainerHeader.size else { return }
    var copy = Array(header[0..<ContainerHeader.size])
    put32(&copy, 12, 0)
    put32(&header, 12, CRC32C.checksum(copy))
}

func le16(_ b: [UInt8], _ at: Int) -> UInt16 { UInt16(b[at]) | UInt16(b[at + 1]) << 8 }
func le32(_ b: [UInt8], _ at: Int) -> UInt32 { UInt32(b[at]) | UInt32(b[at + 1]) << 8 | UInt32(b[at + 2]) << 16 | UInt32(b[at + 3]) << 24 }
func le64(_ b: [UInt8], _ at: Int) -> UInt64 { UInt64(le32(b, at)) | UInt64(le32(b, at + 4)) << 32 }
func put16(_ b: inout [UInt8], _ at: Int, _ v: UInt16) { for i in 0..<2 { b[at + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt16(i))) } }
func put32(_ b: inout [UInt8], _ at: Int, _ v: UInt32) { for i in 0..<4 { b[at + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(i))) } }
func put64(_ b: inout [UInt8], _ at: Int, _ v: UInt64) { for i in 0..<8 { b[at + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) } }

/// `bytes` with bit `bit` (0 = least significant bit of byte 0) inverted.
func flipping(_ bytes: [UInt8], bit: Int) -> [UInt8] {
    var copy = bytes
    copy[bit / 8] ^= 1 << UInt8(bit % 8)
    return copy
}

func hex(_ bytes: [UInt8]) -> String {
    let digits = Array("0123456789abcdef")
    var s = ""
    for b in bytes {
        s.append(digits[Int(b >> 4)])
        s.append(digits[Int(b & 15)])
    }
    return s
}

/// How a block decode ended, without the message.
enum BlockOutcome: Equatable, CustomStringConvertible {
    case success, absent, damaged

    init(_ result: Result<DecodedBlock, DecodedBlock.Failure>) {
        switch result {
        case .success: self = .success
        case .failure(.absent): self = .absent
        case .failure(.damaged): self = .damaged
        }
    }

    var description: String {
        switch self {
        case .success: "success"
        case .absent: "absent"
        case .damaged: "damaged"
        }
    }
}

func decodeBlock(_ bytes: [UInt8], identity: BlockIdentity = Sample.identity, maxRawLength: Int = Sample.maxRawLength)
    -> Result<DecodedBlock, DecodedBlock.Failure>
{
    bytes.withUnsafeBytes { DecodedBlock.decode($0, expecting: identity, maxRawLength: maxRawLength) }
}

/// The LogError code `body` throws, or nil if it returns normally. Any other error type fails the test.
func errorCode<T>(_ body: () throws -> T) -> LogError.Code? {
    do {
        _ = try body()
        return nil
    } catch let e as LogError {
        return e.code
    } catch {
        Issue.record("unexpected error type \(type(of: error)): \(error)")
        return nil
    }
}

func decodeBase(_ bytes: [UInt8]) throws -> BaseRecord { try bytes.withUnsafeBytes { try BaseRecord.decode($0) } }
func decodeContainer(_ bytes: [UInt8]) throws -> ContainerHeader { try bytes.withUnsafeBytes { try ContainerHeader.decode($0) } }
func decodeBlockHeader(_ bytes: [UInt8]) throws -> BlockHeader { try bytes.withUnsafeBytes { try BlockHeader.decode($0) } }
