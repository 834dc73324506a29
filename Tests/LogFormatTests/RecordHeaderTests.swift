// The 24-byte record header inside a block's raw payload: docs/format/record.md.

import Testing
@testable import LogFormat

@Suite struct RecordHeaderTests {
    static let sample = RecordHeader(
        length: 0x0102_0304, type: .restart, stream: 0xBEEF, previous: LSN(rawValue: 0x1122_3344_5566_7788),
        undoNext: .invalid)

    func encoded(_ h: RecordHeader, at offset: Int = 0, size: Int = RecordHeader.size) -> [UInt8] {
        var bytes = [UInt8](repeating: 0xEE, count: size)
        bytes.withUnsafeMutableBytes { h.encode(into: $0, at: offset) }
        return bytes
    }

    func decode(_ bytes: [UInt8], at offset: Int = 0) throws -> RecordHeader {
        try bytes.withUnsafeBytes { try RecordHeader.decode(ByteReader($0, what: "test"), at: offset) }
    }

    @Test func layout() {
        let b = encoded(Self.sample)
        #expect(hex(b) == "04030201" + "02" + "00" + "efbe" + "8877665544332211" + "ffffffffffffffff")
    }

    @Test func roundTrip() throws {
        #expect(try decode(encoded(Self.sample)) == Self.sample)
        // At an offset, leaving the bytes around it alone.
        let b = encoded(Self.sample, at: 8, size: 40)
        #expect(b[0..<8].allSatisfy { $0 == 0xEE } && b[32...].allSatisfy { $0 == 0xEE })
        #expect(try decode(b, at: 8) == Self.sample)
        for type in RecordType.allCases {
            let h = RecordHeader(length: 0, type: type, stream: 0, previous: .null, undoNext: .null)
            #expect(try decode(encoded(h)) == h)
        }
    }

    @Test func recordTypes() {
        #expect(RecordType.data.rawValue == 1 && RecordType.restart.rawValue == 2)
        #expect(RecordType.allCases.count == 2)
    }

    @Test func unknownTypeIsCorrupt() {
        for t in [UInt8(0), 3, 4, 0x80, 0xFF] {
            var b = encoded(Self.sample)
            b[4] = t
            #expect(errorCode { try decode(b) } == .corrupt, "type \(t)")
        }
    }

    @Test func nonZeroFlagsAreCorrupt() {
        for bit in 0..<8 {
            var b = encoded(Self.sample)
            b[5] = 1 << UInt8(bit)
            #expect(errorCode { try decode(b) } == .corrupt)
        }
    }

    @Test func shortBufferIsCorrupt() {
        let b = encoded(Self.sample)
        for n in 0..<RecordHeader.size {
            #expect(errorCode { try decode(Array(b[0..<n])) } == .corrupt, "\(n) bytes")
        }
        #expect(errorCode { try decode(b, at: 1) } == .corrupt)
        #expect(errorCode { try decode(b, at: -1) } == .corrupt)
        #expect(errorCode { try decode(b, at: .max - 4) } == .corrupt)
    }

    @Test func footprint() {
        #expect(RecordHeader.footprint(dataLength: 0) == 24)
        #expect(RecordHeader.footprint(dataLength: 1) == 32)
        #expect(RecordHeader.footprint(dataLength: 8) == 32)
        #expect(RecordHeader.footprint(dataLength: 9) == 40)
        #expect(RecordHeader.footprint(dataLength: 12) == 40)
        #expect(RecordHeader.footprint(dataLength: 96) == 120)
    }
}
