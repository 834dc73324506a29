// A decision or prepared record the log refuses: larger than the log's maximum record size, a full log,
// a failed log. Nothing reached the log, so presumed abort holds: the transaction is rolled back, every
// prepared participant gets `rollback`, and the caller gets the append's error code. After a refusal for
// size or space the TM carries on.

import Foundation
import LogFormat
import LogStore
import Testing
@testable import TransactionManager

@Suite struct UnloggableRecordTests {
    /// Two RMs with 3000-byte recovery blobs: the TM's record naming both is ~6 KB, over the 4 KiB limit.
    static func bigEnlistments(_ tm: TransactionManager, _ a: ScriptedRM, _ b: ScriptedRM, _ description: String) throws -> Transaction {
        let tx = try tm.createTransaction(description: description)
        _ = try a.enlist(tx, info: [UInt8](repeating: 1, count: 3000))
        _ = try b.enlist(tx, info: [UInt8](repeating: 2, count: 3000))
        return tx
    }

    @Test func aDecisionRecordTooLargeRollsBackAndTheTMCarriesOn() async throws {
        let dir = TMScratch("unloggable-decision")
        defer { dir.remove() }
        let (log, tm) = try dir.createOnline(log: CheckpointPartsTests.smallRecords)
        let a = try ScriptedRM.online(tm, "a")
        let b = try ScriptedRM.online(tm, "b")
        let syncsBefore = log.info().statistics.syncs
        let tx = try Self.bigEnlistments(tm, a, b, "too big")
        let error = await #expect(throws: LogError.self) { try await tx.commit() }
        #expect(error?.code == .invalidArgument)
        #expect(error?.message.contains("rolled back") == true)
        #expect(error?.message.contains("exceeds the log's limit of 4096 bytes") == true)
        #expect(tx.state == .aborted && tx.outcome == .aborted)
        #expect(a.kinds(tx.id) == [.prePrepare, .prepare, .rollback])
        #expect(b.kinds(tx.id) == [.prePrepare, .prepare, .rollback])
        #expect(log.info().statistics.syncs == syncsBefore, "an abort forces nothing")

        // The TM is healthy: the next transaction commits, and nothing of the first survives a crash.
        #expect(tm.currentState == .online)
        let small = try tm.createTransaction(description: "fits")
        _ = try a.enlist(small)
        _ = try b.enlist(small)
        try await small.commit()
        #expect(small.outcome == .committed)
        #expect(a.kinds(small.id) == [.prePrepare, .prepare, .commit])
        try log.close()
        let (log2, tm2) = try dir.reopenOnline()
        defer { try? log2.close() }
        #expect(tm2.transactionSnapshots().isEmpty, "the rolled-back transaction left no record to recover")
    }

    @Test func aPreparedRecordTooLargeFailsTheSuperiorsPrepareAndRollsBack() async throws {
        let dir = TMScratch("unloggable-prepared")
        defer { dir.remove() }
        let (log, tm) = try dir.createOnline(log: CheckpointPartsTests.smallRecords)
        defer { try? log.close() }
        let a = try ScriptedRM.online(tm, "a")
        let b = try ScriptedRM.online(tm, "b")
        let tx = try Self.bigEnlistments(tm, a, b, "branch too big")
        let superior = try tx.enlistSuperior()
        let error = await #expect(throws: LogError.self) { _ = try await superior.prepare() }
        #expect(error?.code == .invalidArgument && error?.message.contains("prepared record") == true)
        #expect(tx.state == .aborted)
        #expect(a.kinds(tx.id) == [.prePrepare, .prepare, .rollback])
        #expect(b.kinds(tx.id) == [.prePrepare, .prepare, .rollback])
        #expect(tm.inDoubtTransactions().isEmpty)
        #expect(tm.currentState == .online)
    }

    /// Starts committing `tx` across `a` and `b` (b holds its prepare answer) and returns once b is asked.
    static func commitUntilBPrepares(_ tx: Transaction, _ a: ScriptedRM, _ b: ScriptedRM) async throws -> Task<Void, any Error> {
        b.on(.prepare, .hold, tx: tx.id)
        _ = try a.enlist(tx)
        _ = try b.enlist(tx)
        let commit = Task { try await tx.commit() }
        #expect(await b.waitFor(.prepare, tx: tx.id))
        return commit
    }

