// Rollbacks: vetoes at each phase, client rollback, timeouts, closing the last handle or an enlistment.
// Presumed abort: an aborted transaction costs no forced write and leaves no TM record.

import Foundation
import LogStore
import Testing
@testable import TransactionManager
import TxLogTestSupport

@Suite struct AbortTests {
    /// A durable TM with two online scripted RMs, a and b.
    static func durable(_ tag: String) throws -> (TMScratch, LogStore, TransactionManager, ScriptedRM, ScriptedRM) {
        let dir = TMScratch(tag)
        return try removingOnThrow(dir.path) {
            let (log, tm) = try dir.createOnline()
            return (dir, log, tm, try ScriptedRM.online(tm, "a"), try ScriptedRM.online(tm, "b"))
        }
    }

    @Test func vetoAtPrePrepareRollsBackTheOthers() async throws {
        let (dir, log, tm, a, b) = try Self.durable("veto-pp")
        defer { dir.remove() }
        defer { try? log.close() }
        b.on(.prePrepare, .veto)
        let tx = try tm.createTransaction()
        _ = try a.enlist(tx)
        let eb = try b.enlist(tx)
        let syncs = syncCount(log)
        await expectLogError(.aborted) { try await tx.commit() }
        #expect(a.kinds(tx.id) == [.prePrepare, .rollback])
        #expect(b.kinds(tx.id) == [.prePrepare])
        #expect(eb.currentState == .aborted)
        #expect(tx.outcome == .aborted)
        #expect(tx.state == .aborted)
        #expect(syncCount(log) - syncs == 0)
        #expect(try tmRecordKinds(tm) == [.rmRegistered, .rmRegistered])
        #expect(try a.ownRecords() == ["rollback \(tx.id)"])
        #expect(a.errors == [] && b.errors == [])
    }

    @Test func vetoAtPrePrepareStopsThePhaseForLaterEnlistments() async throws {
        // The vetoing RM is notified first: the RM after it gets the rollback, and no pre-prepare after it.
        let (dir, log, tm, a, b) = try Self.durable("veto-pp-first")
        defer { dir.remove() }
        defer { try? log.close() }
        a.on(.prePrepare, .veto)
        let tx = try tm.createTransaction()
        _ = try a.enlist(tx)
        _ = try b.enlist(tx)
        await expectLogError(.aborted) { try await tx.commit() }
        #expect(a.kinds(tx.id) == [.prePrepare])
        #expect(b.kinds(tx.id) == [.rollback])
        #expect(tx.state == .aborted)
        #expect(b.errors == [])
    }

    @Test func vetoAtPrepareRollsBackAPreparedRM() async throws {
        let (dir, log, tm, a, b) = try Self.durable("veto-p")
        defer { dir.remove() }
        defer { try? log.close() }
        b.on(.prepare, .veto)
        let tx = try tm.createTransaction()
        let ea = try a.enlist(tx)
        _ = try b.enlist(tx)
        let syncs = syncCount(log)
        await expectLogError(.aborted) { try await tx.commit() }
        #expect(a.kinds(tx.id) == [.prePrepare, .prepare, .rollback])
        #expect(b.kinds(tx.id) == [.prePrepare, .prepare])
        #expect(ea.currentState == .aborted)
        #expect(tx.state == .aborted)
        // a logged its prepare and its rollback; the TM logged nothing and forced nothing.
        #expect(try a.ownRecords() == ["prepare \(tx.id)", "rollback \(tx.id)"])
        #expect(try b.ownRecords() == [])
        #expect(syncCount(log) - syncs == 0)
        #expect(try tmRecordKinds(tm) == [.rmRegistered, .rmRegistered])
    }

    @Test func vetoReasonIsWhatCommitThrows() async throws {
        let tm = TransactionManager.volatile()
        try tm.recover()
        let a = try ScriptedRM.online(tm, volatile: true)
        let b = try ScriptedRM.online(tm, volatile: true)
        b.on(.prepare, .hold)
        let tx = try tm.createTransaction()
        _ = try a.enlist(tx)
        _ = try b.enlist(tx)
        let commit = Task { try await tx.commit() }
        #expect(await b.waitFor(.prepare))
        let e = try #require(b.held.first?.enlistment)
        try e.rollback(reason: LogError(.conflict, "write-write conflict on key k"))
        await expectLogError(.conflict) { try await commit.value }
        #expect(a.kinds(tx.id) == [.prePrepare, .prepare, .rollback])
        #expect(b.kinds(tx.id) == [.prePrepare, .prepare])
        // A later commit attempt reports the same reason.
        await expectLogError(.conflict) { try await tx.commit() }
        // After the decision a veto, with or without a reason, is ignored as a late vote.
        try e.rollback(reason: LogError(.conflict, "again"))
        #expect(tx.state == .aborted)
    }

