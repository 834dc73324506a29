// A decision or prepared record the log refuses (here: larger than the log's maximum record size).
// Nothing reached the log, so presumed abort holds: the transaction is rolled back, every prepared
// participant gets `rollback`, the caller gets the append's error code, and the TM carries on.

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
}
