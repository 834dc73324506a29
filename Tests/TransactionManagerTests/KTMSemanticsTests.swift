// Behaviours ktm.md describes and docs/TRANSACTIONS.md claims to follow, checked one by one where the
// other suites leave a gap: request-outcome once every vote is in, answers given twice or after a
// rollback overtook them, read-only enlistments that must hear nothing more, single-phase commit with
// a second writer, and recovery of a transaction whose end record is missing.

import Foundation
import LogStore
import Synchronization
import Testing
@testable import TransactionManager

@Suite struct KTMSemanticsTests {
    /// What a handler saw, for checks made after it returned.
    final class Seen: @unchecked Sendable {
        private let lock = NSLock()
        private var values: [String] = []
        func add(_ s: String) { lock.withLock { values.append(s) } }
        var all: [String] { lock.withLock { values } }
    }

    /// Volatile RMs "a" and "b" on a volatile TM, both enlisted in a new transaction (these rules do not
    /// depend on the log).
    static func twoVolatileRMs() throws -> (ScriptedRM, ScriptedRM, Transaction) {
        let tm = TransactionManager.volatile()
        try tm.recover()
        return try twoRMs(tm, volatile: true)
    }

    /// KTM: after PrepareComplete an RM may ask for the outcome at once (TmRequestOutcomeEnlistment); KTM
    /// "may force a rollback if not everyone is prepared". Here everyone is: the last participant asks
    /// right after its own vote, before the commit driver logs the decision. Before, the TM rolled back
    /// a transaction every participant had prepared, and commit() threw `aborted`.
    @Test func requestOutcomeOnceEveryoneVotedDoesNotRollBack() async throws {
        let tm = TransactionManager.volatile()
        try tm.recover()
        let a = try ScriptedRM.online(tm, "a", volatile: true)
        let asked = Seen()
        let b = try tm.createResourceManager(description: "asks", volatile: true) { n in
            guard let e = n.enlistment else { return }
            do {
                switch n.kind {
                case .prePrepare: try e.prePrepareComplete()
                case .prepare:
                    try e.prepareComplete()
                    // The last vote is in; the decision is not written yet.
                    asked.add("\(try e.requestOutcome())")
                case .commit: try e.commitComplete()
                case .rollback: try e.rollbackComplete()
                default: break
                }
            } catch { asked.add("error \(error)") }
        }
        try b.recover()
        let tx = try tm.createTransaction()
        _ = try a.enlist(tx)
        _ = try b.enlist(tx)
        try await tx.commit()
        #expect(tx.outcome == .committed)
        #expect(asked.all == ["undetermined"])
        #expect(a.kinds(tx.id) == [.prePrepare, .prepare, .commit])
    }

    /// KTM: an answer the TM did not request is refused (`STATUS_TRANSACTION_NOT_REQUESTED`). A vote given
    /// twice must not count for a participant that has not voted: the phase would end without it.
    @Test func aVoteGivenTwiceIsRefusedAndCountsOnce() async throws {
        let (a, b, tx) = try Self.twoVolatileRMs()
        a.on(.prepare, .hold)
        b.on(.prepare, .hold)
        let commit = Task { try await tx.commit() }
        #expect(await a.waitFor(.prepare, tx: tx.id))
        #expect(await b.waitFor(.prepare, tx: tx.id))
        try b.release(.prepare)
        let eb = try #require(b.notes.first { $0.kind == .prepare }?.enlistment)
        expectLogError(.invalidState) { try eb.prepareComplete() }
        expectLogError(.invalidState) { try eb.prePrepareComplete() }
        #expect(tx.state == .preparing, "the second vote ended the phase without a's")
        try a.release(.prepare)
        try await commit.value
        #expect(a.kinds(tx.id) == [.prePrepare, .prepare, .commit])
        #expect(b.kinds(tx.id) == [.prePrepare, .prepare, .commit])
        #expect(a.errors == [] && b.errors == [])
    }

    /// An answer through the enlistment of another transaction (an RM mixing up its keys) is refused and
    /// changes neither transaction.
    @Test func anAnswerThroughAnotherTransactionsEnlistmentIsRefused() async throws {
        let tm = TransactionManager.volatile()
        try tm.recover()
        let rm = try ScriptedRM.online(tm, volatile: true)
        let other = try ScriptedRM.online(tm, "other", volatile: true)
        rm.on(.prepare, .hold)
        let tx1 = try tm.createTransaction()
        let tx2 = try tm.createTransaction()
        _ = try rm.enlist(tx1)
        _ = try other.enlist(tx1)
        let e2 = try rm.enlist(tx2)
        let commit = Task { try await tx1.commit() }
        #expect(await rm.waitFor(.prepare, tx: tx1.id))
        for answer in [e2.prepareComplete, e2.prePrepareComplete, e2.commitComplete, e2.rollbackComplete, e2.recover] {
            expectLogError(.invalidState) { try answer() }
        }
        #expect(tx1.state == .preparing)
        #expect(tx2.state == .active && e2.currentState == .active)
        try rm.release(.prepare, tx: tx1.id)
        try await commit.value
        #expect(tx2.state == .active)
        try tx2.rollback()
        #expect(rm.kinds(tx2.id) == [.rollback])
        #expect(rm.errors == [])
    }