    @Test func clientRollbackThenCommitIsAborted() async throws {
        let (dir, log, tm, a, b) = try Self.durable("rollback")
        defer { dir.remove() }
        defer { try? log.close() }
        let tx = try tm.createTransaction()
        _ = try a.enlist(tx)
        _ = try b.enlist(tx)
        try tx.rollback()
        try tx.rollback()  // a second rollback is a no-op
        #expect(a.kinds(tx.id) == [.rollback])
        #expect(b.kinds(tx.id) == [.rollback])
        #expect(tx.state == .aborted)
        await expectLogError(.aborted) { try await tx.commit() }
        expectLogError(.invalidState) { _ = try a.enlist(tx) }
        #expect(try tmRecordKinds(tm) == [.rmRegistered, .rmRegistered])
    }

    @Test func vetoWhileActiveAbortsBeforeCommit() async throws {
        let tm = TransactionManager.volatile()
        try tm.recover()
        let a = try ScriptedRM.online(tm, volatile: true)
        let b = try ScriptedRM.online(tm, volatile: true)
        let tx = try tm.createTransaction()
        let ea = try a.enlist(tx)
        _ = try b.enlist(tx)
        try ea.rollback()
        #expect(a.kinds(tx.id) == [])
        #expect(b.kinds(tx.id) == [.rollback])
        await expectLogError(.aborted) { try await tx.commit() }
    }

    // MARK: Timeouts

    @Test func timeoutRollsBackAnActiveTransaction() async throws {
        let tm = TransactionManager.volatile()
        try tm.recover()
        let a = try ScriptedRM.online(tm, volatile: true)
        let tx = try tm.createTransaction(timeout: .milliseconds(50))
        let e = try a.enlist(tx)
        #expect(await a.waitFor(.rollback, tx: tx.id))
        #expect(await tx.waitForOutcome() == .aborted)
        #expect(a.kinds(tx.id) == [.rollback])
        #expect(e.currentState == .aborted)
        #expect(tx.state == .aborted)
        await expectLogError(.aborted) { try await tx.commit() }
    }

    @Test func timeoutDuringPrePrepareAbortsTheCommit() async throws {
        let tm = TransactionManager.volatile()
        try tm.recover()
        let a = try ScriptedRM.online(tm, volatile: true)
        a.on(.prePrepare, .hold)
        let tx = try tm.createTransaction(timeout: .milliseconds(50))
        _ = try a.enlist(tx)
        await expectLogError(.aborted) { try await tx.commit() }
        #expect(a.kinds(tx.id) == [.prePrepare, .rollback])
        try a.release(.prePrepare)  // a late vote: ignored
        #expect(a.errors == [])
        #expect(tx.state == .aborted)
    }

    /// An RM that never answers prepare holds the commit until the timeout; the commit's `aborted` says
    /// that the timeout rolled it back (before, it said only "was rolled back", as for any rollback).
    @Test func timeoutOfACommitWaitingForAVoteSaysSo() async throws {
        let tm = TransactionManager.volatile()
        try tm.recover()
        let a = try ScriptedRM.online(tm, volatile: true)
        a.on(.prepare, .hold)
        let tx = try tm.createTransaction(timeout: .milliseconds(50))
        _ = try a.enlist(tx)
        var thrown: LogError?
        do { try await tx.commit() } catch { thrown = error as? LogError }
        #expect(thrown?.code == .aborted)
        #expect(thrown?.message.contains("timed out") == true, "\(String(describing: thrown))")
        #expect(a.kinds(tx.id) == [.prePrepare, .prepare, .rollback])
    }

    @Test func preparedTransactionNeverTimesOut() async throws {
        let tm = TransactionManager.volatile()
        try tm.recover()
        let a = try ScriptedRM.online(tm, volatile: true)
        let tx = try tm.createTransaction(timeout: .milliseconds(50))
        _ = try a.enlist(tx)
        let superior = try tx.enlistSuperior()
        #expect(try await superior.prepare() == .prepared)
        try await Task.sleep(for: .milliseconds(200))
        #expect(tx.state == .prepared)
        #expect(a.kinds(tx.id) == [.prePrepare, .prepare])
        try await superior.commit()
        #expect(a.kinds(tx.id) == [.prePrepare, .prepare, .commit])
        #expect(tx.outcome == .committed)
    }

