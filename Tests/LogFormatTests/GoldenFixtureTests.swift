// Golden fixtures: Fixtures/*.bin and lsn.txt keep docs/format/ and the encoders in step.
//
// Each test rebuilds its fixture from the fixed inputs in `Sample` with the project's own encoders and
// compares it byte for byte with the checked-in file, then decodes the file and checks the field values
// quoted in the worked examples of docs/format/*.md. To regenerate after an intended format change:
//
//     TXLOG_UPDATE_FIXTURES=1 swift test --scratch-path .build-format --filter GoldenFixtureTests
//
// which writes into the source tree (found through #filePath); then rebuild, rerun, and update the docs.
// lz4 and zlib output may change between library versions: for the compressed blocks a payload that
// differs only in its compressed bytes, while decoding to the same records, is reported as a known issue
// instead of a failure.

import Foundation
import Testing
import TxLogTestSupport
@testable import LogFormat

@Suite struct GoldenFixtureTests {
    static let fixtures = GoldenFixtures(bundle: .module)
    static var updating: Bool { GoldenFixtures.updating }
    static var sourceDirectory: URL { fixtures.sourceDirectory }
    static func load(_ name: String) -> [UInt8]? { fixtures.load(name) }

    static func fixture(_ name: String, expected: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) throws -> [UInt8] {
        try fixtures.fixture(name, expected: expected, sourceLocation: sourceLocation)
    }

    static func firstDifference(_ a: [UInt8], _ b: [UInt8]) -> String {
        let n = min(a.count, b.count)
        let i = (0..<n).first { a[$0] != b[$0] } ?? n
        return "sizes \(a.count) and \(b.count), first difference at byte \(i)"
    }