    /// KTM: ReadOnlyEnlistment stops notifications. A participant that voted read-only at prepare is not
    /// told the rollback another participant's veto causes, nor named in recovery.
    @Test func readOnlyAtPrepareHearsNothingMoreNotEvenTheRollback() async throws {
        let (a, b, tx) = try Self.twoVolatileRMs()
        a.on(.prepare, .readOnly)
        b.on(.prepare, .veto)
        await expectLogError(.aborted) { try await tx.commit() }
        #expect(a.kinds(tx.id) == [.prePrepare, .prepare])
        #expect(b.kinds(tx.id) == [.prePrepare, .prepare])
        #expect(a.errors == [] && b.errors == [])
    }

    /// Read-only participants are never logged: after a crash between the decision and the last
    /// acknowledgement only the prepared participant gets recover and the commit again.
    @Test func readOnlyIsNotNamedInRecovery() async throws {
        let dir = TMScratch("ktm-read-only-recovery")
        defer { dir.remove() }
        var ids: [GUID] = []
        var txID = GUID.random()
        do {
            let (log, tm) = try dir.createOnline()
            let (a, b, tx) = try twoRMs(tm)
            a.on(.prepare, .readOnly)
            b.on(.commit, .hold)
            txID = tx.id
            ids = [a.id, b.id]
            let commit = Task { try await tx.commit() }
            #expect(await b.waitFor(.commit, tx: tx.id))
            try log.close()  // crash: b never acknowledges
            _ = try? await commit.value
        }
        let (log, tm) = try dir.reopenOnline()
        defer { try? log.close() }
        let a = try ScriptedRM.open(tm, id: ids[0])
        let b = try ScriptedRM.open(tm, id: ids[1])
        try a.rm.recover()
        try b.rm.recover()
        #expect(a.allKinds == [.recoveryComplete, .tmOnline])
        #expect(b.kinds(txID) == [.recover, .commit])
        #expect(a.errors == [] && b.errors == [])
    }

    /// KTM: RollbackTransaction is allowed until the commit decision. A rollback while one participant's
    /// vote is still out rolls back the one that prepared, and the late vote is ignored.
    @Test func rollbackRequestedDuringPrepare() async throws {
        let (a, b, tx) = try Self.twoVolatileRMs()
        b.on(.prepare, .hold)
        let commit = Task { try await tx.commit() }
        #expect(await b.waitFor(.prepare, tx: tx.id))
        try tx.rollback()
        await expectLogError(.aborted) { try await commit.value }
        try b.release(.prepare)
        #expect(await tx.waitForOutcome() == .aborted)
        #expect(a.kinds(tx.id) == [.prePrepare, .prepare, .rollback])
        #expect(b.kinds(tx.id) == [.prePrepare, .prepare, .rollback])
        #expect(a.errors == [] && b.errors == [])
    }

    /// KTM: enlisting once the transaction is no longer active (pre-prepare or later) fails
    /// (`STATUS_TRANSACTION_NOT_ACTIVE`); the commit goes on without the late participant.
    @Test func enlistingAfterCommitStartedIsRefused() async throws {
        let tm = TransactionManager.volatile()
        try tm.recover()
        let late = try ScriptedRM.online(tm, "late", volatile: true)
        let refused = Seen()
        let a = try tm.createResourceManager(description: "enlists late", volatile: true) { n in
            guard let e = n.enlistment else { return }
            if n.kind == .prePrepare, let tx = n.transactionID {
                do { _ = try late.rm.enlist(transactionID: tx) } catch let error as LogError { refused.add(error.code.rawValue) } catch {}
            }
            switch n.kind {
            case .prePrepare: try? e.prePrepareComplete()
            case .prepare: try? e.prepareComplete()
            case .commit: try? e.commitComplete()
            default: break
            }
        }
        try a.recover()
        let tx = try tm.createTransaction()
        _ = try a.enlist(tx)
        try await tx.commit()
        #expect(refused.all == [LogError.Code.invalidState.rawValue])
        #expect(late.kinds(tx.id) == [])
    }
}
