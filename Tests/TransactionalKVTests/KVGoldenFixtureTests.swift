// Golden fixtures of the store's formats: Fixtures/*.bin and *.snap keep docs/format/kv-records.md and
// docs/format/kv-snapshot.md in step with the encoders.
//
// Each test rebuilds its fixture from the fixed inputs in `KVSample` and compares it byte for byte with
// the checked-in file, then decodes the file and checks every field quoted in the worked examples. To
// regenerate after an intended format change (writes into the source tree, found through #filePath):
//
//     TXLOG_UPDATE_FIXTURES=1 swift test --scratch-path .build-format --filter KVGoldenFixtureTests

import Foundation
import LogStore
import Testing
import TxLogTestSupport
import TransactionManager
@testable import TransactionalKV

/// The fixed inputs of the fixtures and of the worked examples.
enum KVSample {
    static let transaction = GUID("01234567-89ab-cdef-0011-223344556677")!
    static let store = GUID("fedcba98-7654-3210-8899-aabbccddeeff")!
    static let writes = [KVWrite(key: Array("alice".utf8), value: Array("100".utf8)), KVWrite(key: Array("bob".utf8), value: nil)]
    static let covered = LSN(rawValue: 0x0000_0003_0000_2A02)  // 3:10752:2
    static let snapshotName = KVSnapshotFile.name(store: store, generation: 7)
    static let prepare = KVRecord.prepare(transaction, writes)
    static let commit = KVRecord.commit(transaction)
    static let checkpoint = KVRecord.checkpoint(KVCheckpoint(
        store: store, snapshotFile: snapshotName, coveredThrough: covered, pending: [(id: transaction, writes: writes)]))
    static let snapshotEntries: [(Key, [UInt8])] = [(Key(Array("apple".utf8)), Array("red".utf8)), (Key(Array("banana".utf8)), [])]
}

@Suite struct KVGoldenFixtureTests {
    static let fixtures = GoldenFixtures(bundle: .module)
    static var updating: Bool { GoldenFixtures.updating }
    static var sourceDirectory: URL { fixtures.sourceDirectory }
    static func load(_ name: String) -> [UInt8]? { fixtures.load(name) }

