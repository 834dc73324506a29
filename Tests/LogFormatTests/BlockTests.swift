// Blocks: the 64-byte header (BlockHeader) and whole-block validation (DecodedBlock):
// docs/format/block.md.

import Testing
@testable import LogFormat

private let blockCodecs: [Codec] = [.none, .lz4, .zlib(level: 1), .zlib(level: 6), .zlib(level: 9)]

@Suite struct BlockTests {
    // MARK: Round trip and layout

    @Test(arguments: blockCodecs)
    func roundTrip(_ codec: Codec) throws {
        let block = sealBlock(Sample.records, codec: codec)
        #expect(block.count % Format.sectorSize == 0)
        let decoded = try decodeBlock(block).get()
        let h = decoded.header
        #expect(h.codecID == codec.id && h.codecLevel == codec.level)
        #expect(h.recordCount == 3)
        #expect(h.rawLength == 184)
        #expect(codec == .none ? h.storedLength == 184 : h.storedLength < 184)
        #expect(h.logicalContainer == 5 && h.blockOffset == 4096 && h.epoch == 3)
        #expect(h.previousBlockCRC == 0x1234_ABCD && h.durableHint == Sample.durableHint)
        #expect(h.logSalt == Sample.logID.salt && h.streamMask == 0xB)
        #expect(h.crc == le32(block, 4))
        #expect(h.diskLength == block.count)
        #expect(decoded.payload == rawPayload(Sample.records))
        #expect(decoded.slots.map(\.dataOffset) == [24, 64, 88])
        for (i, r) in Sample.records.enumerated() {
            let s = decoded.slots[i].header
            #expect(s.type == r.type && s.stream == r.stream && s.previous == r.previous && s.undoNext == r.undoNext)
            #expect(Int(s.length) == r.data.count)
            #expect(decoded.data(at: i) == r.data)
        }
        // Exactly the covered bytes are enough; padding is not needed to decode.
        let exact = Array(block[0..<(BlockHeader.size + Int(h.storedLength))])
        #expect(BlockOutcome(decodeBlock(exact)) == .success)
    }

    @Test func headerLayout() {
        let b = sealBlock(Sample.records, codec: .none)
        #expect(hex(Array(b[0..<4])) == hex(Array("TXB1".utf8)))
        #expect(b[8] == 1 && b[9] == 0 && b[10] == 0 && b[11] == 0)
        #expect(le16(b, 12) == 3 && le16(b, 14) == 0)
        #expect(le32(b, 16) == 184 && le32(b, 20) == 184)
        #expect(le32(b, 24) == 5 && le32(b, 28) == 4096 && le32(b, 32) == 3 && le32(b, 36) == 0x1234_ABCD)
        #expect(le64(b, 40) == 0x0000_0004_000F_FA02 && le64(b, 48) == 0x0123_4567_89AB_CDEF && le64(b, 56) == 0xB)
        #expect(b[(64 + 184)...].allSatisfy { $0 == 0 })
    }

    @Test func encodeReturnsAndStoresTheCRC() {
        var block = [UInt8](repeating: 0, count: 64 + 24)
        var h = BlockHeader(
            codecID: 0, codecLevel: 0, recordCount: 1, storedLength: 24, rawLength: 24, logicalContainer: 1, blockOffset: 4096,
            epoch: 0, previousBlockCRC: 0, durableHint: .null, logSalt: 1, streamMask: 1)
        let crc = block.withUnsafeMutableBytes { h.encode(into: $0) }
        #expect(crc == h.crc && crc == le32(block, 4))
    }

    /// The CRC covers header bytes 0..<64 (with the CRC field read as zero) and the stored payload; it is
    /// computed here independently of the code under test.
    @Test(arguments: blockCodecs)
    func crcCoversHeaderAndStoredPayload(_ codec: Codec) throws {
        let block = sealBlock(Sample.records, codec: codec)
        let stored = Int(le32(block, 16))
        let covered = Array(block[0..<4]) + [0, 0, 0, 0] + Array(block[8..<(64 + stored)])
        #expect(CRC32C.checksum(covered) == le32(block, 4))
        let h = try decodeBlockHeader(block)
        #expect(block.withUnsafeBytes { h.verifyChecksum(block: $0) })
        #expect(!block.withUnsafeBytes { h.verifyChecksum(block: UnsafeRawBufferPointer(rebasing: $0[0..<(63 + stored)])) })
    }

    // MARK: Damage

