// Closing or terminating a TM while transactions are in flight: every waiting call returns (none
// hangs on an RM that will never answer), it says what recovery will make of the transaction, nothing
// more is sent or logged, recovery then does what the call said, and nothing stays in memory.

import Foundation
import LogStore
import Testing
@testable import TransactionManager

@Suite("Closing a TM with transactions in flight")
struct CloseWithTransactionsInFlightTests {
    /// How the TM goes away: `close()` (final checkpoint) or terminate's `stop()` (writes nothing).
    enum Ending: String, CaseIterable, Sendable {
        case close, terminate
        func end(_ tm: TransactionManager) throws {
            switch self {
            case .close: try tm.close()
            case .terminate: tm.stop()
            }
        }
    }

    /// Two durable RMs on a fresh log; `b` holds notifications of `kind`.
    private func twoRMs(_ scratch: TMScratch, holding kind: TransactionNotification.Kind)
        throws -> (LogStore, TransactionManager, ScriptedRM, ScriptedRM)
    {
        let (log, tm) = try scratch.createOnline()
        let a = try ScriptedRM.online(tm, "a")
        let b = try ScriptedRM.online(tm, "b")
        b.on(kind, .hold)
        return (log, tm, a, b)
    }

    /// A two-RM transaction whose commit is running and waits for `b`'s answer to `kind`.
    private struct InFlight {
        let log: LogStore
        let tm: TransactionManager
        let a: ScriptedRM
        let b: ScriptedRM
        let tx: Transaction
        let commit: BackgroundCall<Void>
    }

    private func commitWaiting(on kind: TransactionNotification.Kind, _ scratch: TMScratch) async throws -> InFlight {
        let (log, tm, a, b) = try twoRMs(scratch, holding: kind)
        let tx = try tm.createTransaction()
        _ = try a.enlist(tx)
        _ = try b.enlist(tx)
        let commit = BackgroundCall { try await tx.commit() }
        #expect(await b.waitFor(kind))
        return InFlight(log: log, tm: tm, a: a, b: b, tx: tx, commit: commit)
    }

    @Test("a commit waiting for a prepare answer throws closed; recovery rolls the transaction back", arguments: Ending.allCases)
    func undecidedCommit(ending: Ending) async throws {
        let scratch = TMScratch("close-undecided")
        defer { scratch.remove() }
        let f = try await commitWaiting(on: .prepare, scratch)
        let (log, tm, a, b, tx) = (f.log, f.tm, f.a, f.b, f.tx)
        try ending.end(tm)
        let tmEnd = try #require(tm.stream).lastLSN
        let error = await f.commit.expectLogError(.closed, "commit")
        #expect(error?.message.contains("presumed abort") == true, "\(String(describing: error))")
        // Every later call on it says the same; a late answer from the closed RM is refused.
        expectLogError(.closed) { try tx.rollback() }
        #expect(await BackgroundCall { await tx.waitForOutcome() }.expectSuccess("waitForOutcome") == .undetermined)
        #expect(throws: LogError.self) { try b.release(.prepare) }
        #expect(try #require(tm.stream).lastLSN == tmEnd, "nothing more is logged for it")
        #expect(a.kinds(tx.id) == [.prePrepare, .prepare], "no notification after the TM went away")
        try log.close()

        let (log2, tm2) = try scratch.reopenOnline()
        defer { try? log2.close() }
        let a2 = try ScriptedRM.open(tm2, id: a.id)
        try a2.rm.recover()
        // No decision was logged: recovery knows no such transaction, which means aborted (presumed
        // abort); `a` rolls back its own prepare record when it asks.
        #expect(tm2.transactionSnapshots().isEmpty)
        #expect(a2.kinds(tx.id) == [])
        #expect(try !tmRecordKinds(tm2).contains(.outcome))
        #expect(try a2.ownRecords() == ["prepare \(tx.id)"])
    }