    @Test func committedTransactionIsNotRolledBackByItsTimeout() async throws {
        let tm = TransactionManager.volatile()
        try tm.recover()
        let a = try ScriptedRM.online(tm, volatile: true)
        let tx = try tm.createTransaction(timeout: .milliseconds(30))
        _ = try a.enlist(tx)
        try await tx.commit()
        try await Task.sleep(for: .milliseconds(100))
        #expect(a.kinds(tx.id) == [.prePrepare, .prepare, .commit])
        #expect(tx.outcome == .committed)
    }

    // MARK: Closing handles and enlistments

    @Test func closingTheLastHandleRollsBack() throws {
        let tm = TransactionManager.volatile()
        try tm.recover()
        let a = try ScriptedRM.online(tm, volatile: true)
        let tx = try tm.createTransaction()
        _ = try a.enlist(tx)
        let second = try tm.openTransaction(id: tx.id)
        tx.close()
        #expect(a.kinds(tx.id) == [])  // another handle is still open
        #expect(second.state == .active)
        second.close()
        second.close()  // closing twice counts once
        #expect(a.kinds(tx.id) == [.rollback])
        #expect(second.state == .aborted)
        expectLogError(.notFound) { _ = try tm.openTransaction(id: tx.id) }
    }

    @Test func droppingTheLastHandleRollsBack() throws {
        let tm = TransactionManager.volatile()
        try tm.recover()
        let a = try ScriptedRM.online(tm, volatile: true)
        func enlistAndDrop() throws -> (GUID, Enlistment) {
            let tx = try tm.createTransaction()
            return (tx.id, try a.enlist(tx))
        }
        let (id, e) = try enlistAndDrop()
        #expect(a.kinds(id) == [.rollback])
        #expect(e.currentState == .aborted)
        #expect(tm.transactionSnapshots().isEmpty)
    }

    @Test func closingAnActiveEnlistmentRollsBack() async throws {
        let tm = TransactionManager.volatile()
        try tm.recover()
        let a = try ScriptedRM.online(tm, volatile: true)
        let b = try ScriptedRM.online(tm, volatile: true)
        let tx = try tm.createTransaction()
        let ea = try a.enlist(tx)
        _ = try b.enlist(tx)
        ea.close()
        #expect(ea.currentState == .closed)
        #expect(a.kinds(tx.id) == [])
        #expect(b.kinds(tx.id) == [.rollback])
        #expect(tx.state == .aborted)
        await expectLogError(.aborted) { try await tx.commit() }
    }

    @Test func closingAPreparedEnlistmentChangesNothing() async throws {
        let tm = TransactionManager.volatile()
        try tm.recover()
        let a = try ScriptedRM.online(tm, volatile: true)
        let tx = try tm.createTransaction()
        let e = try a.enlist(tx)
        let superior = try tx.enlistSuperior()
        #expect(try await superior.prepare() == .prepared)
        e.close()
        #expect(e.currentState == .prepared)
        #expect(tx.state == .prepared)
        try await superior.commit()
        #expect(a.kinds(tx.id) == [.prePrepare, .prepare, .commit])
    }

    @Test func closingTheRMRollsBackItsActiveTransactions() throws {
        let tm = TransactionManager.volatile()
        try tm.recover()
        let a = try ScriptedRM.online(tm, volatile: true)
        let b = try ScriptedRM.online(tm, volatile: true)
        let tx = try tm.createTransaction()
        _ = try a.enlist(tx)
        _ = try b.enlist(tx)
        a.rm.close()
        #expect(a.rm.currentState == .closed)
        #expect(a.kinds(tx.id) == [])
        #expect(b.kinds(tx.id) == [.rollback])
        #expect(tx.state == .aborted)
    }
    /// A timeout longer than the clock can count from now (`.seconds(Int64.max)`, a caller's "never")
    /// trapped the whole process in the timer task's sleep. It sets no timer: the transaction stays
    /// active and commits.
    @Test(arguments: [Duration.seconds(Int64.max), .seconds(Int64(1) << 40)])
    func aTimeoutTooLongToCountSetsNone(_ timeout: Duration) async throws {
        let scratch = TMScratch("huge-timeout")
        defer { scratch.remove() }
        let (log, tm) = try scratch.createOnline()
        defer { try? log.close() }
        let a = try ScriptedRM.online(tm, "a")
        let tx = try tm.createTransaction(timeout: timeout)
        _ = try a.enlist(tx)
        try await Task.sleep(for: .milliseconds(50))  // room for the timer task to start (and trap, before)
        #expect(tx.state == .active)
        try await tx.commit()
        #expect(tx.outcome == .committed)
        withExtendedLifetime(a) {}
    }
}
