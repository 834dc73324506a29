// The 64-byte container header: docs/format/container.md.

import Testing
@testable import LogFormat

@Suite struct ContainerHeaderTests {
    @Test func roundTrip() throws {
        let h = Sample.containerHeader
        let bytes = h.encode()
        #expect(bytes.count == ContainerHeader.size)
        #expect(try decodeContainer(bytes) == h)
        // Extra bytes after the header (the rest of the 4 KiB header area) are not examined.
        #expect(try decodeContainer(bytes + [UInt8](repeating: 0xAB, count: 100)) == h)
        for size in [Format.containerSizeUnit, Format.maxContainerSize] {
            let other = ContainerHeader(logID: LogID(high: 0, low: .max), physicalID: .max, containerSize: size)
            #expect(try decodeContainer(other.encode()) == other)
        }
    }

    @Test func layout() {
        let b = Sample.containerHeader.encode()
        #expect(hex(Array(b[0..<8])) == hex(Array("TXLOGCTR".utf8)))
        #expect(le16(b, 8) == 1 && le16(b, 10) == 64)
        #expect(le64(b, 16) == Sample.logID.high && le64(b, 24) == Sample.logID.low)
        #expect(le32(b, 32) == 2 && le32(b, 36) == 0)
        #expect(le64(b, 40) == Sample.containerSize && le32(b, 48) == 4096)
        #expect(b[52..<64].allSatisfy { $0 == 0 })
        // CRC32C over all 64 bytes with bytes 12..<16 zero.
        var zeroed = b
        put32(&zeroed, 12, 0)
        #expect(le32(b, 12) == CRC32C.checksum(zeroed))
    }

    /// Every single-bit flip is rejected as corrupt, including flips in the version field: the CRC is
    /// checked before the version, so damage is never mistaken for a newer format.
    @Test func everyBitFlipIsRejected() {
        let bytes = Sample.containerHeader.encode()
        for bit in 0..<(bytes.count * 8) {
            #expect(errorCode { try decodeContainer(flipping(bytes, bit: bit)) } == .corrupt, "bit \(bit)")
        }
    }

    /// Only an intact header (correct CRC) of another version is an unknown version.
    @Test func wrongVersionIsUnsupported() {
        for version: UInt16 in [0, 2, 0xFFFF] {
            var b = Sample.containerHeader.encode()
            put16(&b, 8, version)
            #expect(errorCode { try decodeContainer(b) } == .corrupt, "version \(version), stale CRC")
            resealContainerCRC(&b)
            #expect(errorCode { try decodeContainer(b) } == .unsupportedVersion, "version \(version)")
        }
    }

    @Test func checkedFieldsWithAValidCRC() {
        var b = Sample.containerHeader.encode()
        put16(&b, 10, 128)
        resealContainerCRC(&b)
        #expect(errorCode { try decodeContainer(b) } == .corrupt, "header size")
        b = Sample.containerHeader.encode()
        put32(&b, 48, 8192)
        resealContainerCRC(&b)
        #expect(errorCode { try decodeContainer(b) } == .corrupt, "data start")
    }

    /// Reserved bytes and the size field are covered by the CRC but not otherwise checked by decode; a
    /// non-canonical header with a matching CRC decodes. The size is checked against the base file on open.
    @Test func uncheckedFieldsWithAValidCRC() throws {
        var b = Sample.containerHeader.encode()
        b[36] = 1
        b[60] = 1
        put64(&b, 40, 12345)
        resealContainerCRC(&b)
        let h = try decodeContainer(b)
        #expect(h.containerSize == 12345)
    }

    @Test func truncationIsCorrupt() {
        let bytes = Sample.containerHeader.encode()
        for n in 0..<bytes.count {
            #expect(errorCode { try decodeContainer(Array(bytes[0..<n])) } == .corrupt, "\(n) bytes")
        }
    }

    @Test func zerosAreCorrupt() {
        #expect(errorCode { try decodeContainer([UInt8](repeating: 0, count: 4096)) } == .corrupt)
    }

    @Test func logIDText() {
        #expect(Sample.logID.description == "0123456789abcdeffedcba9876543210")
        #expect(LogID(high: 0, low: 1).description == "00000000000000000000000000000001")
        #expect(Sample.logID.salt == 0x0123_4567_89AB_CDEF)
    }
}
