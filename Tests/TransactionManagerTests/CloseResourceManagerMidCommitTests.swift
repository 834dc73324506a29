// Closing a resource manager while a transaction still owes it an outcome: the commit does not wait
// for an RM that may never come back, the outcome stays owed, and the RM gets it when it is opened and
// recovered again in the same process. A volatile RM keeps nothing, so nothing stays owed to it. An RM
// that closes in the middle of its single-phase commit takes the outcome with it.

import Foundation
import LogStore
import Synchronization
import Testing
@testable import TransactionManager

@Suite("Closing an RM that is owed an outcome")
struct CloseResourceManagerMidCommitTests {
    @Test("a commit waiting for a closed RM's commit-complete returns; the RM reopened gets the commit again")
    func durableRMClosedDuringCommit() async throws {
        let scratch = TMScratch("rm-close-commit")
        defer { scratch.remove() }
        let (log, tm) = try scratch.createOnline()
        defer { try? log.close() }
        let (a, b, tx) = try twoRMs(tm)
        b.on(.commit, .hold)
        let commit = BackgroundCall { try await tx.commit() }
        #expect(await b.waitFor(.commit))
        #expect(!commit.isFinished)
        b.rm.close()
        await commit.expectSuccess("commit waiting for the closed RM")
        #expect(tx.state == .committing, "b still owes its acknowledgement")
        let outcome = BackgroundCall { await tx.waitForOutcome() }
        try await Task.sleep(for: .milliseconds(50))
        #expect(!outcome.isFinished, "waitForOutcome waits for every participant")
        #expect(throws: LogError.self) { try b.release(.commit) }

        let b2 = try ScriptedRM.open(tm, id: b.id)
        try b2.rm.recover()
        #expect(b2.kinds(tx.id) == [.recover, .commit])
        #expect(await outcome.expectSuccess("waitForOutcome once the reopened RM acknowledged") == .committed)
        #expect(tm.transactionSnapshots().isEmpty)
        #expect(try tmRecordKinds(tm).suffix(2) == [.outcome, .end])
        #expect(a.errors == [] && b2.errors == [])
    }

    @Test("a superior's commit after a prepared RM closed returns; the RM reopened gets the commit")
    func durableRMClosedWhilePrepared() async throws {
        let scratch = TMScratch("rm-close-prepared")
        defer { scratch.remove() }
        let (log, tm) = try scratch.createOnline()
        defer { try? log.close() }
        let (a, b, tx) = try twoRMs(tm)
        let superior = try tx.enlistSuperior()
        #expect(try await superior.prepare() == .prepared)
        b.rm.close()
        let commit = BackgroundCall { try await superior.commit() }
        await commit.expectSuccess("the superior's commit waiting for the closed RM")
        #expect(b.kinds(tx.id) == [.prePrepare, .prepare], "nothing is sent to the closed RM")
        #expect(a.kinds(tx.id) == [.prePrepare, .prepare, .commit])
        let b2 = try ScriptedRM.open(tm, id: b.id)
        try b2.rm.recover()
        #expect(b2.kinds(tx.id) == [.recover, .commit])
        #expect(await eventually { tm.transactionSnapshots().isEmpty })
    }

    /// Before, the prepared enlistment of the closed RM kept pointing at it: the commit was sent to the
    /// closed RM, `commit()` waited for its answer for ever, and the reopened RM was never told.
    @Test("an RM closed after it prepared, before the decision: commit returns; the RM reopened gets the commit")
    func closedAfterPreparingBeforeTheDecision() async throws {
        let scratch = TMScratch("rm-close-prepared-undecided")
        defer { scratch.remove() }
        let (log, tm) = try scratch.createOnline()
        defer { try? log.close() }
        let (a, b, tx) = try twoRMs(tm)
        b.on(.prepare, .hold)
        let commit = BackgroundCall { try await tx.commit() }
        #expect(await b.waitFor(.prepare))
        #expect(a.kinds(tx.id) == [.prePrepare, .prepare])  // a prepared; b holds its vote
        a.rm.close()
        try b.release(.prepare)
        await commit.expectSuccess("commit with a prepared RM closed before the decision")
        #expect(a.kinds(tx.id) == [.prePrepare, .prepare], "nothing more is sent to the closed RM")
        #expect(b.kinds(tx.id) == [.prePrepare, .prepare, .commit])
        let a2 = try ScriptedRM.open(tm, id: a.id)
        try a2.rm.recover()
        #expect(a2.kinds(tx.id) == [.recover, .commit])
        #expect(await BackgroundCall { await tx.waitForOutcome() }.expectSuccess("waitForOutcome") == .committed)
    }

    @Test("a volatile RM closed while owed a commit-complete: the transaction finishes without it")
    func volatileRMClosedDuringCommit() async throws {
        let tm = TransactionManager.volatile()
        try tm.recover()
        let (a, b, tx) = try twoRMs(tm, volatile: true)
        b.on(.commit, .hold)
        let commit = BackgroundCall { try await tx.commit() }
        #expect(await b.waitFor(.commit))
        b.rm.close()
        await commit.expectSuccess("commit waiting for the closed volatile RM")
        let outcome = BackgroundCall { await tx.waitForOutcome() }
        #expect(await outcome.expectSuccess("waitForOutcome without the closed volatile RM") == .committed)
        #expect(tx.state == .committed)
        #expect(tm.transactionSnapshots().isEmpty)
        #expect(a.kinds(tx.id) == [.prePrepare, .prepare, .commit])
    }

