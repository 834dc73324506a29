// Checkpoints: the TM's tables in a restart area; recovery replays only what came after, transactions
// still owed work survive, and the TM stream's base moves forward.

import Foundation
import LogStore
import Testing
@testable import TransactionManager

@Suite struct CheckpointTests {
    /// Runs one committed two-phase transaction through a and b (two TM records: outcome, end).
    static func commitOne(_ tm: TransactionManager, _ a: ScriptedRM, _ b: ScriptedRM) async throws -> GUID {
        let tx = try tm.createTransaction()
        _ = try a.enlist(tx)
        _ = try b.enlist(tx)
        try await tx.commit()
        return tx.id
    }

    @Test func recoveryReplaysOnlyRecordsAfterTheCheckpoint() async throws {
        let dir = TMScratch("cp-replay")
        defer { dir.remove() }
        let (log, tm) = try dir.createOnline()
        let a = try ScriptedRM.online(tm, "a")
        let b = try ScriptedRM.online(tm, "b")
        for _ in 0..<3 { _ = try await Self.commitOne(tm, a, b) }
        // A transaction left prepared under a superior: it must survive the checkpoint.
        let doubtful = try tm.createTransaction(description: "survives")
        _ = try a.enlist(doubtful, info: [42])
        #expect(try await doubtful.enlistSuperior().prepare() == .prepared)
        #expect(try tmRecordKinds(tm).count == 2 + 3 * 2 + 1)

        let stream = try #require(tm.stream)
        let baseBefore = stream.baseLSN
        let lastBefore = stream.lastLSN
        let clock = tm.virtualClock
        let cpLSN = try tm.checkpoint()
        #expect(stream.baseLSN > baseBefore)
        // No TM record came after the last one the checkpoint covers: the base moved to the restart record.
        #expect(stream.baseLSN == cpLSN && cpLSN > lastBefore)
        let cp = try tmCheckpoint(tm)
        #expect(cp.tm == tm.id)
        #expect(cp.coveredThrough == lastBefore)
        #expect(cp.clock == clock)
        #expect(cp.rms.map(\.id) == [a.id, b.id].sorted())
        #expect(cp.transactions.map(\.id) == [doubtful.id])
        #expect(cp.transactions.first?.superior == true)
        #expect(cp.transactions.first?.enlistments.map(\.recoveryInformation) == [[42]])
        // The records below the base are no longer read: none of the covered ones remains from the base.
        #expect(try tmRecordKinds(tm) == [])

        let after = try await Self.commitOne(tm, a, b)
        try log.close()

        let (log2, tm2) = try dir.reopenOnline()
        defer { try? log2.close() }
        let stats = tm2.lastRecovery
        #expect(stats.checkpointLSN == cpLSN)
        #expect(stats.recordsScanned == 2)
        #expect(stats.inDoubt == 1 && stats.committing == 0 && stats.aborting == 0)
        #expect(tm2.inDoubtTransactions().map(\.id) == [doubtful.id])
        #expect(Set(tm2.registeredResourceManagers.map(\.id)) == Set([a.id, b.id]))
        #expect(tm2.virtualClock == clock + 1)
        let records = try tmRecords(tm2)
        #expect(records.map(\.kind) == [.outcome, .end])
        if case .end(let id) = records.last { #expect(id == after) }

        let a2 = try ScriptedRM.open(tm2, id: a.id)
        try a2.rm.recover()
        #expect(a2.kinds(doubtful.id) == [.recover, .inDoubt])
        #expect(a2.notes.first?.recoveryInformation == [42])
        let b2 = try ScriptedRM.open(tm2, id: b.id)
        try b2.rm.recover()
        #expect(b2.allKinds == [.recoveryComplete, .tmOnline])
    }

    /// `list` skips restart areas that are not a TM's, and reports a TM checkpoint that does not decode
    /// as corrupt. Before, the damaged TM vanished from the list, and `open(log:id:)` said not-found.
    @Test func listReportsADamagedCheckpointAndSkipsOtherRestartAreas() throws {
        let dir = TMScratch("list-damaged")
        defer { dir.remove() }
        let (log, tm) = try dir.createOnline()
        defer { try? log.close() }
        try log.createStream("other").writeRestartArea(Array("not a transaction manager".utf8))
        #expect(TransactionManager.list(log: log).map { $0.info?.id } == [tm.id])
        let stream = try #require(tm.stream)
        var damaged = try #require(try stream.readRestartArea()).data
        damaged.removeLast(7)  // the TM's magic, then a checkpoint cut short
        try stream.writeRestartArea(damaged)
        #expect(TransactionManager.list(log: log).map { $0.error?.code } == [.corrupt])
        expectLogError(.corrupt) { _ = try TransactionManager.open(log: log, id: tm.id) }
    }

    /// One TM's damaged checkpoint does not keep another TM of the same log from opening by id. Before,
    /// `open(log:id:)` went through `list`, which threw `corrupt` for the whole log.
    @Test func anotherTMsDamagedCheckpointDoesNotBlockOpeningByID() throws {
        let dir = TMScratch("open-beside-damaged")
        defer { dir.remove() }
        let (log, tm) = try dir.createOnline()
        defer { try? log.close() }
        let healthy = try TransactionManager.create(log: log, stream: "ktm-2")
        try healthy.recover()
        try healthy.close()
        let stream = try #require(tm.stream)
        var damaged = try #require(try stream.readRestartArea()).data
        damaged.removeLast(7)
        try stream.writeRestartArea(damaged)
        let reopened = try TransactionManager.open(log: log, id: healthy.id)
        #expect(reopened.id == healthy.id)
        try reopened.recover()
        try reopened.close()
        // The damaged one, or an id that may be it, is still reported as damage.
        expectLogError(.corrupt) { _ = try TransactionManager.open(log: log, id: tm.id) }
        expectLogError(.corrupt) { _ = try TransactionManager.open(log: log, id: GUID.random()) }
    }

    @Test func closeWritesACheckpointSoNothingIsReplayed() async throws {
        let dir = TMScratch("cp-close")
        defer { dir.remove() }
        let (log, tm) = try dir.createOnline()
        let a = try ScriptedRM.online(tm, "a")
        let b = try ScriptedRM.online(tm, "b")
        _ = try await Self.commitOne(tm, a, b)
        try tm.close()
        let restart = try #require(try tm.stream?.readRestartArea())
        try log.close()
        let (log2, tm2) = try dir.reopenOnline()
        defer { try? log2.close() }
        #expect(tm2.lastRecovery.checkpointLSN == restart.lsn)
        #expect(tm2.lastRecovery.recordsScanned == 0)
        #expect(tm2.lastRecovery.lastRecoveredLSN == .null)
        #expect(tm2.virtualClock == 2)
        #expect(tm2.registeredResourceManagers.count == 2)
    }

    @Test func acknowledgementsInACheckpointAreNotRedelivered() async throws {
        let dir = TMScratch("cp-acks")
        defer { dir.remove() }
        let (log, tm) = try dir.createOnline()
        let a = try ScriptedRM.online(tm, "a")
        let b = try ScriptedRM.online(tm, "b")
        b.on(.commit, .hold)
        let tx = try tm.createTransaction()
        _ = try a.enlist(tx)
        _ = try b.enlist(tx)
        let commit = Task { try await tx.commit() }
        #expect(await b.waitFor(.commit))
        try tm.checkpoint()
        let cp = try tmCheckpoint(tm)
        #expect(cp.transactions.map(\.id) == [tx.id])
        #expect(cp.transactions.first?.outcome == .committed)
        #expect(cp.transactions.first?.enlistments.map(\.acknowledged) == [true, false])
        try log.close()
        // The log's close stopped the TM: b's late answer is refused, and the commit says it committed.
        #expect(throws: LogError.self) { try #require(b.held.first?.enlistment).commitComplete() }
        await expectLogError(.closed) { try await commit.value }

        let (log2, tm2) = try dir.reopenOnline()
        defer { try? log2.close() }
        #expect(tm2.lastRecovery.committing == 1)
        #expect(tm2.lastRecovery.recordsScanned == 0)
        let a2 = try ScriptedRM.open(tm2, id: a.id)
        try a2.rm.recover()
        #expect(a2.allKinds == [.recoveryComplete, .tmOnline])  // a acknowledged before the checkpoint
        let b2 = try ScriptedRM.open(tm2, id: b.id)
        try b2.rm.recover()
        #expect(b2.kinds(tx.id) == [.recover, .commit])
        #expect(tm2.transactionSnapshots().isEmpty)
        #expect(try tmRecordKinds(tm2).last == .end)
    }

    @Test func checkpointsAreWrittenAutomaticallyEveryNRecords() async throws {
        let dir = TMScratch("cp-auto")
        defer { dir.remove() }
        var options = TransactionManagerOptions()
        options.checkpointEveryRecords = 4
        let (log, tm) = try dir.createOnline(options: options)
        defer { try? log.close() }
        let stream = try #require(tm.stream)
        let first = try #require(try stream.readRestartArea()).lsn
        let a = try ScriptedRM.online(tm, "a")
        let b = try ScriptedRM.online(tm, "b")
        for _ in 0..<2 { _ = try await Self.commitOne(tm, a, b) }  // 2 + 2 × 2 records
        #expect(await eventually { ((try? stream.readRestartArea())?.lsn ?? first) > first })
        #expect(stream.baseLSN > first)
    }

    @Test func checkpointRefusedBeforeRecovery() throws {
        let dir = TMScratch("cp-early")
        defer { dir.remove() }
        let log = try LogStore.create(at: dir.path, options: TMScratch.options)
        defer { try? log.close() }
        let tm = try TransactionManager.create(log: log)
        expectLogError(.notOnline) { try tm.checkpoint() }
    }
}