    static func expectSameBytes(_ name: String, _ file: [UInt8], _ encoded: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) {
        let same = file == encoded
        #expect(
            same,
            """
            Fixtures/\(name) no longer matches the encoder (\(firstDifference(file, encoded))). If the format change \
            is intended, regenerate with TXLOG_UPDATE_FIXTURES=1 and update docs/format/.
            """,
            sourceLocation: sourceLocation)
    }

    // MARK: LSN

    static func lsnFixtureText() -> String {
        var s = "# raw (hex, as stored little-endian in files) and printed form of each LSN; docs/format/lsn.md\n"
        for l in Sample.lsns {
            let h = String(l.rawValue, radix: 16, uppercase: true)
            s += "0x" + String(repeating: "0", count: 16 - h.count) + h + " " + l.description + "\n"
        }
        return s
    }

    @Test func lsnText() throws {
        let expected = Array(Self.lsnFixtureText().utf8)
        let file = try Self.fixture("lsn.txt", expected: expected)
        Self.expectSameBytes("lsn.txt", file, expected)
        let lines = String(decoding: file, as: UTF8.self).split(separator: "\n").filter { !$0.hasPrefix("#") }
        #expect(lines.count == 8)
        for line in lines {
            let parts = line.split(separator: " ")
            try #require(parts.count == 2)
            let fromRaw = try #require(LSN(String(parts[0])))
            let fromText = try #require(LSN(String(parts[1])))
            #expect(fromRaw == fromText, "\(line)")
            #expect(fromRaw.description == parts[1])
        }
        // The values lsn.md quotes.
        #expect(lines[3] == "0x0000000300002011 3:8192:17")
        #expect(lines[5] == "0x00000004000FFA02 4:1047040:2")
    }

    // MARK: Container header

    @Test func containerHeader() throws {
        let expected = Sample.containerHeader.encode()
        let file = try Self.fixture("container-header.bin", expected: expected)
        Self.expectSameBytes("container-header.bin", file, expected)
        // Worked example in container.md.
        #expect(file.count == 64)
        let h = try decodeContainer(file)
        #expect(h.logID.description == "0123456789abcdeffedcba9876543210")
        #expect(h.physicalID == 2 && h.containerSize == 0x10_0000)
        #expect(le32(file, 12) == 0xB048_2A50)
    }

    // MARK: Base slot

    @Test func baseSlot() throws {
        let expected = Sample.baseRecord.encode()
        let file = try Self.fixture("base-slot.bin", expected: expected)
        Self.expectSameBytes("base-slot.bin", file, expected)
        // Worked example in base-file.md.
        #expect(file.count == 512)
        let r = try decodeBase(file)
        #expect(r.generation == 5 && r.flags == 0 && r.epoch == 3)
        #expect(r.logID.description == "0123456789abcdeffedcba9876543210")
        #expect(r.containerSize == 1_048_576 && r.blockSize == 65_536 && r.maxRecordSize == 1_044_392 && r.codec == .lz4)
        #expect(r.baseLSN.description == "4:8192:0" && r.durableWatermark.description == "4:1047040:2")
        #expect(r.scanStart.description == "5:4096:0" && r.scanStartPreviousLSN.description == "4:1047040:2")
        #expect(r.scanStartPreviousCRC == 0x1234_ABCD && r.nextPhysicalID == 3)
        #expect(r.containers == [
            ContainerEntry(physicalID: 0, logicalID: 4, state: .active, endOffset: 1_047_552),
            ContainerEntry(physicalID: 1, logicalID: 5, state: .active, endOffset: 0),
            ContainerEntry(physicalID: 2, logicalID: 0, state: .inactive, endOffset: 0),
        ])
        #expect(le32(file, 24) == 108)
        #expect(le32(file, 12) == 0x346B_41C5)
        // Generation 5 belongs in slot 1 (5 % 2), at byte 262144 of txlog.base.
        #expect(r.generation % 2 == 1)
    }

    /// The second worked example of base-file.md: sections 2, 3 and 4 after the container table.
    @Test func baseSlotSections() throws {
        let expected = Sample.baseRecordWithSections.encode()
        let file = try Self.fixture("base-slot-sections.bin", expected: expected)
        Self.expectSameBytes("base-slot-sections.bin", file, expected)
        #expect(file.count == 512)
        #expect(le32(file, 24) == 340, "payload length: 108 + 152 + 48 + 32")
        #expect(Array(file[128..<136]) == Array(expected[128..<136]) && le32(file, 132) == 100, "section 1 first, as in base-slot.bin")
        // Section 2 at 236: type 2, required, body 144 bytes: next id 4, count 3, entries of 40, 48, 48 bytes.
        #expect(le16(file, 236) == 2 && le16(file, 238) == 1 && le32(file, 240) == 144)
        #expect(le16(file, 244) == 4 && le32(file, 248) == 3)
        #expect(le16(file, 252) == 0 && le16(file, 256) == 0, "stream 0, empty name")
        #expect(le16(file, 292) == 1 && le16(file, 294) == 0 && le16(file, 296) == 6 && String(decoding: file[332..<338], as: UTF8.self) == "orders")
        #expect(le64(file, 300) == 0x0000_0004_0000_2000 && le64(file, 308) == 0x0000_0004_000F_FA02)
        #expect(le64(file, 316) == 0 && le64(file, 324) == 0x0000_0004_000F_FA01)
        #expect(le16(file, 340) == 3 && le16(file, 344) == 5 && le64(file, 364) == 0x0000_0004_0000_2000)
        #expect(String(decoding: file[380..<385], as: UTF8.self) == "audit" && file[385..<388].allSatisfy { $0 == 0 })
        // Section 3 at 388: body 40 bytes.
        #expect(le16(file, 388) == 3 && le16(file, 390) == 1 && le32(file, 392) == 40)
        #expect(le32(file, 396) == 3 && le32(file, 400) == 16 && le32(file, 404) == 2 && file[408] == 1 && file[409] == 50)
        #expect(le16(file, 410) == 4 && le64(file, 412) == 64 << 20 && String(decoding: file[428..<432], as: UTF8.self) == "ctr-")
        // Section 4 at 436: body 24 bytes: count 1, container 2 named ctr-000002, 4 bytes of padding.
        #expect(le16(file, 436) == 4 && le16(file, 438) == 1 && le32(file, 440) == 24)
        #expect(le32(file, 444) == 1 && le32(file, 448) == 2 && le16(file, 452) == 10)
        #expect(String(decoding: file[454..<464], as: UTF8.self) == "ctr-000002" && file[464..<512].allSatisfy { $0 == 0 })
        #expect(le32(file, 12) == CRC32C.checksum(Array(file[0..<12]) + [0, 0, 0, 0] + Array(file[16..<468])))
        #expect(try decodeBase(file) == Sample.baseRecordWithSections)
    }

    // MARK: Blocks

    /// Checks a decoded block against the worked example in block.md.
    static func expectSampleBlock(_ d: DecodedBlock, codec: Codec, sourceLocation: SourceLocation = #_sourceLocation) {
        let h = d.header
        #expect(h.codecID == codec.id && h.codecLevel == codec.level, sourceLocation: sourceLocation)
        #expect(h.recordCount == 3 && h.rawLength == 184, sourceLocation: sourceLocation)
        #expect(h.logicalContainer == 5 && h.blockOffset == 4096 && h.epoch == 3, sourceLocation: sourceLocation)
        #expect(h.previousBlockCRC == 0x1234_ABCD, sourceLocation: sourceLocation)
        #expect(h.durableHint.description == "4:1047040:2", sourceLocation: sourceLocation)
        #expect(h.logSalt == 0x0123_4567_89AB_CDEF && h.streamMask == 0xB, sourceLocation: sourceLocation)
        #expect(d.slots.count == 3, sourceLocation: sourceLocation)
        guard d.slots.count == 3 else { return }
        #expect(d.data(at: 0) == Array("hello, txlog".utf8), sourceLocation: sourceLocation)
        #expect(d.data(at: 1) == [], sourceLocation: sourceLocation)
        #expect(d.data(at: 2) == Array(String(repeating: "txlog ", count: 16).utf8), sourceLocation: sourceLocation)
        let s = d.slots.map(\.header)
        #expect(s.map(\.type) == [.data, .data, .restart], sourceLocation: sourceLocation)
        #expect(s.map(\.stream) == [0, 3, 1], sourceLocation: sourceLocation)
        #expect(s.map(\.previous.description) == ["invalid", "5:4096:0", "5:4096:1"], sourceLocation: sourceLocation)
        #expect(s.map(\.undoNext.description) == ["invalid", "invalid", "5:4096:0"], sourceLocation: sourceLocation)
        #expect(d.slots.map(\.dataOffset) == [24, 64, 88], sourceLocation: sourceLocation)
    }

    @Test func blockNone() throws {
        let expected = sealBlock(Sample.records, codec: .none)
        let file = try Self.fixture("block-none.bin", expected: expected)
        Self.expectSameBytes("block-none.bin", file, expected)
        #expect(file.count == 512)
        let d = try decodeBlock(file).get()
        Self.expectSampleBlock(d, codec: .none)
        #expect(d.header.storedLength == 184)
        #expect(d.header.crc == 0x01B7_ADF2)
        #expect(file[248...].allSatisfy { $0 == 0 })
    }

    @Test(arguments: [("block-lz4.bin", Codec.lz4), ("block-zlib6.bin", Codec.zlib(level: 6))])
    func compressedBlock(_ name: String, _ codec: Codec) throws {
        let expected = sealBlock(Sample.records, codec: codec)
        let file = try Self.fixture(name, expected: expected)
        // The file must decode to the worked example whatever library produced it.
        let d = try decodeBlock(file).get()
        Self.expectSampleBlock(d, codec: codec)
        #expect(file.count == d.header.diskLength)
        #expect(file[(64 + Int(d.header.storedLength))...].allSatisfy { $0 == 0 }, "padding must be zero")
        // This machine's encoder must produce the same bytes, or at least the same block apart from the
        // compressed payload (and the stored length and CRC that depend on it).
        if file == expected { return }
        var a = Array(file[0..<64])
        var b = Array(expected[0..<64])
        for i in [4, 5, 6, 7, 16, 17, 18, 19] {
            a[i] = 0
            b[i] = 0
        }
        let sameHeader = a == b
        #expect(sameHeader, "Fixtures/\(name): header fields other than stored length and CRC differ from the encoder")
        let fresh = try decodeBlock(expected).get()
        let samePayload = fresh.payload == d.payload
        #expect(samePayload, "Fixtures/\(name): this machine's encoding decodes to a different payload")
        let note: Comment = """
            Fixtures/\(name): compressed bytes differ from this machine's \(codec) library \
            (\(Self.firstDifference(file, expected))); decoding matches, so this is not a format change
            """
        withKnownIssue(note) {
            Issue.record("compressed payload differs")
        }
    }

    /// Every fixture this suite checks is present (in update mode the other tests are writing them).
    @Test(.disabled(if: GoldenFixtureTests.updating, "fixtures are being regenerated"))
    func fixtureSetIsComplete() throws {
        let names = [
            "lsn.txt", "container-header.bin", "base-slot.bin", "base-slot-sections.bin", "block-none.bin", "block-lz4.bin", "block-zlib6.bin",
        ]
        for name in names { #expect(Self.load(name) != nil, "Fixtures/\(name) is missing") }
    }
}
