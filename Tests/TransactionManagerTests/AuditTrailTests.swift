// The audit trail of forced outcomes: `TransactionManager.forcedOutcomes` keeps the most recent
// `auditRetention` across checkpoints that recycle the `forced` records, without duplicates, and the
// checkpoint's audit section decodes totally (docs/format/tm-records.md, "checkpoint").

import Foundation
import LogStore
import Testing
@testable import TransactionManager

@Suite struct AuditTrailTests {
    /// The in-memory trail: LSN order even when concurrent `resolve` calls report out of order,
    /// no duplicates, the newest `limit` kept.
    @Test func theTrailKeepsLSNOrderWithoutDuplicatesAndTheNewestLimit() {
        func entry(_ n: UInt64) -> ForcedOutcome {
            ForcedOutcome(lsn: LSN(rawValue: n), transaction: .random(), action: .commit, unixNanos: n, actor: "t", reason: "")
        }
        var trail = ForcedOutcomeTrail(limit: 3)
        for n: UInt64 in [10, 30, 20, 30, 10, 5] { trail.append(entry(n)) }
        #expect(trail.retained.map(\.lsn.rawValue) == [10, 20, 30], "5 is older than the newest 3")
        var wide = ForcedOutcomeTrail(limit: 10)
        for n: UInt64 in [10, 30, 20, 30, 10, 5, 40] { wide.append(entry(n)) }
        #expect(wide.retained.map(\.lsn.rawValue) == [5, 10, 20, 30, 40])
        var none = ForcedOutcomeTrail(limit: 0)
        none.append(entry(1))
        #expect(none.retained.isEmpty)
    }

    /// A transaction of `tm` prepared under a superior that never decides, with one durable enlistment of `rm`.
    static func prepared(_ tm: TransactionManager, _ rm: ScriptedRM, _ description: String) async throws -> GUID {
        let tx = try tm.createTransaction(description: description)
        _ = try rm.enlist(tx)
        #expect(try await tx.enlistSuperior().prepare() == .prepared)
        return tx.id
    }

    /// The LSNs of the `forced` records still readable in the TM stream.
    static func forcedLSNs(_ tm: TransactionManager) throws -> [LSN] {
        try dataRecords(try #require(tm.stream)).filter {
            if case .forced = try TMRecord.decode($0.data).record { return true }
            return false
        }.map(\.lsn)
    }

    @Test func aForcedOutcomeSurvivesTheCheckpointThatRecyclesItsRecord() async throws {
        let dir = TMScratch("audit-survives")
        defer { dir.remove() }
        let (log, tm) = try dir.createOnline()
        let a = try ScriptedRM.online(tm, "a")
        let tx = try await Self.prepared(tm, a, "xa branch 1")
        let before = ResolveTests.nowNanos()
        try await tm.resolve(tx, action: .commit, actor: "operator", reason: "superior lost")
        let after = ResolveTests.nowNanos()
        #expect(tm.transactionSnapshots().isEmpty)  // a acknowledged: finished, end written
        let forcedLSN = try #require(try Self.forcedLSNs(tm).first)
        let live = try #require(tm.forcedOutcomes.first)
        #expect(tm.forcedOutcomes.count == 1)
        #expect(live.lsn == forcedLSN)

        _ = try await Self.prepared(tm, a, "later")  // so the checkpoint covers a record after the forced one
        try tm.checkpoint()
        let stream = try #require(tm.stream)
        #expect(stream.baseLSN > forcedLSN)
        #expect(try Self.forcedLSNs(tm).isEmpty, "the forced record is below the base")
        #expect(try tmCheckpoint(tm).forcedOutcomes == [live])
        try log.close()

        let (log2, tm2) = try dir.reopenOnline()
        defer { try? log2.close() }
        #expect(tm2.lastRecovery.recordsScanned == 0)
        let f = try #require(tm2.forcedOutcomes.first)
        #expect(tm2.forcedOutcomes.count == 1)
        #expect(f.lsn == forcedLSN)
        #expect(f.transaction == tx)
        #expect(f.action == .commit)
        #expect(f.actor == "operator")
        #expect(f.reason == "superior lost")
        #expect(f.unixNanos >= before - 1_000_000_000 && f.unixNanos <= after + 1_000_000_000)
        #expect(f == live)
    }

