// The worked examples of docs/format/*.md, read from the documents themselves: every `xxd -g1` hex dump
// is parsed and compared byte for byte with the fixture it names, every CRC a document quotes is
// recomputed over the coverage that document gives, and the bytes built from the document text decode
// with the project's decoders to the values the tables quote. GoldenFixtureTests keeps the fixtures in
// step with the encoders; this keeps the documents in step with the fixtures.

import Foundation
import Testing
@testable import LogFormat

@Suite struct FormatDocExampleTests {
    /// The repository root (this file is Tests/LogFormatTests/FormatDocExampleTests.swift).
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static func doc(_ name: String) throws -> String {
        try String(contentsOf: root.appendingPathComponent("docs/format/\(name)"), encoding: .utf8)
    }

    static func fixture(_ path: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: root.appendingPathComponent("Tests/\(path)")))
    }

    /// One hex dump of a document: the bytes it shows (offset → byte; rows a dump leaves out are
    /// absent), and the file length its last line implies.
    struct Dump {
        var bytes: [Int: UInt8] = [:]
        var length = 0

        /// The dump as a byte array, or nil if it leaves bytes out.
        var complete: [UInt8]? {
            guard bytes.count == length else { return nil }
            return (0..<length).map { bytes[$0]! }
        }
    }

    /// The golden fixtures the documents show.
    static let fixtureNames: Set<String> = [
        "container-header.bin", "base-slot.bin", "base-slot-sections.bin", "block-none.bin", "block-lz4.bin", "block-zlib6.bin",
        "tm-outcome-record.bin", "tm-checkpoint.bin", "tm-checkpoint-index.bin", "prepare-record.bin", "commit-record.bin",
        "checkpoint-record.bin", "snapshot.snap",
    ]

    /// The hex dumps of `text`, each keyed by the fixture file named (in backquotes) last before it.
    /// Rows are `OOOOOOOO: xx xx …  ascii`; a row `AAAAAAAA to BBBBBBBB: zeros` fills that range with
    /// zeros.
    static func dumps(_ text: String) -> [String: Dump] {
        var out: [String: Dump] = [:]
        var current: String?
        var inCode = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("```") {
                inCode.toggle()
                continue
            }
            if !inCode {
                // The last fixture file named in prose: `name.bin` or `name.snap`.
                for part in line.split(separator: "`", omittingEmptySubsequences: false).enumerated() where part.offset % 2 == 1 {
                    let s = String(part.element)
                    if fixtureNames.contains(s) { current = s }
                }
                continue
            }
            guard let name = current else { continue }
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard let first = fields.first, first.count == 8 || (first.count == 9 && first.hasSuffix(":")),
                let offset = Int(first.prefix(8), radix: 16)
            else { continue }
            var d = out[name, default: Dump()]
            if fields.count >= 4, fields[1] == "to", fields[3].hasPrefix("zeros"), let end = Int(fields[2].dropLast(), radix: 16) {
                for i in offset...end { d.bytes[i] = 0 }
                d.length = max(d.length, end + 1)
            } else if first.hasSuffix(":") {
                // At most 16 two-digit hex fields follow the offset; the ASCII column starts after them.
                var i = offset
                for f in fields.dropFirst().prefix(16) {
                    guard f.count == 2, let b = UInt8(f, radix: 16) else { break }
                    d.bytes[i] = b
                    i += 1
                }
                d.length = max(d.length, i)
            }
            out[name] = d
        }
        return out
    }

    static func expectMatches(_ dump: Dump?, _ file: [UInt8], _ name: String, sourceLocation: SourceLocation = #_sourceLocation) {
        guard let dump else {
            Issue.record("the document has no hex dump of \(name)", sourceLocation: sourceLocation)
            return
        }
        #expect(dump.length == file.count, "\(name): the dump ends at \(dump.length), the file has \(file.count) bytes", sourceLocation: sourceLocation)
        let wrong = dump.bytes.keys.sorted().filter { $0 >= file.count || file[$0] != dump.bytes[$0] }
        #expect(wrong.isEmpty, "\(name): the document's hex dump differs from the fixture at offsets \(wrong.prefix(8))", sourceLocation: sourceLocation)
    }

    /// CRC32C with `zeroed` bytes taken as zero, over `range`.
    static func crc(_ bytes: [UInt8], _ range: Range<Int>, zeroed: Range<Int>) -> UInt32 {
        var b = Array(bytes[range])
        for i in zeroed where range.contains(i) { b[i - range.lowerBound] = 0 }
        return CRC32C.checksum(b)
    }

    @Test("container.md: the hex dump is container-header.bin, its CRC is 0xB0482A50, it decodes as quoted")
    func containerHeader() throws {
        let dump = Self.dumps(try Self.doc("container.md"))["container-header.bin"]
        Self.expectMatches(dump, try Self.fixture("LogFormatTests/Fixtures/container-header.bin"), "container-header.bin")
        let bytes = try #require(dump?.complete)
        #expect(Self.crc(bytes, 0..<64, zeroed: 12..<16) == 0xB048_2A50)
        let h = try decodeContainer(bytes)
        #expect(h.logID.description == "0123456789abcdeffedcba9876543210" && h.physicalID == 2 && h.containerSize == 1_048_576)
    }

    @Test("base-file.md: the hex dump is base-slot.bin, its CRC over 0..<236 is 0x346B41C5, it decodes as quoted")
    func baseSlot() throws {
        let dump = Self.dumps(try Self.doc("base-file.md"))["base-slot.bin"]
        Self.expectMatches(dump, try Self.fixture("LogFormatTests/Fixtures/base-slot.bin"), "base-slot.bin")
        let bytes = try #require(dump?.complete)
        #expect(Self.crc(bytes, 0..<(128 + 108), zeroed: 12..<16) == 0x346B_41C5)
        let r = try decodeBase(bytes)
        #expect(r.generation == 5 && r.epoch == 3 && r.blockSize == 65_536 && r.maxRecordSize == 1_044_392 && r.codec == .lz4)
        #expect(r.baseLSN.description == "4:8192:0" && r.durableWatermark.description == "4:1047040:2")
        #expect(r.scanStart.description == "5:4096:0" && r.scanStartPreviousCRC == 0x1234_ABCD && r.nextPhysicalID == 3)
        #expect(r.containers.map(\.endOffset) == [0xFFC00, 0, 0] && r.containers.map(\.logicalID) == [4, 5, 0])
    }

    @Test("base-file.md: the second hex dump is base-slot-sections.bin, with the quoted CRC; its sections decode as quoted")
    func baseSlotSections() throws {
        let dump = Self.dumps(try Self.doc("base-file.md"))["base-slot-sections.bin"]
        Self.expectMatches(dump, try Self.fixture("LogFormatTests/Fixtures/base-slot-sections.bin"), "base-slot-sections.bin")
        let bytes = try #require(dump?.complete)
        #expect(Self.crc(bytes, 0..<(128 + 340), zeroed: 12..<16) == 0x2CB7_FB15 && le32(bytes, 12) == 0x2CB7_FB15)
        let r = try decodeBase(bytes)
        #expect(r.containers.map(\.logicalID) == [4, 5, 0] && r.nextStreamID == 4)
        #expect(r.streams.map(\.id) == [0, 1, 3] && r.streams.map(\.name) == ["", "orders", "audit"] && r.streams.allSatisfy { $0.flags == 0 })
        let orders = r.streams[1]
        #expect(orders.base.description == "4:8192:0" && orders.last.description == "4:1047040:2")
        #expect(orders.archiveTail == .null && orders.restart.description == "4:1047040:1")
        #expect(r.streams[2].archiveTail.description == "4:8192:0" && r.streams[2].restart == .null)
        let p = r.policy
        #expect(p.minContainers == 3 && p.maxContainers == 16 && p.growthIncrement == 2 && p.autoGrow && p.autoShrinkPercent == 50)
        #expect(p.maxSizeBytes == 67_108_864 && p.containerPrefix == "ctr-")
        #expect(r.containerNames == [2: "ctr-000002"])
    }

    /// block.md's three dumps; block-none.bin's leaves rows of slot 2's data out, which record.md's
    /// payload dump and the quoted data ("txlog " × 16) fill in.
    @Test("block.md: the three hex dumps are the block fixtures, with the quoted CRCs; each decodes to the example's records")
    func blocks() throws {
        let dumps = Self.dumps(try Self.doc("block.md"))
        for (name, quoted) in [("block-none.bin", UInt32(0x01B7_ADF2)), ("block-lz4.bin", 0x9F6C_2BBD), ("block-zlib6.bin", 0x92D3_3EAC)] {
            let file = try Self.fixture("LogFormatTests/Fixtures/\(name)")
            Self.expectMatches(dumps[name], file, name)
            guard var d = dumps[name] else { continue }
            if name == "block-none.bin" {
                // Slot 2's data is at payload offset 88 (file offset 152): "txlog " × 16.
                for (i, b) in Array(String(repeating: "txlog ", count: 16).utf8).enumerated() where d.bytes[152 + i] == nil {
                    d.bytes[152 + i] = b
                }
            }
            let bytes = try #require(d.complete, "\(name): the document does not give every byte")
            let stored = Int(le32(bytes, 16))
            #expect(Self.crc(bytes, 0..<(64 + stored), zeroed: 4..<8) == quoted, "\(name)")
            #expect(le32(bytes, 4) == quoted, "\(name)")
            let block = try decodeBlock(bytes).get()
            #expect(block.header.recordCount == 3 && block.header.rawLength == 184 && block.header.streamMask == 0xB, "\(name)")
            #expect(block.data(at: 0) == Array("hello, txlog".utf8) && block.data(at: 1).isEmpty, "\(name)")
            #expect(block.slots.map(\.dataOffset) == [24, 64, 88], "\(name)")
        }
    }

    /// record.md's payload dump (offsets within the payload) is bytes 64..<248 of block-none.bin.
    @Test("record.md: the payload dump is bytes 64..<248 of block-none.bin")
    func recordPayload() throws {
        let file = try Self.fixture("LogFormatTests/Fixtures/block-none.bin")
        var checked = 0
        for line in try Self.doc("record.md").split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard let first = fields.first, first.count == 5, first.hasSuffix(":"), let offset = Int(first.prefix(4), radix: 16) else { continue }
            for (i, f) in fields.dropFirst().prefix(8).enumerated() {
                guard f.count == 2, let b = UInt8(f, radix: 16) else { break }
                #expect(file[64 + offset + i] == b, "record.md payload offset \(offset + i)")
                checked += 1
            }
        }
        #expect(checked == 13 * 8, "record.md's payload dump was not found")
    }

    @Test("tm-records.md, kv-records.md, kv-snapshot.md: every hex dump is its fixture")
    func recordDumps() throws {
        let cases: [(doc: String, fixture: String)] = [
            ("tm-records.md", "TransactionManagerTests/Fixtures/tm-outcome-record.bin"),
            ("tm-records.md", "TransactionManagerTests/Fixtures/tm-checkpoint.bin"),
            ("tm-records.md", "TransactionManagerTests/Fixtures/tm-checkpoint-index.bin"),
            ("kv-records.md", "TransactionalKVTests/Fixtures/prepare-record.bin"),
            ("kv-records.md", "TransactionalKVTests/Fixtures/commit-record.bin"),
            ("kv-records.md", "TransactionalKVTests/Fixtures/checkpoint-record.bin"),
            ("kv-snapshot.md", "TransactionalKVTests/Fixtures/snapshot.snap"),
        ]
        for c in cases {
            let name = String(c.fixture.split(separator: "/").last!)
            let dump = Self.dumps(try Self.doc(c.doc))[name]
            Self.expectMatches(dump, try Self.fixture(c.fixture), "\(c.doc): \(name)")
            #expect(dump?.complete != nil, "\(c.doc): \(name): the dump leaves bytes out")
        }
        // kv-snapshot.md: the trailer is the CRC32C of every byte before it.
        let snap = try #require(Self.dumps(try Self.doc("kv-snapshot.md"))["snapshot.snap"]?.complete)
        #expect(CRC32C.checksum(Array(snap[0..<(snap.count - 4)])) == 0x2843_3AC9 && le32(snap, snap.count - 4) == 0x2843_3AC9)
    }

    /// lsn.md's worked example and text-form examples.
    @Test("lsn.md: the fixture lines parse as the document says; the examples of invalid text give nil")
    func lsnText() throws {
        let text = try Self.doc("lsn.md")
        let rows = text.split(separator: "\n").filter { $0.hasPrefix("0x") && $0.split(separator: " ").count == 2 }
        #expect(rows.count == 8)
        for row in rows {
            let parts = row.split(separator: " ").map(String.init)
            let raw = try #require(LSN(parts[0]))
            #expect(raw.description == parts[1] && LSN(parts[1]) == raw, "\(row)")
        }
        #expect(withUnsafeBytes(of: LSN("3:8192:17")!.rawValue.littleEndian, Array.init) == [0x11, 0x20, 0, 0, 3, 0, 0, 0])
        for bad in ["", "NULL", "3:8192", "3:8192:17:0", "3::17", "3:8193:17", "3:8192:512", "4294967296:0:0", "3:4294967296:0", "-1:0:0",
                    "+3:8192:17", "-0:0:1", "0x", "0x+1", "0xZZ", "0x1FFFFFFFFFFFFFFFF", "3:8192:17\n"] {
            #expect(LSN(bad) == nil, "\(bad.debugDescription)")
        }
    }
}