    /// b's held prepare, answered without writing b's prepare record (the log would refuse it too).
    static func answerHeldPrepare(_ b: ScriptedRM) throws {
        try #require(b.held.first { $0.kind == .prepare }?.enlistment).prepareComplete()
    }

    @Test func aDecisionRecordAFullLogRefusesRollsBackAndTheTMCarriesOn() async throws {
        let dir = TMScratch("unloggable-full")
        defer { dir.remove() }
        let (log, tm) = try dir.createOnline()
        let a = try ScriptedRM.online(tm, "a")
        let b = try ScriptedRM.online(tm, "b")
        let tx = try tm.createTransaction(description: "log full")
        let commit = try await Self.commitUntilBPrepares(tx, a, b)

        // A stream whose base never moves fills every container, down to the last empty record's room.
        let filler = try log.createStream("filler")
        for size in [3000, 100, 0] {
            var full: LogError?
            while full == nil {
                do { _ = try filler.append([UInt8](repeating: 7, count: size)) } catch let e as LogError { full = e }
            }
            #expect(full?.code == .logFull)
        }
        a.on(.rollback, .hold, tx: tx.id)  // their rollback records would not fit either: answered below
        b.on(.rollback, .hold, tx: tx.id)
        try Self.answerHeldPrepare(b)
        let error = await #expect(throws: LogError.self) { try await commit.value }
        #expect(error?.code == .logFull)
        #expect(error?.message.contains("rolled back") == true && error?.message.contains("decision record") == true)
        #expect(tx.outcome == .aborted)
        #expect(a.kinds(tx.id) == [.prePrepare, .prepare, .rollback])
        #expect(b.kinds(tx.id) == [.prePrepare, .prepare, .rollback])
        #expect(tm.currentState == .online)

        // An operator adds a container: the participants finish their rollback and the next transaction commits.
        _ = try log.addContainer()
        try a.release(.rollback, tx: tx.id)
        try b.release(.rollback, tx: tx.id)
        #expect(await eventually { tx.state == .aborted })
        let next = try tm.createTransaction(description: "after space came back")
        _ = try a.enlist(next)
        _ = try b.enlist(next)
        try await next.commit()
        #expect(next.outcome == .committed)
        try log.close()
        let (log2, tm2) = try dir.reopenOnline()
        defer { try? log2.close() }
        #expect(tm2.transactionSnapshots().isEmpty, "the refused transaction left nothing to recover")
    }

    @Test func aDecisionRecordAFailedLogRefusesRollsBackAndRecoveryAgrees() async throws {
        let dir = TMScratch("unloggable-failed")
        defer { dir.remove() }
        let io = FailingSyncIO()
        let log = try LogStore.create(at: dir.path, options: TMScratch.options, io: io)
        let tm = try TransactionManager.create(log: log)
        try tm.recover()
        let a = try ScriptedRM.online(tm, "a")
        let b = try ScriptedRM.online(tm, "b")
        let tx = try tm.createTransaction(description: "log failed")
        let commit = try await Self.commitUntilBPrepares(tx, a, b)

        io.failSyncs.set(true)
        await #expect(throws: LogError.self) { try await log.flush() }  // a's prepare record: the sync fails
        #expect(log.isFailed)
        try Self.answerHeldPrepare(b)
        let error = await #expect(throws: LogError.self) { try await commit.value }
        #expect(error?.code == .failed)
        #expect(error?.message.contains("rolled back") == true)
        #expect(tx.outcome == .aborted)
        #expect(a.kinds(tx.id).prefix(3) == [.prePrepare, .prepare, .rollback])
        #expect(b.kinds(tx.id).prefix(3) == [.prePrepare, .prepare, .rollback])
        #expect(throws: LogError.self) { try log.close() }

        // No decision reached the disk, so recovery presumes abort too.
        let (log2, tm2) = try dir.reopenOnline()
        defer { try? log2.close() }
        #expect(tm2.transactionSnapshots().isEmpty)
    }
}
