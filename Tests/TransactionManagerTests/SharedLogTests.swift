// Several transaction managers on one log, each with its own resource managers.

import Foundation
import LogStore
import Testing
@testable import TransactionManager

@Suite struct SharedLogTests {
    /// An RM of TM A cannot enlist in a transaction of TM B. Before, it could: B logged the RM as a
    /// participant of its decision, the RM answered A, and after a crash B owed that RM a commit it could
    /// never send (only A can open the RM), while the RM, which A had told nothing, presumed abort.
    @Test func anRMEnlistsOnlyInItsOwnTMsTransactions() async throws {
        let dir = TMScratch("shared-log")
        defer { dir.remove() }
        let (log, tmA) = try dir.createOnline()
        let tmB = try TransactionManager.create(log: log, stream: "ktm-b")
        try tmB.recover()
        let x = try ScriptedRM.online(tmA, "x of A")
        let y = try ScriptedRM.online(tmB, "y of B")
        let t = try tmB.createTransaction()
        expectLogError(.invalidArgument) { _ = try x.enlist(t) }
        _ = try y.enlist(t)
        _ = try y.rm.enlist(try tmB.openTransaction(id: t.id))  // another handle of the same TM is fine
        await BackgroundCall { try await t.commit() }.expectSuccess("commit")
        #expect(x.kinds(t.id).isEmpty)
        try log.close()
        let log2 = try LogStore.open(at: dir.path)
        defer { try? log2.close() }
        let tmB2 = try TransactionManager.open(log: log2, stream: "ktm-b")
        try tmB2.recover()
        #expect(tmB2.lastRecovery.committing == 0 && tmB2.transactionSnapshots().isEmpty)
    }
}
