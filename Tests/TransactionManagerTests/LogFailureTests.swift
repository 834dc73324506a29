// The TM when the log under it fails (an fdatasync EIO): what commit() and the other calls see, that
// nothing waits forever, and what recovery makes of it.

import Foundation
import LogStore
import Testing
@testable import TransactionManager
import TxLogTestSupport

@Suite struct LogFailureTests {
    /// A recovered TM on a new log whose data syncs `io` can make fail.
    static func recoveredTM(_ tag: String) throws -> (TMScratch, FailingSyncIO, LogStore, TransactionManager) {
        let dir = TMScratch(tag)
        let io = FailingSyncIO()
        return try removingOnThrow(dir.path) {
            let log = try LogStore.create(at: dir.path, options: TMScratch.options, io: io)
            let tm = try TransactionManager.create(log: log)
            try tm.recover()
            return (dir, io, log, tm)
        }
    }

    /// Fails the log: the next data sync gets EIO. Appends to `stream` so there is something to sync.
    static func failLog(_ io: FailingSyncIO, _ log: LogStore, _ stream: LogStream) {
        io.failSyncs.set(true)
        let lsn = try? stream.append(Array("poison".utf8))
        if let lsn { _ = try? stream.flush(upTo: lsn) }
        #expect(log.isFailed)
    }

    /// The decision is durable and one participant owes its commit acknowledgement when the log fails:
    /// its own commit record can no longer be appended, so it never acknowledges. Before, commit()
    /// (and waitForOutcome()) waited forever on the failed TM.
    @Test(.hangGuard) func aCommitWaitingForAcknowledgementsReturnsWhenTheLogFails() async throws {
        let (dir, io, log, tm) = try Self.recoveredTM("fail-after-decision")
        defer { dir.remove() }
        let failures = ResultBox()
        tm.onFailure { e in failures.set(e.code.rawValue) }
        let (a, b, tx) = try twoRMs(tm)
        b.on(.commit, .hold)
        let commit = BackgroundCall { try await tx.commit() }
        #expect(await b.waitFor(.commit, tx: tx.id))
        Self.failLog(io, log, try #require(a.rm.stream))
        #expect(await eventually { tm.currentState == .failed })
        #expect(await eventually { failures.value == "failed" })
        // Its commit record cannot be appended: it does not acknowledge.
        #expect(throws: LogError.self) { try b.release(.commit, tx: tx.id) }
        let waited = BackgroundCall { await tx.waitForOutcome() }
        await commit.expectSuccess("commit: the decision is durable")
        #expect(await waited.expectSuccess("waitForOutcome()") == .committed)
        // Later calls are refused with the log's error.
        expectLogError(.failed) { _ = try tm.createTransaction() }
        expectLogError(.failed) { _ = try tm.checkpoint() }

        // Recovery: the decision stands, b gets the commit again.
        #expect(throws: LogError.self) { try log.close() }
        io.failSyncs.set(false)
        let log2 = try LogStore.open(at: dir.path, io: io)
        defer { try? log2.close() }
        let tm2 = try TransactionManager.open(log: log2)
        try tm2.recover()
        let snaps = tm2.transactionSnapshots()
        #expect(snaps.count == 1 && snaps.first?.outcome == .committed, "\(snaps)")
    }

    /// The log fails while a participant has not answered prepare (it cannot log its prepare record, so
    /// it never will): no decision can be logged, so commit() throws `failed` and the transaction rolls
    /// back, as recovery presumes. Before, commit() waited forever.
    @Test(.hangGuard) func aCommitWaitingForAPrepareAnswerFailsWhenTheLogFails() async throws {
        let (dir, io, log, tm) = try Self.recoveredTM("fail-in-prepare")
        defer { dir.remove() }
        let (a, b, tx) = try twoRMs(tm)
        b.on(.prepare, .hold)
        let commit = BackgroundCall { try await tx.commit() }
        #expect(await b.waitFor(.prepare, tx: tx.id))
        Self.failLog(io, log, try #require(a.rm.stream))
        #expect(await eventually { tm.currentState == .failed })
        #expect(throws: LogError.self) { try b.release(.prepare, tx: tx.id) }
        let error = await commit.expectLogError(.failed, "commit")
        #expect(error?.message.contains("rolled back") == true, "\(String(describing: error))")
        #expect(tx.outcome == .aborted)
        #expect(a.kinds(tx.id).last == .rollback, "\(a.kinds(tx.id))")

        #expect(throws: LogError.self) { try log.close() }
        io.failSyncs.set(false)
        let log2 = try LogStore.open(at: dir.path, io: io)
        defer { try? log2.close() }
        let tm2 = try TransactionManager.open(log: log2)
        try tm2.recover()
        #expect(tm2.transactionSnapshots().isEmpty, "no decision reached the log: presumed abort")
    }

    /// The log fails while the one RM of a single-phase commit has not answered: the outcome is that
    /// RM's, so commit() throws `failed` saying it is not known. Before, commit() waited forever.
    @Test(.hangGuard) func aSinglePhaseCommitWaitingForItsRMFailsWhenTheLogFails() async throws {
        let (dir, io, log, tm) = try Self.recoveredTM("fail-in-single-phase")
        defer { dir.remove() }
        let a = try ScriptedRM.online(tm, "a")
        let tx = try tm.createTransaction()
        _ = try a.enlist(tx, mask: .all)
        a.on(.singlePhaseCommit, .hold)
        let commit = BackgroundCall { try await tx.commit() }
        #expect(await a.waitFor(.singlePhaseCommit, tx: tx.id))
        Self.failLog(io, log, try #require(a.rm.stream))
        #expect(await eventually { tm.currentState == .failed })
        #expect(throws: LogError.self) { try a.release(.singlePhaseCommit, tx: tx.id) }
        let error = await commit.expectLogError(.failed, "commit")
        #expect(error?.message.contains("not known") == true, "\(String(describing: error))")
        #expect(throws: LogError.self) { try log.close() }
    }

    /// The flush of the decision record fails: the decision may or may not be durable, so the outcome is
    /// not known here. Before, `outcome` (and `waitForOutcome()`) said committed while `commit()` threw
    /// `failed`, and recovery may well find no decision and presume abort.
    @Test(.hangGuard) func aDecisionWhoseFlushFailsLeavesTheOutcomeUndetermined() async throws {
        let (dir, io, log, tm) = try Self.recoveredTM("fail-decision-flush")
        defer { dir.remove() }
        let (a, b, tx) = try twoRMs(tm)  // kept: a ScriptedRM's handler holds it weakly
        io.failSyncs.set(true)
        let commit = BackgroundCall { try await tx.commit() }
        await commit.expectLogError(.failed, "commit")
        #expect(log.isFailed)
        #expect(tx.outcome == .undetermined)
        #expect(await BackgroundCall { await tx.waitForOutcome() }.expectSuccess("waitForOutcome()") == .undetermined)
        #expect(a.kinds(tx.id) == [.prePrepare, .prepare] && b.kinds(tx.id) == [.prePrepare, .prepare])
        #expect(throws: LogError.self) { try log.close() }
    }
}