    /// What a single flipped bit in the covered bytes must give: `absent` when it changes the magic or the
    /// identity (salt, logical container, offset, or an epoch above the expected one), `damaged` otherwise.
    static func expectedOutcome(flipping bit: Int) -> BlockOutcome {
        let byte = bit / 8
        switch byte {
        case 0..<4, 24..<32, 48..<56: return .absent
        case 32..<36:
            let epoch = Sample.epoch ^ (1 << UInt32(bit - 32 * 8))
            return epoch > Sample.epoch ? .absent : .damaged
        default: return .damaged
        }
    }

    @Test(arguments: blockCodecs)
    func everyBitFlipInTheCoveredBytesIsRejected(_ codec: Codec) {
        let block = sealBlock(Sample.records, codec: codec)
        let covered = 64 + Int(le32(block, 16))
        for bit in 0..<(covered * 8) {
            let outcome = BlockOutcome(decodeBlock(flipping(block, bit: bit)))
            #expect(outcome == Self.expectedOutcome(flipping: bit), "\(codec): bit \(bit) (byte \(bit / 8))")
        }
    }

    /// The padding after the stored payload is written as zeros but neither covered by the CRC nor
    /// checked: a flipped bit there does not change the decoded block.
    @Test func paddingIsNotCovered() throws {
        let block = sealBlock(Sample.records, codec: .none)
        let covered = 64 + 184
        for byte in [covered, covered + 100, block.count - 1] {
            let decoded = try decodeBlock(flipping(block, bit: byte * 8 + 3)).get()
            #expect(decoded.payload == rawPayload(Sample.records))
        }
    }

    @Test(arguments: blockCodecs)
    func everyTruncationIsRejected(_ codec: Codec) {
        let block = sealBlock(Sample.records, codec: codec)
        let covered = 64 + Int(le32(block, 16))
        for n in 0..<covered {
            let outcome = BlockOutcome(decodeBlock(Array(block[0..<n])))
            #expect(outcome == (n < BlockHeader.size ? .absent : .damaged), "\(codec): \(n) of \(covered) bytes")
        }
    }

    @Test func identityMismatchIsAbsent() {
        let block = sealBlock(Sample.records, codec: .lz4)
        let id = Sample.identity
        func with(_ change: (inout BlockIdentity) -> Void) -> BlockOutcome {
            var i = id
            change(&i)
            return BlockOutcome(decodeBlock(block, identity: i))
        }
        #expect(with { _ in } == .success)
        #expect(with { $0.logSalt ^= 1 } == .absent)
        #expect(with { $0.logSalt = Sample.logID.low } == .absent)
        #expect(with { $0.logicalContainer = 4 } == .absent)
        #expect(with { $0.logicalContainer = 6 } == .absent)
        #expect(with { $0.blockOffset = 4608 } == .absent)
        #expect(with { $0.blockOffset = 0 } == .absent)
        #expect(with { $0.maxEpoch = 2 } == .absent)
        #expect(with { $0.maxEpoch = 0 } == .absent)
        // An older epoch than the current one is fine.
        #expect(with { $0.maxEpoch = 4 } == .success)
        #expect(with { $0.maxEpoch = .max } == .success)
    }

    /// A header that fails its own checks is `damaged` only if it carries this log's magic, salt, container
    /// and offset and an epoch not above the expected one; otherwise it is `absent`.
    @Test func unparsableHeaderIsDamagedOnlyIfItIsOurs() {
        var block = sealBlock(Sample.records, codec: .none)
        block[11] = 1  // flags
        resealBlockCRC(&block)
        #expect(BlockOutcome(decodeBlock(block)) == .damaged)
        var i = Sample.identity
        i.logSalt ^= 1
        #expect(BlockOutcome(decodeBlock(block, identity: i)) == .absent)
        i = Sample.identity
        i.maxEpoch = 2
        #expect(BlockOutcome(decodeBlock(block, identity: i)) == .absent)
    }

    @Test func rawLengthAboveTheLogsLimitIsDamaged() {
        let block = sealBlock(Sample.records, codec: .none)
        #expect(BlockOutcome(decodeBlock(block, maxRawLength: 184)) == .success)
        #expect(BlockOutcome(decodeBlock(block, maxRawLength: 183)) == .damaged)
    }

