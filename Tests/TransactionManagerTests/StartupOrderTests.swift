// Startup order, enforced: TM recover, then resource managers, then RM recover, then enlist.

import Foundation
import LogStore
import Testing
@testable import TransactionManager

@Suite struct StartupOrderTests {
    @Test func nothingBeforeTheTMRecovers() throws {
        let dir = TMScratch("order-tm")
        defer { dir.remove() }
        let log = try LogStore.create(at: dir.path, options: TMScratch.options)
        defer { try? log.close() }
        let tm = try TransactionManager.create(log: log)
        #expect(tm.currentState == .initialized)
        expectLogError(.notOnline) { _ = try tm.createResourceManager(description: "early") }
        expectLogError(.notOnline) { _ = try tm.createTransaction() }
        expectLogError(.notOnline) { _ = try tm.openResourceManager(id: .random()) }
        try tm.recover()
        #expect(tm.currentState == .online)
        // Recovering twice is refused.
        expectLogError(.invalidState) { try tm.recover() }
    }

    @Test func enlistingBeforeTheRMRecoversIsRefused() throws {
        let dir = TMScratch("order-rm")
        defer { dir.remove() }
        let (log, tm) = try dir.createOnline()
        defer { try? log.close() }
        let rm = try ScriptedRM.create(tm, "not yet recovered")
        #expect(rm.rm.currentState == .offline)
        let tx = try tm.createTransaction()
        expectLogError(.notOnline) { _ = try rm.enlist(tx) }
        expectLogError(.notOnline) { _ = try rm.rm.enlist(transactionID: tx.id) }
        try rm.rm.recover()
        #expect(rm.rm.currentState == .online)
        // A fresh RM is owed nothing: recovery-complete, then tm-online.
        #expect(rm.allKinds == [.recoveryComplete, .tmOnline])
        expectLogError(.invalidState) { try rm.rm.recover() }
        let e = try rm.enlist(tx)
        #expect(e.currentState == .active)
        #expect(tx.snapshot.participants.count == 1)
    }

    @Test func reopenedTMRefusesWorkUntilRecovered() throws {
        let dir = TMScratch("order-reopen")
        defer { dir.remove() }
        let (log, tm) = try dir.createOnline()
        let rm = try ScriptedRM.online(tm)
        try tm.close()
        #expect(tm.currentState == .offline)
        expectLogError(.notOnline) { _ = try tm.createTransaction() }
        try log.close()

        let log2 = try LogStore.open(at: dir.path)
        defer { try? log2.close() }
        let tm2 = try TransactionManager.open(log: log2)
        #expect(tm2.id == tm.id)
        expectLogError(.notOnline) { _ = try tm2.openResourceManager(id: rm.id) }
        expectLogError(.notOnline) { _ = try tm2.createTransaction() }
        try tm2.recover()
        #expect(tm2.registeredResourceManagers.map(\.id) == [rm.id])
        let again = try ScriptedRM.open(tm2, id: rm.id)
        let tx = try tm2.createTransaction()
        expectLogError(.notOnline) { _ = try again.enlist(tx) }
        try again.rm.recover()
        _ = try again.enlist(tx)
        // Opening the same RM twice, or creating one with its id, is refused.
        expectLogError(.alreadyExists) { _ = try tm2.openResourceManager(id: rm.id) }
        expectLogError(.alreadyExists) { _ = try tm2.createResourceManager(id: rm.id) }
        expectLogError(.notFound) { _ = try tm2.openResourceManager(id: .random()) }
        try tx.rollback()
    }

    @Test func volatileTMAlsoRecoversFirst() throws {
        let tm = TransactionManager.volatile()
        #expect(tm.isVolatile)
        expectLogError(.notOnline) { _ = try tm.createResourceManager(volatile: true) }
        try tm.recover()
        let rm = try ScriptedRM.create(tm, volatile: true)
        let tx = try tm.createTransaction()
        expectLogError(.notOnline) { _ = try rm.enlist(tx) }
        try rm.rm.recover()
        _ = try rm.enlist(tx)
        try tx.rollback()
        #expect(rm.kinds(tx.id) == [.rollback])
    }

    @Test func createRefusesAnExistingStream() throws {
        let dir = TMScratch("order-exists")
        defer { dir.remove() }
        let (log, _) = try dir.createOnline()
        defer { try? log.close() }
        expectLogError(.alreadyExists) { _ = try TransactionManager.create(log: log) }
        expectLogError(.notFound) { _ = try TransactionManager.open(log: log, id: .random()) }
        #expect(TransactionManager.list(log: log).map(\.stream) == [TransactionManager.defaultStreamName])
    }
}
