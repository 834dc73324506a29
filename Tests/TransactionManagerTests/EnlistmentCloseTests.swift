// Closing one enlistment past the point where closing rolls back, as closing its whole RM does: the RM
// of a single-phase commit that closes its enlistment without answering takes the outcome with it (KTM's
// RM_DISCONNECTED case), and an outcome-only enlistment leaves as a read-only one does.

import Foundation
import LogStore
import Testing
@testable import TransactionManager

@Suite struct EnlistmentCloseTests {
    /// Before, the commit waited for an answer from the closed enlistment for ever (no timeout applies
    /// during a single-phase commit), where closing the RM made it throw `closed`.
    @Test(.hangGuard) func closingTheSinglePhaseEnlistmentWithoutAnAnswerEndsTheCommit() async throws {
        let tm = TransactionManager.volatile()
        try tm.recover()
        let rm = try tm.createResourceManager(description: "closes", volatile: true) { n in
            if n.kind == .singlePhaseCommit { n.enlistment?.close() }
        }
        try rm.recover()
        let tx = try tm.createTransaction()
        _ = try rm.enlist(tx, mask: .all)
        let ended = TerminateHungHandlerTests.Flag()
        let commit = Task {
            do { try await tx.commit() } catch let e as LogError { ended.set(e.code.rawValue + ": " + e.message) }
            ended.set("returned")
        }
        let returned = await eventually(within: 60) { ended.get != nil }
        #expect(returned, "commit() waited for the closed enlistment")
        #expect(ended.get?.hasPrefix(LogError.Code.closed.rawValue) == true, "\(ended.get ?? "nil")")
        #expect(tx.state == .failed)
        #expect(tm.transactionSnapshots().isEmpty)
        try tm.close()  // lets a commit that still waits go
        _ = await commit.result
    }

    /// Before, an outcome-only enlistment closed while its transaction was prepared under a superior
    /// still got the commit, and the superior's commit waited for its acknowledgement.
    @Test(.hangGuard) func closingAnOutcomeOnlyEnlistmentOfAPreparedTransactionLeavesIt() async throws {
        let tm = TransactionManager.volatile()
        try tm.recover()
        let writer = try ScriptedRM.online(tm, "writer", volatile: true)
        let watcher = try ScriptedRM.online(tm, "watcher", volatile: true)
        watcher.on(.commit, .hold)
        let tx = try tm.createTransaction()
        _ = try writer.enlist(tx)
        let e = try watcher.enlist(tx, mask: .commit)
        let superior = try tx.enlistSuperior()
        #expect(try await superior.prepare() == .prepared)
        e.close()
        #expect(e.currentState == .closed)
        let ended = TerminateHungHandlerTests.Flag()
        let commit = Task {
            do { try await superior.commit() } catch { ended.set("\(error)") }
            ended.set("returned")
        }
        let returned = await eventually(within: 60) { ended.get != nil }
        #expect(returned, "the superior's commit waited for the closed enlistment")
        #expect(ended.get == "returned")
        #expect(watcher.kinds(tx.id) == [])
        #expect(writer.kinds(tx.id) == [.prePrepare, .prepare, .commit])
        if !returned { try watcher.release(.commit) }
        _ = await commit.result
        #expect(tx.outcome == .committed)
    }
}
