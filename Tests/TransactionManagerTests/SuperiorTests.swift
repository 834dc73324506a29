// Superior enlistments: an external coordinator drives prepare and the decision; a prepared record is
// forced before the superior is told "prepared".

import Foundation
import LogStore
import Testing
@testable import TransactionManager

@Suite struct SuperiorTests {
    @Test func superiorDrivesPrepareThenCommit() async throws {
        let dir = TMScratch("sup-commit")
        defer { dir.remove() }
        let (log, tm) = try dir.createOnline()
        defer { try? log.close() }
        let a = try ScriptedRM.online(tm, "a")
        let b = try ScriptedRM.online(tm, "b")
        let tx = try tm.createTransaction(description: "xa branch")
        let ea = try a.enlist(tx, info: [0xAB])
        let eb = try b.enlist(tx, mask: .all)  // single-phase is never used under a superior
        let superior = try tx.enlistSuperior()
        await expectLogError(.invalidState) { try await tx.commit() }
        expectLogError(.invalidState) { _ = try tx.enlistSuperior() }
        #expect(tx.state == .active)

        var syncs = syncCount(log)
        #expect(try await superior.prepare() == .prepared)
        #expect(syncCount(log) - syncs == 1)
        #expect(tx.state == .prepared)
        #expect(superior.state == .prepared)
        #expect(a.kinds(tx.id) == [.prePrepare, .prepare])
        #expect(b.kinds(tx.id) == [.prePrepare, .prepare])
        #expect(tm.inDoubtTransactions().map(\.id) == [tx.id])
        var records = try tmRecords(tm)
        #expect(records.map(\.kind) == [.rmRegistered, .rmRegistered, .prepared])
        guard case .prepared(let p) = records[2] else { return }
        #expect(p.id == tx.id && p.superior && p.outcome == .undetermined && p.description == "xa branch")
        #expect(p.enlistments.map(\.id) == [ea.id, eb.id])
        #expect(p.enlistments.map(\.recoveryInformation) == [[0xAB], []])
        // The RMs' prepare records precede the prepared record, so its flush covered them.
        #expect(try a.ownRecordLSNs()[0] < tmDataLSNs(tm)[2])
        expectLogError(.invalidState) { try tx.rollback() }  // only the superior decides now

        syncs = syncCount(log)
        try await superior.commit()
        #expect(syncCount(log) - syncs == 1)
        #expect(a.kinds(tx.id) == [.prePrepare, .prepare, .commit])
        #expect(b.kinds(tx.id) == [.prePrepare, .prepare, .commit])
        #expect(superior.outcome == .committed)
        #expect(tx.state == .committed)
        records = try tmRecords(tm)
        #expect(records.map(\.kind) == [.rmRegistered, .rmRegistered, .prepared, .outcome, .end])
        #expect(tm.inDoubtTransactions().isEmpty)
        await expectLogError(.invalidState) { try await superior.commit() }
    }

    @Test func superiorRollsBackAPreparedTransactionWithoutForcing() async throws {
        let dir = TMScratch("sup-rollback")
        defer { dir.remove() }
        let (log, tm) = try dir.createOnline()
        defer { try? log.close() }
        let (a, tx, superior) = try await preparedUnderSuperior(tm)
        let syncs = syncCount(log)
        try superior.rollback()
        #expect(await superior.waitForOutcome() == .aborted)
        #expect(syncCount(log) - syncs == 0)  // an abort record is never forced
        #expect(a.kinds(tx.id) == [.prePrepare, .prepare, .rollback])
        let records = try tmRecords(tm)
        #expect(records.map(\.kind) == [.rmRegistered, .prepared, .outcome, .end])
        guard case .outcome(let t) = records[2] else { return }
        #expect(t.outcome == .aborted)
        #expect(t.enlistments.count == 1)
        try superior.rollback()  // again: nothing to do
        #expect(try tmRecords(tm).count == 4)
    }