    /// In update mode writes `expected`; otherwise returns the checked-in bytes and compares them.
    static func fixture(_ name: String, expected: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) throws -> [UInt8] {
        let file = try fixtures.fixture(name, expected: expected, sourceLocation: sourceLocation)
        #expect(file == expected, "Fixtures/\(name) no longer matches the encoder; regenerate and update docs/format/ if intended",
                sourceLocation: sourceLocation)
        return file
    }

    static func u32(_ a: [UInt8], _ at: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(a[at + $1]) << (8 * $1) } }
    static func u64(_ a: [UInt8], _ at: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(a[at + $1]) << (8 * $1) } }
    static func text(_ a: [UInt8], _ r: Range<Int>) -> String { String(decoding: a[r], as: UTF8.self) }

    /// The GUID 01234567-89ab-cdef-0011-223344556677 as stored: high u64 then low u64, each little-endian.
    static let transactionBytes: [UInt8] = [0xEF, 0xCD, 0xAB, 0x89, 0x67, 0x45, 0x23, 0x01, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0x00]
    static let storeBytes: [UInt8] = [0x10, 0x32, 0x54, 0x76, 0x98, 0xBA, 0xDC, 0xFE, 0xFF, 0xEE, 0xDD, 0xCC, 0xBB, 0xAA, 0x99, 0x88]

    /// The write set of the worked example at `at`: 2 writes, put alice=100, delete bob (25 bytes).
    static func expectSampleWrites(_ f: [UInt8], at o: Int, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(u32(f, o) == 2, sourceLocation: sourceLocation)
        #expect(u32(f, o + 4) == 5 && text(f, o + 8..<o + 13) == "alice" && f[o + 13] == 1, sourceLocation: sourceLocation)
        #expect(u32(f, o + 14) == 3 && text(f, o + 18..<o + 21) == "100", sourceLocation: sourceLocation)
        #expect(u32(f, o + 21) == 3 && text(f, o + 25..<o + 28) == "bob" && f[o + 28] == 0, sourceLocation: sourceLocation)
    }

    @Test func prepareRecord() throws {
        let f = try Self.fixture("prepare-record.bin", expected: KVSample.prepare.encode())
        #expect(f.count == 53)
        #expect(Array(f[0..<8]) == [0x4B, 0x56, 0x52, 0x31, 0x01, 0x01, 0x00, 0x00])  // "KVR1", kind 1, version 1, reserved
        #expect(Array(f[8..<24]) == Self.transactionBytes)
        Self.expectSampleWrites(f, at: 24)
        #expect(try KVRecord.decode(f) == KVSample.prepare)
        // commitOnePhase has the same layout with kind 4.
        var one = f
        one[4] = 4
        #expect(try KVRecord.decode(one) == .commitOnePhase(KVSample.transaction, KVSample.writes))
    }

    @Test func commitRecord() throws {
        let f = try Self.fixture("commit-record.bin", expected: KVSample.commit.encode())
        #expect(f.count == 24)
        #expect(Array(f[0..<8]) == [0x4B, 0x56, 0x52, 0x31, 0x02, 0x01, 0x00, 0x00])
        #expect(Array(f[8..<24]) == Self.transactionBytes)
        #expect(try KVRecord.decode(f) == KVSample.commit)
        var abort = f
        abort[4] = 3
        #expect(try KVRecord.decode(abort) == .abort(KVSample.transaction))
    }

    @Test func checkpointRecord() throws {
        let f = try Self.fixture("checkpoint-record.bin", expected: KVSample.checkpoint.encode())
        let name = KVSample.snapshotName
        #expect(name == "kv-fedcba98-7654-3210-8899-aabbccddeeff-7.snap" && name.utf8.count == 46)
        #expect(f.count == 131)
        #expect(Array(f[0..<8]) == [0x4B, 0x56, 0x52, 0x31, 0x10, 0x01, 0x00, 0x00])  // kind 16
        #expect(Array(f[8..<24]) == Self.storeBytes)
        #expect(Self.u32(f, 24) == 46 && Self.text(f, 28..<74) == name)
        #expect(Self.u64(f, 74) == 0x0000_0003_0000_2A02)
        #expect(Array(f[74..<82]) == [0x02, 0x2A, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00])
        #expect(Self.u32(f, 82) == 1)
        #expect(Array(f[86..<102]) == Self.transactionBytes)
        Self.expectSampleWrites(f, at: 102)
        #expect(try KVRecord.decode(f) == KVSample.checkpoint)
    }

    @Test func snapshotFile() throws {
        let dir = try makeTempDirectory("snapfixture")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try KVSnapshotFile.write(io: PosixFileIO(), directory: dir, name: "fixture.snap", store: KVSample.store,
                                 coveredThrough: KVSample.covered, entries: KVSample.snapshotEntries)
        let encoded = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/fixture.snap")))
        let f = try Self.fixture("snapshot.snap", expected: encoded)
        #expect(f.count == 74)
        #expect(Array(f[0..<8]) == [0x4B, 0x56, 0x53, 0x31, 0x01, 0x00, 0x00, 0x00])  // "KVS1", version 1, reserved
        #expect(Array(f[8..<24]) == Self.storeBytes)
        #expect(Self.u64(f, 24) == KVSample.covered.rawValue)
        #expect(Self.u64(f, 32) == 2)
        #expect(Self.u32(f, 40) == 5 && Self.text(f, 44..<49) == "apple" && Self.u32(f, 49) == 3 && Self.text(f, 53..<56) == "red")
        #expect(Self.u32(f, 56) == 6 && Self.text(f, 60..<66) == "banana" && Self.u32(f, 66) == 0)
        #expect(Self.u32(f, 70) == CRC32C.checksum(Array(f[0..<70])))
        #expect(Self.u32(f, 70) == 0x2843_3AC9, "the CRC quoted in docs/format/kv-snapshot.md")
        // Decode the fixture itself.
        try Data(f).write(to: URL(fileURLWithPath: dir + "/read.snap"))
        let back = try KVSnapshotFile.read(io: PosixFileIO(), path: dir + "/read.snap", store: KVSample.store)
        #expect(back.coveredThrough == KVSample.covered)
        #expect(back.entries.map(\.0) == KVSample.snapshotEntries.map(\.0) && back.entries.map(\.1) == KVSample.snapshotEntries.map(\.1))
    }
}