    @Test func retentionKeepsTheNewestAcrossCheckpoints() async throws {
        let dir = TMScratch("audit-retention")
        defer { dir.remove() }
        var options = TransactionManagerOptions()
        options.auditRetention = 3
        let (log, tm) = try dir.createOnline(options: options)
        let a = try ScriptedRM.online(tm, "a")
        var forced: [GUID] = []
        for i in 0..<5 {
            let tx = try await Self.prepared(tm, a, "t\(i)")
            try await tm.resolve(tx, action: i % 2 == 0 ? .commit : .rollback, actor: "op\(i)", reason: "r\(i)")
            forced.append(tx)
            #expect(tm.forcedOutcomes.map(\.transaction) == Array(forced.suffix(3)))
            if i % 2 == 1 { try tm.checkpoint() }
        }
        #expect(try tmCheckpoint(tm).forcedOutcomes.map(\.transaction) == Array(forced[1..<4]))
        try log.close()

        let log2 = try LogStore.open(at: dir.path)
        defer { try? log2.close() }
        let tm2 = try TransactionManager.open(log: log2, options: options)
        try tm2.recover()
        #expect(tm2.forcedOutcomes.map(\.transaction) == Array(forced[2..<5]))
        #expect(tm2.forcedOutcomes.map(\.actor) == ["op2", "op3", "op4"])
        #expect(tm2.forcedOutcomes.map(\.action) == [.commit, .rollback, .commit])
        #expect(tm2.forcedOutcomes.map(\.lsn) == tm2.forcedOutcomes.map(\.lsn).sorted())
        // Checkpointed again with the same retention, then read with a larger one: still those three.
        try tm2.close()
        try log2.close()
        let (log3, tm3) = try dir.reopenOnline()
        defer { try? log3.close() }
        #expect(tm3.forcedOutcomes.map(\.transaction) == Array(forced[2..<5]))
    }

    @Test func zeroRetentionKeepsNone() async throws {
        let dir = TMScratch("audit-zero")
        defer { dir.remove() }
        var options = TransactionManagerOptions()
        options.auditRetention = 0
        let (log, tm) = try dir.createOnline(options: options)
        defer { try? log.close() }
        let a = try ScriptedRM.online(tm, "a")
        try await tm.resolve(try await Self.prepared(tm, a, "x"), action: .rollback)
        #expect(tm.forcedOutcomes.isEmpty)
        try tm.checkpoint()
        #expect(try tmCheckpoint(tm).forcedOutcomes.isEmpty)
    }

    @Test func recordsOnBothSidesOfTheCheckpointAppearOnce() async throws {
        let dir = TMScratch("audit-dedup")
        defer { dir.remove() }
        let (log, tm) = try dir.createOnline()
        let a = try ScriptedRM.online(tm, "a")
        let first = try await Self.prepared(tm, a, "before")
        try await tm.resolve(first, action: .commit, actor: "a1")
        // A checkpoint after the first forced record carries it; the next two come after it.
        let stream = try #require(tm.stream)
        try tm.checkpoint()
        let covered = try tmCheckpoint(tm).coveredThrough
        #expect(try tmCheckpoint(tm).forcedOutcomes.map(\.transaction) == [first])
        let second = try await Self.prepared(tm, a, "after 1")
        try await tm.resolve(second, action: .rollback, actor: "a2")
        let third = try await Self.prepared(tm, a, "after 2")
        try await tm.resolve(third, action: .forget, actor: "a3")
        let lsns = try Self.forcedLSNs(tm)
        #expect(lsns.count == 2 && lsns.allSatisfy { $0 > covered }, "\(lsns) after \(covered) (base \(stream.baseLSN))")
        try log.close()

        let (log2, tm2) = try dir.reopenOnline()
        defer { try? log2.close() }
        #expect(tm2.forcedOutcomes.map(\.transaction) == [first, second, third])
        #expect(tm2.forcedOutcomes.map(\.action) == [.commit, .rollback, .forget])
        #expect(tm2.forcedOutcomes.map(\.actor) == ["a1", "a2", "a3"])
        #expect(Array(tm2.forcedOutcomes.map(\.lsn).dropFirst()) == lsns)
    }