    @Test func superiorRollbackBeforePrepareLogsNothing() async throws {
        let dir = TMScratch("sup-early-rollback")
        defer { dir.remove() }
        let (log, tm) = try dir.createOnline()
        defer { try? log.close() }
        let a = try ScriptedRM.online(tm, "a")
        let tx = try tm.createTransaction()
        _ = try a.enlist(tx)
        let superior = try tx.enlistSuperior()
        try superior.rollback()
        #expect(a.kinds(tx.id) == [.rollback])
        #expect(try tmRecordKinds(tm) == [.rmRegistered])
        await expectLogError(.invalidState) { _ = try await superior.prepare() }
    }

    @Test func allReadOnlyVoteIsReadOnlyAndLogsNothing() async throws {
        let dir = TMScratch("sup-ro")
        defer { dir.remove() }
        let (log, tm) = try dir.createOnline()
        defer { try? log.close() }
        let a = try ScriptedRM.online(tm, "a")
        a.on(.prepare, .readOnly)
        let tx = try tm.createTransaction()
        _ = try a.enlist(tx)
        let superior = try tx.enlistSuperior()
        let syncs = syncCount(log)
        #expect(try await superior.prepare() == .readOnly)
        #expect(syncCount(log) - syncs == 0)
        #expect(a.kinds(tx.id) == [.prePrepare, .prepare])
        #expect(tx.outcome == .committed)
        #expect(tx.state == .committed)
        #expect(try tmRecordKinds(tm) == [.rmRegistered])
        await expectLogError(.invalidState) { try await superior.commit() }
    }

    @Test func prePrepareCanBeDrivenSeparately() async throws {
        let tm = TransactionManager.volatile()
        try tm.recover()
        let a = try ScriptedRM.online(tm, volatile: true)
        let tx = try tm.createTransaction()
        _ = try a.enlist(tx)
        let superior = try tx.enlistSuperior()
        try await superior.prePrepare()
        #expect(a.kinds(tx.id) == [.prePrepare])
        #expect(tx.state == .prePreparing)
        await expectLogError(.invalidState) { try await superior.prePrepare() }
        #expect(try await superior.prepare() == .prepared)
        #expect(a.kinds(tx.id) == [.prePrepare, .prepare])
        try await superior.commit()
        #expect(a.kinds(tx.id) == [.prePrepare, .prepare, .commit])
    }

    @Test func vetoUnderASuperiorAbortsPrepare() async throws {
        let tm = TransactionManager.volatile()
        try tm.recover()
        let a = try ScriptedRM.online(tm, volatile: true)
        let b = try ScriptedRM.online(tm, volatile: true)
        b.on(.prepare, .veto)
        let tx = try tm.createTransaction()
        _ = try a.enlist(tx)
        _ = try b.enlist(tx)
        let superior = try tx.enlistSuperior()
        await expectLogError(.aborted) { _ = try await superior.prepare() }
        #expect(a.kinds(tx.id) == [.prePrepare, .prepare, .rollback])
        #expect(superior.outcome == .aborted)
    }

    @Test func closingTheHandleLeavesTheSuperiorInCharge() async throws {
        let tm = TransactionManager.volatile()
        try tm.recover()
        let a = try ScriptedRM.online(tm, volatile: true)
        let tx = try tm.createTransaction()
        _ = try a.enlist(tx)
        let superior = try tx.enlistSuperior()
        tx.close()
        #expect(a.kinds(tx.id) == [])
        #expect(superior.state == .active)
        #expect(try await superior.prepare() == .prepared)
        try await superior.commit()
        #expect(a.kinds(tx.id) == [.prePrepare, .prepare, .commit])
    }

    @Test func reattachingASuperiorNeedsOne() throws {
        let tm = TransactionManager.volatile()
        try tm.recover()
        let tx = try tm.createTransaction()
        expectLogError(.invalidState) { _ = try tm.superior(for: tx.id) }
        expectLogError(.notFound) { _ = try tm.superior(for: .random()) }
        let s = try tx.enlistSuperior()
        #expect(try tm.superior(for: tx.id) === s)
        try s.rollback()
    }
}