    @Test func zerosAndForeignBytesAreAbsent() {
        #expect(BlockOutcome(decodeBlock([UInt8](repeating: 0, count: 4096))) == .absent)
        #expect(BlockOutcome(decodeBlock([])) == .absent)
        #expect(BlockOutcome(decodeBlock(Sample.containerHeader.encode())) == .absent)
        var g = SplitMix64(seed: 30)
        for _ in 0..<200 { #expect(BlockOutcome(decodeBlock(g.bytes(512))) == .absent) }
    }

    // MARK: Header field checks (each with a correct CRC)

    func header(_ change: (inout [UInt8]) -> Void) -> [UInt8] {
        var b = sealBlock(Sample.records, codec: .none)
        change(&b)
        resealBlockCRC(&b)
        return b
    }

    func headerCode(_ change: (inout [UInt8]) -> Void) -> LogError.Code? {
        let b = header(change)
        return errorCode { try decodeBlockHeader(b) }
    }

    @Test func headerFieldChecks() {
        #expect(headerCode { _ in } == nil)
        #expect(headerCode { $0[0] = 0x55 } == .corrupt)
        #expect(headerCode { $0[8] = 0 } == .unsupportedVersion)
        #expect(headerCode { $0[8] = 2 } == .unsupportedVersion)
        #expect(headerCode { $0[11] = 0x80 } == .corrupt)
        #expect(headerCode { put16(&$0, 14, 1) } == .corrupt)
        #expect(headerCode { put16(&$0, 12, 0) } == .corrupt)
        #expect(headerCode { put16(&$0, 12, 513) } == .corrupt)
        #expect(headerCode { put16(&$0, 12, 8) } == .corrupt)  // 8 * 24 = 192 > raw length 184
        #expect(headerCode { put16(&$0, 12, 7) } == nil)  // 7 * 24 = 168 <= 184: the header alone cannot tell
        #expect(headerCode { put32(&$0, 16, 64 << 20 | 8); put32(&$0, 20, 64 << 20 | 8) } == .corrupt)
        #expect(headerCode { put32(&$0, 16, 183) } == .corrupt)
        #expect(headerCode { $0[9] = 3 } == .unsupportedVersion)
        #expect(headerCode { $0[9] = 0xFF } == .unsupportedVersion)
        #expect(headerCode { $0[9] = 2; $0[10] = 0 } == .corrupt)
        #expect(headerCode { $0[9] = 2; $0[10] = 10 } == .corrupt)
        #expect(headerCode { $0[9] = 1 } == .corrupt)  // lz4 with stored == raw
        #expect(headerCode { $0[9] = 1; put32(&$0, 16, 0) } == .corrupt)
        #expect(headerCode { $0[9] = 1; put32(&$0, 16, 185) } == .corrupt)
        #expect(headerCode { put32(&$0, 28, 4097) } == .corrupt)
        #expect(headerCode { put32(&$0, 28, 4096 + 256) } == .corrupt)
        // Not checked: the level byte of none/lz4, the durable hint, the stream mask, offsets below 4096.
        #expect(headerCode { $0[10] = 9 } == nil)
        #expect(headerCode { $0[9] = 1; $0[10] = 9; put32(&$0, 16, 100) } == nil)
        #expect(headerCode { put64(&$0, 40, .max) } == nil)
        #expect(headerCode { put64(&$0, 56, 0) } == nil)
        #expect(headerCode { put32(&$0, 28, 0) } == nil)
        #expect(headerCode { put32(&$0, 24, 0) } == nil)
    }

    @Test func headerFieldFailuresAreDamagedInAWholeBlock() {
        #expect(BlockOutcome(decodeBlock(header { $0[8] = 2 })) == .damaged)
        #expect(BlockOutcome(decodeBlock(header { $0[9] = 3 })) == .damaged)
        #expect(BlockOutcome(decodeBlock(header { put16(&$0, 12, 0) })) == .damaged)
        #expect(BlockOutcome(decodeBlock(header { put32(&$0, 16, 183) })) == .damaged)
    }

    @Test func truncatedHeaderThrowsCorrupt() {
        let b = sealBlock(Sample.records, codec: .none)
        for n in 0..<BlockHeader.size {
            #expect(errorCode { try decodeBlockHeader(Array(b[0..<n])) } == .corrupt, "\(n) bytes")
        }
    }

    @Test func diskLength() {
        func h(_ stored: UInt32) -> BlockHeader {
            BlockHeader(
                codecID: 0, codecLevel: 0, recordCount: 1, storedLength: stored, rawLength: stored, logicalContainer: 1,
                blockOffset: 4096, epoch: 0, previousBlockCRC: 0, durableHint: .null, logSalt: 0, streamMask: 0)
        }
        #expect(h(24).diskLength == 512)
        #expect(h(448).diskLength == 512)
        #expect(h(449).diskLength == 1024)
        #expect(h(64 << 20).diskLength == (64 << 20) + 512)
    }

    // MARK: Record structure (header and CRC valid, payload wrong)

    func record(length: UInt32, type: UInt8 = 1, flags: UInt8 = 0, data: [UInt8]) -> [UInt8] {
        var h = [UInt8](repeating: 0, count: RecordHeader.size)
        put32(&h, 0, length)
        h[4] = type
        h[5] = flags
        put64(&h, 8, LSN.invalid.rawValue)
        put64(&h, 16, LSN.invalid.rawValue)
        return h + data
    }

    func outcome(_ payload: [UInt8], count: UInt16) -> BlockOutcome {
        BlockOutcome(decodeBlock(uncompressedBlock(payload: payload, recordCount: count)))
    }

    @Test func recordStructure() {
        let five = record(length: 5, data: [1, 2, 3, 4, 5, 0, 0, 0])
        let empty = record(length: 0, data: [])
        // The well-formed cases, so each failure below is caused by its one change.
        #expect(outcome(five, count: 1) == .success)
        #expect(outcome(five + empty, count: 2) == .success)
        // Length runs past the payload.
        #expect(outcome(record(length: 9, data: [1, 2, 3, 4, 5, 0, 0, 0]), count: 1) == .damaged)
        #expect(outcome(record(length: .max, data: [1, 2, 3, 4, 5, 0, 0, 0]), count: 1) == .damaged)
        // Length fits but its padding to 8 does not.
        #expect(outcome(record(length: 5, data: [1, 2, 3, 4, 5]), count: 1) == .damaged)
        // Non-zero padding, at each padding byte.
        for i in 5..<8 {
            var data: [UInt8] = [1, 2, 3, 4, 5, 0, 0, 0]
            data[i] = 1
            #expect(outcome(record(length: 5, data: data), count: 1) == .damaged, "padding byte \(i)")
        }
        // Count says more records than the payload holds (raw length too small for 3 headers, then a
        // raw length that passes the header check but ends inside the third record header).
        #expect(outcome(five + empty, count: 3) == .damaged)
        #expect(outcome(five + empty + Array(record(length: 0, data: []).prefix(16)), count: 3) == .damaged)
        // Count says fewer: the rest is trailing bytes.
        #expect(outcome(five + empty, count: 1) == .damaged)
        #expect(outcome(five + [UInt8](repeating: 0, count: 8), count: 1) == .damaged)
        // Unknown type, non-zero flags.
        #expect(outcome(record(length: 0, type: 3, data: []), count: 1) == .damaged)
        #expect(outcome(record(length: 0, type: 0, data: []), count: 1) == .damaged)
        #expect(outcome(record(length: 0, flags: 1, data: []), count: 1) == .damaged)
        // Raw length not a multiple of 8 (a stray byte at the end).
        #expect(outcome(empty + [0], count: 1) == .damaged)
    }

    @Test func parseRecordsThrowsCorrupt() {
        #expect(errorCode { try DecodedBlock.parseRecords(rawPayload(Sample.records), count: 3) } == nil)
        #expect(errorCode { try DecodedBlock.parseRecords(rawPayload(Sample.records), count: 2) } == .corrupt)
        #expect(errorCode { try DecodedBlock.parseRecords(rawPayload(Sample.records), count: 4) } == .corrupt)
        #expect(errorCode { try DecodedBlock.parseRecords([], count: 1) } == .corrupt)
        #expect(errorCode { try DecodedBlock.parseRecords([], count: 0) } == nil)
    }

    /// A compressed payload that is not a valid stream, under a correct CRC, is damage (never a crash).
    @Test(arguments: [Codec.lz4, .zlib(level: 6)])
    func undecodableCompressedPayloadIsDamaged(_ codec: Codec) {
        var block = sealBlock(Sample.records, codec: codec)
        let stored = Int(le32(block, 16))
        for i in 64..<(64 + stored) { block[i] = 0xFF }
        resealBlockCRC(&block)
        #expect(BlockOutcome(decodeBlock(block)) == .damaged)
        // A valid stream of the wrong raw length.
        var short = sealBlock(Sample.records, codec: codec)
        put32(&short, 20, 176)
        resealBlockCRC(&short)
        #expect(BlockOutcome(decodeBlock(short)) == .damaged)
    }
}