    @Test func aTMWithoutAnAuditCheckpointRebuildsFromTheScan() async throws {
        let dir = TMScratch("audit-scan")
        defer { dir.remove() }
        let (log, tm) = try dir.createOnline()
        let a = try ScriptedRM.online(tm, "a")
        let tx = try await Self.prepared(tm, a, "x")
        try await tm.resolve(tx, action: .rollback, actor: "scan", reason: "r")
        let lsn = try #require(try Self.forcedLSNs(tm).first)
        try log.close()  // no checkpoint since create: the restart area has no audit entries
        let (log2, tm2) = try dir.reopenOnline()
        defer { try? log2.close() }
        #expect(tm2.lastRecovery.checkpointLSN != .null)
        #expect(tm2.forcedOutcomes == [ForcedOutcome(
            lsn: lsn, transaction: tx, action: .rollback, unixNanos: tm.forcedOutcomes[0].unixNanos, actor: "scan", reason: "r")])
    }

    // MARK: Codec of the audit section

    /// A checkpoint with no RMs or transactions and one audit entry at `lsn`, covering through `covered`.
    static func oneEntry(lsn: UInt64, covered: UInt64) -> [UInt8] {
        var f = TMSample.forcedOutcome
        f.lsn = LSN(rawValue: lsn)
        return TMRecord.checkpoint(TMCheckpoint(
            tm: TMSample.tm, coveredThrough: LSN(rawValue: covered), clock: 1, rms: [], transactions: [], forcedOutcomes: [f])).encode(clock: 1)
    }

    @Test func auditSectionRoundTripsAtItsOffsets() throws {
        let b = Self.oneEntry(lsn: 0x0000_0003_0000_1000, covered: 0x0000_0003_0000_1000)
        // Header 16, TM 16, covered 8, clock 8, 0 RMs, 0 transactions; audit count at 56.
        #expect(b.count == 60 + 8 + 16 + 1 + 8 + 4 + 3 + 4 + 4)
        #expect(TMGoldenFixtureTests.u32(b, 56) == 1)
        #expect(TMGoldenFixtureTests.u64(b, 60) == 0x0000_0003_0000_1000)
        #expect(TMGoldenFixtureTests.u64(b, 68) == TMSample.forcedOutcome.transaction.high)
        #expect(b[84] == 1)  // commit
        #expect(TMGoldenFixtureTests.u64(b, 85) == 1_790_000_000_123_456_789)
        #expect(Array(b[93..<100]) == [3, 0, 0, 0] + Array("ops".utf8))
        guard case .checkpoint(let cp) = try TMRecord.decode(b).record else {
            Issue.record("not a checkpoint")
            return
        }
        #expect(cp.forcedOutcomes == [TMSample.forcedOutcome])
    }

    @Test func badAuditSectionsAreCorruptNeverATrap() {
        let good = Self.oneEntry(lsn: 0x0000_0003_0000_1000, covered: 0x0000_0003_0000_1000)
        #expect(TMRecordCodecTests.decodeError(good) == nil)
        // Huge counts.
        for count: UInt32 in [2, 0x7FFF_FFFF, 0xFFFF_FFFF] {
            var c = good
            TMRecordCodecTests.patchU32(&c, at: 56, count)
            #expect(TMRecordCodecTests.decodeError(c)?.code == .corrupt, "audit count \(count)")
        }
        // An LSN above covered-through, null, or invalid.
        #expect(TMRecordCodecTests.decodeError(Self.oneEntry(lsn: 0x0000_0003_0000_1001, covered: 0x0000_0003_0000_1000))?.code == .corrupt)
        #expect(TMRecordCodecTests.decodeError(Self.oneEntry(lsn: 0, covered: 0x0000_0003_0000_1000))?.code == .corrupt)
        #expect(TMRecordCodecTests.decodeError(Self.oneEntry(lsn: .max, covered: .max))?.code == .corrupt)
        // Entries out of order, and duplicates.
        for second: UInt64 in [0x0000_0003_0000_0FFF, 0x0000_0003_0000_1000] {
            var f2 = TMSample.forcedOutcome
            f2.lsn = LSN(rawValue: second)
            let b = TMRecord.checkpoint(TMCheckpoint(
                tm: TMSample.tm, coveredThrough: LSN(rawValue: 0x0000_0004_0000_0000), clock: 1, rms: [], transactions: [],
                forcedOutcomes: [TMSample.forcedOutcome, f2])).encode(clock: 1)
            #expect(TMRecordCodecTests.decodeError(b)?.code == .corrupt, "second entry at \(second)")
        }
        // Bad action, and actor longer than its limit.
        var c = good
        c[84] = 4
        #expect(TMRecordCodecTests.decodeError(c)?.code == .corrupt)
        var long = TMSample.forcedOutcome
        long.actor = String(repeating: "a", count: TMLimits.maxShortText + 1)
        #expect(TMRecordCodecTests.decodeError(TMRecord.checkpoint(TMCheckpoint(
            tm: TMSample.tm, coveredThrough: long.lsn, clock: 1, rms: [], transactions: [], forcedOutcomes: [long])).encode(clock: 1))?.code
            == .corrupt)
    }

    @Test func moreAuditEntriesThanTheLimitAreCorrupt() {
        // Enough bytes for every entry, so only TMLimits.maxAuditEntries refuses the count.
        let header = TMRecord.checkpoint(TMCheckpoint(tm: TMSample.tm, coveredThrough: .invalid, clock: 1, rms: [], transactions: []))
            .encode(clock: 1).dropLast(4)
        func withEntries(_ n: Int) -> [UInt8] {
            var w = ByteWriter()
            w.u32(UInt32(n))
            for i in 0..<n {
                w.u64(UInt64(i + 1))
                w.forced(tx: TMSample.tx, action: .commit, unixNanos: 0, actor: "", reason: "")
            }
            return Array(header) + w.bytes
        }
        let e = TMRecordCodecTests.decodeError(withEntries(TMLimits.maxAuditEntries + 1))
        #expect(e?.code == .corrupt)
        #expect(e?.message.contains("limit") == true, "\(String(describing: e))")
        #expect(TMRecordCodecTests.decodeError(withEntries(TMLimits.maxAuditEntries)) == nil)
    }
}
