// Volatile transaction managers and volatile resource managers: nothing is logged, nothing is forced.

import Foundation
import LogStore
import Testing
@testable import TransactionManager

@Suite struct VolatileTests {
    @Test func volatileTMRefusesDurableRMs() throws {
        let tm = TransactionManager.volatile()
        try tm.recover()
        #expect(tm.isVolatile)
        #expect(tm.log == nil && tm.stream == nil)
        expectLogError(.invalidArgument) { _ = try tm.createResourceManager(description: "durable") }
        expectLogError(.invalidArgument) { _ = try tm.openOrCreateResourceManager(id: .random()) }
        expectLogError(.notFound) { _ = try tm.openResourceManager(id: .random()) }
        #expect(try tm.checkpoint() == .null)
        #expect(tm.registeredResourceManagers.isEmpty)
    }

    @Test func volatileRMsCommitInMemory() async throws {
        let tm = TransactionManager.volatile()
        try tm.recover()
        let a = try ScriptedRM.online(tm, volatile: true)
        let b = try ScriptedRM.online(tm, volatile: true)
        #expect(a.rm.stream == nil)
        #expect(a.rm.isVolatile)
        let tx = try tm.createTransaction(description: "in memory")
        _ = try a.enlist(tx)
        _ = try b.enlist(tx)
        try await tx.commit()
        #expect(a.kinds(tx.id) == [.prePrepare, .prepare, .commit])
        #expect(b.kinds(tx.id) == [.prePrepare, .prepare, .commit])
        #expect(tx.outcome == .committed)
        #expect(tm.virtualClock == 2)
        await expectLogError(.invalidArgument) { try await tm.resolve(tx.id, action: .commit) }
        try tm.close()
        #expect(tm.currentState == .offline)
    }

    @Test func volatileRMsOnADurableTMAreNeverLogged() async throws {
        let dir = TMScratch("volatile-rm")
        defer { dir.remove() }
        let (log, tm) = try dir.createOnline()
        defer { try? log.close() }
        let a = try ScriptedRM.online(tm, "a", volatile: true)
        let b = try ScriptedRM.online(tm, "b", volatile: true)
        #expect(tm.registeredResourceManagers.isEmpty)
        let tx = try tm.createTransaction()
        _ = try a.enlist(tx)
        _ = try b.enlist(tx)
        let syncs = syncCount(log)
        try await tx.commit()
        #expect(a.kinds(tx.id) == [.prePrepare, .prepare, .commit])
        #expect(b.kinds(tx.id) == [.prePrepare, .prepare, .commit])
        #expect(syncCount(log) - syncs == 0)
        #expect(try tmRecordKinds(tm) == [])
    }

    @Test func mixedTransactionLogsOnlyTheDurableEnlistment() async throws {
        let dir = TMScratch("volatile-mixed")
        defer { dir.remove() }
        let (log, tm) = try dir.createOnline()
        defer { try? log.close() }
        let durable = try ScriptedRM.online(tm, "durable")
        let cache = try ScriptedRM.online(tm, "cache", volatile: true)
        let tx = try tm.createTransaction()
        let ed = try durable.enlist(tx)
        _ = try cache.enlist(tx, info: [1, 2])
        let syncs = syncCount(log)
        try await tx.commit()
        #expect(syncCount(log) - syncs == 1)
        #expect(cache.kinds(tx.id) == [.prePrepare, .prepare, .commit])
        let records = try tmRecords(tm)
        #expect(records.map(\.kind) == [.rmRegistered, .outcome, .end])
        guard case .outcome(let t) = records[1] else {
            Issue.record("no outcome record")
            return
        }
        #expect(t.enlistments.map(\.id) == [ed.id])
        #expect(tm.registeredResourceManagers.map(\.id) == [durable.id])
    }
}