    @Test("an RM that closes without answering its single-phase commit: commit throws closed, the TM forgets it")
    func singlePhaseRMClosed() async throws {
        let scratch = TMScratch("rm-close-single")
        defer { scratch.remove() }
        let (log, tm) = try scratch.createOnline()
        defer { try? log.close() }
        let writer = try ScriptedRM.online(tm, "writer")
        writer.on(.singlePhaseCommit, .hold)
        let tx = try tm.createTransaction()
        _ = try writer.enlist(tx, mask: .all)
        let records = try tmRecordKinds(tm)
        let commit = BackgroundCall { try await tx.commit() }
        #expect(await writer.waitFor(.singlePhaseCommit))
        writer.rm.close()
        let error = await commit.expectLogError(.closed, "the single-phase commit")
        #expect(error?.message.contains("single-phase") == true, "\(String(describing: error))")
        #expect(tx.state == .failed)
        #expect(await BackgroundCall { await tx.waitForOutcome() }.expectSuccess("waitForOutcome") == .undetermined)
        #expect(tm.transactionSnapshots().isEmpty, "the TM logged nothing for it and owes nothing")
        #expect(try tmRecordKinds(tm) == records)
        #expect(throws: LogError.self) { try writer.release(.singlePhaseCommit) }
    }
    /// `b` takes only the outcome (mask commit, no prepare) and closes once the commit is decided
    /// (test hook): nothing is owed to it. Before, its enlistment kept the closed RM, the commit was
    /// sent to its handler after `close()` returned, and the commit waited for that handler's answer
    /// (for ever, had it not given one).
    @Test("an outcome-only RM closed after the decision gets no commit, and the commit does not wait for it", .hangGuard)
    func outcomeOnlyRMClosedAfterTheDecision() async throws {
        let scratch = TMScratch("rm-close-outcome-only")
        defer { scratch.remove() }
        let (log, tm) = try scratch.createOnline()
        defer { try? log.close() }
        let a = try ScriptedRM.online(tm, "a")
        let b = try ScriptedRM.online(tm, "b")
        b.on(.commit, .hold)
        let tx = try tm.createTransaction()
        _ = try a.enlist(tx)
        let observer = try b.enlist(tx, mask: [.commit])
        let rmB: ResourceManager = b.rm
        tm.afterDecisionAppendForTesting = { rmB.close() }
        await BackgroundCall { try await tx.commit() }.expectSuccess("the commit")
        tm.afterDecisionAppendForTesting = nil
        #expect(b.kinds(tx.id).isEmpty, "the closed RM's handler got \(b.kinds(tx.id))")
        #expect(observer.currentState == .closed)
        #expect(tx.outcome == .committed)
        #expect(tm.transactionSnapshots().isEmpty)
        withExtendedLifetime((a, b)) {}
    }
    /// `b`, owed the commit of two transactions after a restart, closes itself from its handler on the
    /// first recover notification. Before, `recover()` went on to deliver the second recover, then
    /// recovery-complete and tm-online, to the closed RM's handler after its `close()` had returned.
    /// Both commits stay owed: `b` opened again gets both.
    @Test("an RM closed by its own handler during recover() gets nothing more; the outcomes stay owed", .hangGuard)
    func rmClosedByItsHandlerDuringRecovery() async throws {
        let scratch = TMScratch("rm-close-in-recover")
        defer { scratch.remove() }
        let bID: GUID
        var txIDs: [GUID] = []
        do {
            let (log, tm) = try scratch.createOnline()
            let a = try ScriptedRM.online(tm, "a")
            let b = try ScriptedRM.online(tm, "b")
            b.on(.commit, .hold)
            var commits: [BackgroundCall<Void>] = []
            for _ in 0..<2 {
                let tx = try tm.createTransaction()
                _ = try a.enlist(tx)
                _ = try b.enlist(tx)
                commits.append(BackgroundCall { try await tx.commit() })
                #expect(await b.waitFor(.commit, tx: tx.id))
                txIDs.append(tx.id)
            }
            try log.close()  // b never acknowledges: both commits are owed to it after the restart
            for c in commits { _ = await c.expectLogError(.closed, "the commit") }
            bID = b.id
            try tm.close()
            withExtendedLifetime((a, b)) {}
        }
        let (log, tm) = try scratch.reopenOnline()
        defer { try? log.close() }
        #expect(tm.lastRecovery.committing == 2)
        let closed = Atomic<Bool>(false)
        let afterClose = Mutex<[TransactionNotification.Kind]>([])
        let box = Mutex<ResourceManager?>(nil)
        let rm = try tm.openResourceManager(id: bID) { n in
            if closed.load(ordering: .sequentiallyConsistent) { afterClose.withLock { $0.append(n.kind) } }
            guard n.kind == .recover, let rm = box.withLock({ $0 }) else { return }
            rm.close()
            closed.store(true, ordering: .sequentiallyConsistent)
        }
        box.withLock { $0 = rm }
        try rm.recover()
        let closedInHandler = closed.load(ordering: .sequentiallyConsistent)
        #expect(closedInHandler)
        #expect(afterClose.withLock { $0 }.isEmpty, "the closed RM's handler got \(afterClose.withLock { $0 })")

        let b2 = try ScriptedRM.open(tm, id: bID)
        try b2.rm.recover()
        #expect(await eventually { txIDs.allSatisfy { b2.kinds($0) == [.recover, .commit] } }, "\(txIDs.map { b2.kinds($0) })")
        withExtendedLifetime(b2) {}
    }
}
