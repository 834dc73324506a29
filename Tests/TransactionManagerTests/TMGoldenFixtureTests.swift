// Golden fixtures of the TM stream's records: Fixtures/tm-outcome-record.bin and tm-checkpoint.bin are
// the worked examples of docs/format/tm-records.md. Each test re-encodes the fixed inputs in TMSample,
// compares with the checked-in file byte for byte, then decodes the file and checks every field against
// the literal values quoted in the spec. After an intended format change:
//
//     TXLOG_UPDATE_FIXTURES=1 swift test --scratch-path .build-tm --filter TMGoldenFixtureTests
//
// (writes into the source tree), then rebuild, rerun without the variable, and update the spec.

import Foundation
import LogStore
import Testing
import TxLogTestSupport
@testable import TransactionManager

@Suite struct TMGoldenFixtureTests {
    static let fixtures = GoldenFixtures(bundle: .module)
    static var updating: Bool { GoldenFixtures.updating }
    static var sourceDirectory: URL { fixtures.sourceDirectory }
    static func load(_ name: String) -> [UInt8]? { fixtures.load(name) }

    static func fixture(_ name: String, expected: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) throws -> [UInt8] {
        try fixtures.fixture(name, expected: expected, sourceLocation: sourceLocation)
    }

    static func u32(_ b: [UInt8], _ at: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(b[at + $1]) << (8 * UInt32($1)) } }
    static func u64(_ b: [UInt8], _ at: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(b[at + $1]) << (8 * UInt64($1)) } }

    @Test func outcomeRecord() throws {
        let expected = TMSample.outcomeRecord.encode(clock: TMSample.clock)
        let file = try Self.fixture("tm-outcome-record.bin", expected: expected)
        #expect(file == expected, "tm-outcome-record.bin no longer matches the encoder; regenerate and update docs/format/tm-records.md")
        #expect(file.count == 136)

        // Header (spec: Header).
        #expect(Array(file[0..<4]) == [0x4B, 0x54, 0x4D, 0x31])  // "KTM1"
        #expect(Self.u32(file, 0) == 0x314D_544B)
        #expect(file[4] == 3)  // outcome
        #expect(file[5] == 1)  // version
        #expect(file[6] == 0 && file[7] == 0)
        #expect(Self.u64(file, 8) == 7)
        // Body, at the offsets of the worked example.
        #expect(Array(file[16..<24]) == [0x5F, 0x4E, 0x4D, 0x3C, 0x2B, 0x1A, 0x0C, 0x5F])  // GUID high half, little-endian
        #expect(Self.u64(file, 16) == 0x5F0C_1A2B_3C4D_4E5F)
        #expect(Self.u64(file, 24) == 0x8A6B_7C8D_9E0F_1A2B)
        #expect(file[32] == 1)  // committed
        #expect(file[33] == 0)  // no superior
        #expect(Self.u32(file, 34) == 8)
        #expect(Array(file[38..<46]) == Array("transfer".utf8))
        #expect(Self.u32(file, 46) == 2)
        #expect(Self.u32(file, 82) == 0x0F)
        #expect(Self.u32(file, 86) == 6)
        #expect(Array(file[90..<96]) == Array("row 17".utf8))
        #expect(Self.u32(file, 128) == 0x20F)
        #expect(Self.u32(file, 132) == 0)

        let (record, clock) = try TMRecord.decode(file)
        #expect(clock == 7)
        guard case .outcome(let t) = record else {
            Issue.record("not an outcome record: \(record)")
            return
        }
        #expect(t.id.description == "5f0c1a2b-3c4d-4e5f-8a6b-7c8d9e0f1a2b")
        #expect(t.outcome == .committed)
        #expect(t.superior == false)
        #expect(t.description == "transfer")
        #expect(t.enlistments.count == 2)
        #expect(t.enlistments.map(\.id.description) == ["e1e1e1e1-0000-4000-8000-000000000001", "e2e2e2e2-0000-4000-8000-000000000002"])
        #expect(t.enlistments.map(\.rm.description) == ["a1a1a1a1-0000-4000-8000-00000000000a", "b2b2b2b2-0000-4000-8000-00000000000b"])
        #expect(t.enlistments.map(\.mask) == [0x0F, 0x20F])
        #expect(NotificationMask(rawValue: t.enlistments[1].mask).description == "pre-prepare|prepare|commit|rollback|single-phase")
        #expect(t.enlistments.map(\.recoveryInformation) == [Array("row 17".utf8), []])
        #expect(t.enlistments.map(\.acknowledged) == [false, false])  // not carried by outcome records
    }

    @Test func checkpoint() throws {
        let expected = TMRecord.checkpoint(TMSample.checkpoint).encode(clock: TMSample.checkpointClock)
        let file = try Self.fixture("tm-checkpoint.bin", expected: expected)
        #expect(file == expected, "tm-checkpoint.bin no longer matches the encoder; regenerate and update docs/format/tm-records.md")
        #expect(file.count == 247)

        #expect(Self.u32(file, 0) == 0x314D_544B)
        #expect(file[4] == 16)  // checkpoint
        #expect(file[5] == 1)
        #expect(Self.u64(file, 8) == 9)
        #expect(Self.u64(file, 32) == 0x0000_0003_0000_2001)  // covered through 3:8192:1
        #expect(Self.u64(file, 40) == 9)
        #expect(Self.u32(file, 48) == 1)  // one RM
        #expect(Self.u32(file, 68) == 39)  // stream name length
        #expect(Self.u32(file, 111) == 8)  // description length
        #expect(Self.u32(file, 123) == 1)  // one transaction
        #expect(file[143] == 0)  // undetermined
        #expect(file[144] == 1)  // superior
        #expect(Self.u32(file, 149) == 1)  // one enlistment
        #expect(file[189] == 1)  // acknowledged
        #expect(Self.u32(file, 190) == 1)
        #expect(file[194] == 0xAB)
        // Audit section: one forced outcome.
        #expect(Self.u32(file, 195) == 1)
        #expect(Self.u64(file, 199) == 0x0000_0003_0000_1000)  // its record's LSN, 3:4096:0
        #expect(Self.u64(file, 207) == 0xC3C3_C3C3_0000_4000)
        #expect(Self.u64(file, 215) == 0x8000_0000_0000_000C)
        #expect(file[223] == 1)  // commit
        #expect(Self.u64(file, 224) == 1_790_000_000_123_456_789)
        #expect(Self.u32(file, 232) == 3)
        #expect(Array(file[236..<239]) == Array("ops".utf8))
        #expect(Self.u32(file, 239) == 4)
        #expect(Array(file[243..<247]) == Array("lost".utf8))

        let (record, clock) = try TMRecord.decode(file)
        #expect(clock == 9)
        guard case .checkpoint(let cp) = record else {
            Issue.record("not a checkpoint: \(record)")
            return
        }
        #expect(cp.tm.description == "0e0e0e0e-1111-4222-8333-444455556666")
        #expect(cp.coveredThrough.description == "3:8192:1")
        #expect(cp.clock == 9)
        #expect(cp.rms.map(\.id.description) == ["a1a1a1a1-0000-4000-8000-00000000000a"])
        #expect(cp.rms.map(\.stream) == ["rm-a1a1a1a1-0000-4000-8000-00000000000a"])
        #expect(cp.rms.map(\.description) == ["accounts"])
        #expect(cp.transactions.count == 1)
        let t = try #require(cp.transactions.first)
        #expect(t.id.description == "5f0c1a2b-3c4d-4e5f-8a6b-7c8d9e0f1a2b")
        #expect(t.outcome == .undetermined)
        #expect(t.superior)
        #expect(t.description == "")
        #expect(t.enlistments.map(\.id.description) == ["e1e1e1e1-0000-4000-8000-000000000001"])
        #expect(t.enlistments.map(\.mask) == [0x0F])
        #expect(t.enlistments.map(\.acknowledged) == [true])
        #expect(t.enlistments.map(\.recoveryInformation) == [[0xAB]])
        #expect(cp.forcedOutcomes.count == 1)
        let f = try #require(cp.forcedOutcomes.first)
        #expect(f.lsn.description == "3:4096:0")
        #expect(f.transaction.description == "c3c3c3c3-0000-4000-8000-00000000000c")
        #expect(f.action == .commit)
        #expect(f.unixNanos == 1_790_000_000_123_456_789)
        #expect(f.actor == "ops")
        #expect(f.reason == "lost")
    }

    /// The third worked example: the index of the checkpoint above written in three parts. Its CRC32C and
    /// length cover the whole encoded checkpoint record, header included (the bytes of tm-checkpoint.bin);
    /// the parts built as the document says reassemble to the checkpoint.
    @Test func checkpointIndex() throws {
        let expected = TMRecord.checkpointIndex(TMSample.checkpointIndex).encode(clock: TMSample.checkpointClock)
        let f = try Self.fixture("tm-checkpoint-index.bin", expected: expected)
        #expect(f == expected)
        #expect(f.count == 72, "48 + 3 × 8")
        #expect(Array(f[0..<8]) == [0x4B, 0x54, 0x4D, 0x31, 18, 1, 0, 0] && Self.u64(f, 8) == 9)
        #expect(Self.u64(f, 16) == TMSample.tm.high && Self.u64(f, 24) == TMSample.tm.low)
        let whole = try #require(Self.load("tm-checkpoint.bin"))
        #expect(Self.u64(f, 32) == 247 && whole.count == 247)
        #expect(Self.u32(f, 40) == CRC32C.checksum(whole) && Self.u32(f, 40) == 0xBF25_A2A8, "the CRC quoted in tm-records.md")
        #expect(Self.u32(f, 44) == 3)
        #expect([48, 56, 64].map { Self.u64(f, $0) } == [0x0000_0003_0000_2002, 0x0000_0003_0000_2003, 0x0000_0003_0000_2004])
        let (record, clock) = try TMRecord.decode(f)
        #expect(record == .checkpointIndex(TMSample.checkpointIndex) && clock == 9)
        // The parts: records of 128, 128 and 75 bytes, whose slices concatenate to tm-checkpoint.bin.
        let parts = TMSample.checkpointParts
        #expect(parts.map(\.count) == [128, 128, 75])
        #expect(parts.flatMap { Array($0[28...]) } == whole && parts.map { Self.u32($0, 24) } == [100, 100, 47])
        let byLSN = Dictionary(uniqueKeysWithValues: zip(TMSample.partLSNs, parts))
        guard case .checkpointIndex(let index) = record else {
            Issue.record("tm-checkpoint-index.bin is not a checkpoint index")
            return
        }
        let cp = try TransactionManager.assembleCheckpoint(index, at: LSN(rawValue: 0x0000_0003_0000_2005)) { lsn in
            try #require(byLSN[lsn])
        }
        #expect(cp == TMSample.checkpoint)
    }

    /// The kinds with no worked example of their own, whose bodies the examples show inside others (a
    /// transaction as in the outcome record, an RM entry and a `forced` body as in the checkpoint, a part as
    /// the index's example describes it): the `FuzzTMRecord` seeds of these kinds, written by an independent
    /// encoder from tm-records.md, are what `encode` writes for the same values, byte for byte.
    @Test func kindsWithoutAnExampleMatchTheIndependentEncoder() throws {
        let prepared = LoggedTransaction(
            id: TMSample.tx, outcome: .undetermined, superior: true, description: "transfer",
            enlistments: [LoggedEnlistment(id: TMSample.enlistmentA, rm: TMSample.rmA, mask: 0xF, recoveryInformation: Array("row 17".utf8))])
        let expected: [(seed: String, record: TMRecord, clock: UInt64)] = [
            ("tm-rm-registered.bin", .rmRegistered(TMSample.rmRegisteredA), 3),
            ("tm-prepared.bin", .prepared(prepared), 5),
            ("tm-end.bin", .end(TMSample.tx), 7),
            ("tm-forced.bin", .forced(tx: TMSample.tx, action: .rollback, unixNanos: 1_790_000_000_123_456_789, actor: "ops", reason: "lost"), 8),
            ("tm-checkpoint-part.bin", .checkpointPart(index: 1, count: 2, bytes: Array(0..<40)), 9),
        ]
        let seeds = Dictionary(FuzzCorpus.seeds("FuzzTMRecord").map { ($0.name, $0.bytes) }, uniquingKeysWith: { a, _ in a })
        for e in expected {
            let seed = try #require(seeds[e.seed], "tools/fuzz/corpus/FuzzTMRecord/\(e.seed)")
            #expect(e.record.encode(clock: e.clock) == seed, "\(e.seed)")
            let decoded = try TMRecord.decode(seed)
            #expect(decoded.record == e.record && decoded.clock == e.clock, "\(e.seed)")
        }
    }

    @Test func fixtureSetIsComplete() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.sourceDirectory.path).sorted()
        #expect(names == ["tm-checkpoint-index.bin", "tm-checkpoint.bin", "tm-outcome-record.bin"])
    }
}