    @Test("a commit waiting for commit-complete returns (the decision is durable); recovery sends the commit again",
          arguments: Ending.allCases)
    func decidedCommit(ending: Ending) async throws {
        let scratch = TMScratch("close-decided")
        defer { scratch.remove() }
        let f = try await commitWaiting(on: .commit, scratch)
        let (log, tm, b, tx) = (f.log, f.tm, f.b, f.tx)
        try ending.end(tm)
        await f.commit.expectSuccess("commit (its decision was durable)")
        #expect(tx.outcome == .committed)
        #expect(await BackgroundCall { await tx.waitForOutcome() }.expectSuccess("waitForOutcome") == .committed)
        #expect(throws: LogError.self) { try b.release(.commit) }
        #expect(!(try tmRecordKinds(tm)).contains(.end), "no end record: b never acknowledged")
        try log.close()

        let (log2, tm2) = try scratch.reopenOnline()
        defer { try? log2.close() }
        let b2 = try ScriptedRM.open(tm2, id: b.id)
        try b2.rm.recover()
        #expect(b2.kinds(tx.id) == [.recover, .commit])
    }

    @Test("a superior's prepare waiting for an answer throws closed, and the superior's other calls too")
    func superiorPrepare() async throws {
        let scratch = TMScratch("close-superior")
        defer { scratch.remove() }
        let (log, tm, a, b) = try twoRMs(scratch, holding: .prepare)
        defer { try? log.close() }
        let tx = try tm.createTransaction()
        _ = try a.enlist(tx)
        _ = try b.enlist(tx)
        let superior = try tx.enlistSuperior()
        let prepare = BackgroundCall { _ = try await superior.prepare() }
        #expect(await b.waitFor(.prepare))
        try tm.close()
        await prepare.expectLogError(.closed, "the superior's prepare")
        await expectLogError(.closed) { try await superior.commit() }
        expectLogError(.closed) { try superior.rollback() }
        #expect(await BackgroundCall { await superior.waitForOutcome() }.expectSuccess("waitForOutcome") == .undetermined)
    }

    @Test("a pending timeout does nothing once the TM is closed")
    func timeoutAfterClose() async throws {
        let scratch = TMScratch("close-timeout")
        defer { scratch.remove() }
        let (log, tm, a, _) = try twoRMs(scratch, holding: .prepare)
        defer { try? log.close() }
        let tx = try tm.createTransaction(timeout: .milliseconds(50))
        _ = try a.enlist(tx)
        try tm.close()
        let lastLSN = log.info().lastLSN
        try await Task.sleep(for: .milliseconds(200))
        #expect(log.info().lastLSN == lastLSN, "nothing is logged when the timeout would have fired")
        #expect(a.kinds(tx.id) == [], "no rollback notification")
        #expect(tx.state == .active)
    }

    @Test("no checkpoint is written once the TM has let go of its transactions")
    func noCheckpointAfterClose() throws {
        let scratch = TMScratch("close-checkpoint")
        defer { scratch.remove() }
        let (log, tm) = try scratch.createOnline()
        defer { try? log.close() }
        try tm.close()
        expectLogError(.closed) { try tm.checkpoint() }
    }

    @Test("a TM closed under an unfinished transaction is freed with its RMs and log", arguments: Ending.allCases)
    func closedWithTransactionIsFreed(ending: Ending) async throws {
        let scratch = TMScratch("close-freed")
        defer { scratch.remove() }
        let watch = ClosedObjectsMemoryTests.Watch()
        do {
            let f = try await commitWaiting(on: .prepare, scratch)
            watch.log = f.log
            watch.tm = f.tm
            watch.rm = f.b.rm
            try ending.end(f.tm)
            _ = await f.commit.result()
            try f.log.close()
        }
        #expect(await eventually { watch.rm == nil && watch.tm == nil && watch.log == nil },
                "still in memory: rm \(watch.rm != nil), tm \(watch.tm != nil), log \(watch.log != nil)")
    }
}
