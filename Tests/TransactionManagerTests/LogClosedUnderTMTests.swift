// The log closed under a live TM (`log.close()` without `tm.close()` first). Nothing can be logged any
// more, so a participant that still owes an answer (a prepare vote, a commit-complete) never gives one:
// every call waiting on the TM must end, saying what is known, and recovery does what it said.

import Foundation
import LogStore
import Testing
@testable import TransactionManager

@Suite("The log closed under a live TM")
struct LogClosedUnderTMTests {
    /// The decision is durable and the commit notifications are out; `b` cannot log its commit record
    /// in the closed log, so it never acknowledges. Before, `commit()` and `waitForOutcome()` waited
    /// for ever (until the TM was closed, which nobody does once the log is gone).
    @Test("a commit waiting for acknowledgements throws closed saying it committed; recovery sends the commit", .hangGuard)
    func commitWaitingForAcknowledgements() async throws {
        let dir = TMScratch("log-closed-acks")
        defer { dir.remove() }
        let (log, tm) = try dir.createOnline()
        let (a, b, tx) = try twoRMs(tm)
        b.on(.commit, .hold)
        let commit = BackgroundCall { try await tx.commit() }
        #expect(await b.waitFor(.commit, tx: tx.id))
        let waited = BackgroundCall { await tx.waitForOutcome() }
        try log.close()
        #expect(throws: LogError.self) { try b.release(.commit, tx: tx.id) }
        let error = await commit.expectLogError(.closed, "the commit")
        #expect(error?.message.contains("committed") == true, "\(String(describing: error))")
        #expect(tx.outcome == .committed)
        #expect(await waited.expectSuccess("waitForOutcome()") == .committed)
        // The TM let go when its log closed: later calls say so, and its own close writes nothing.
        expectLogError(.notOnline) { _ = try tm.createTransaction() }
        #expect(tm.currentState == .offline)
        try tm.close()

        let ids = [a.id, b.id]
        let (log2, tm2) = try dir.reopenOnline()
        defer { try? log2.close() }
        #expect(tm2.lastRecovery.committing == 1)
        let b2 = try ScriptedRM.open(tm2, id: ids[1])
        try b2.rm.recover()
        #expect(await eventually { b2.kinds(tx.id).contains(.commit) }, "\(b2.kinds(tx.id))")
        withExtendedLifetime((a, b)) {}
    }

    /// `b` cannot log its prepare record, so it never votes: no decision can be logged either. The
    /// commit throws `closed` (presumed abort), as when the TM is closed in prepare. Before, it waited for ever.
    @Test("a commit waiting for a prepare vote throws closed; recovery knows no such transaction", .hangGuard)
    func commitWaitingForAVote() async throws {
        let dir = TMScratch("log-closed-vote")
        defer { dir.remove() }
        let (log, tm) = try dir.createOnline()
        let (a, b, tx) = try twoRMs(tm)
        b.on(.prepare, .hold)
        let commit = BackgroundCall { try await tx.commit() }
        #expect(await b.waitFor(.prepare, tx: tx.id))
        try log.close()
        #expect(throws: LogError.self) { try b.release(.prepare, tx: tx.id) }
        let error = await commit.expectLogError(.closed, "the commit")
        #expect(error?.message.contains("presumed abort") == true, "\(String(describing: error))")
        #expect(error?.message.contains("log was closed") == true, "\(String(describing: error))")
        #expect(await BackgroundCall { await tx.waitForOutcome() }.expectSuccess("waitForOutcome()") == .undetermined)
        expectLogError(.closed) { try tx.rollback() }

        let (log2, tm2) = try dir.reopenOnline()
        defer { try? log2.close() }
        #expect(tm2.transactionSnapshots().isEmpty)
        withExtendedLifetime((a, b)) {}
    }

    /// A superior's prepare waiting for a vote, and a superior's commit waiting for an acknowledgement:
    /// both end with `closed` when the log closes. Before, both waited for ever.
    @Test("a superior's prepare and commit waiting on a participant throw closed", .hangGuard)
    func superiorCallsEnd() async throws {
        let dir = TMScratch("log-closed-superior")
        defer { dir.remove() }
        let (log, tm) = try dir.createOnline()
        let (a, b, tx1) = try twoRMs(tm)
        let tx2 = try tm.createTransaction()
        _ = try a.enlist(tx2)
        _ = try b.enlist(tx2)
        let s1 = try tx1.enlistSuperior()
        let s2 = try tx2.enlistSuperior()
        #expect(try await s2.prepare() == .prepared)
        b.on(.prepare, .hold, tx: tx1.id)
        b.on(.commit, .hold, tx: tx2.id)
        let prepare = BackgroundCall { try await s1.prepare() }
        let commit = BackgroundCall { try await s2.commit() }
        #expect(await b.waitFor(.prepare, tx: tx1.id))
        #expect(await b.waitFor(.commit, tx: tx2.id))
        try log.close()
        let prepareError = await prepare.expectLogError(.closed, "the superior's prepare")
        #expect(prepareError?.message.contains("log was closed") == true, "\(String(describing: prepareError))")
        let commitError = await commit.expectLogError(.closed, "the superior's commit")
        #expect(commitError?.message.contains("committed") == true, "\(String(describing: commitError))")
        #expect(await BackgroundCall { await s2.waitForOutcome() }.expectSuccess("the superior's waitForOutcome()") == .committed)
        withExtendedLifetime((a, b)) {}
    }

    /// The log closed between the append of a superior's prepared record and its flush: the close
    /// flushed it, so the transaction is prepared and recovery finds it in doubt. Before, `prepare()`
    /// threw the flush's bare "the log is closed", which did not say the prepared state was durable.
    @Test("a superior's prepare whose prepared record the log's close made durable says so; recovery finds it in doubt", .hangGuard)
    func preparedRecordMadeDurableByTheClose() async throws {
        let dir = TMScratch("log-closed-prepared")
        defer { dir.remove() }
        let (log, tm) = try dir.createOnline()
        let (a, b, tx) = try twoRMs(tm)
        let superior = try tx.enlistSuperior()
        tm.afterPreparedAppendForTesting = { try? log.close() }
        let error = await BackgroundCall { try await superior.prepare() }.expectLogError(.closed, "the superior's prepare")
        tm.afterPreparedAppendForTesting = nil
        #expect(error?.message.contains("in doubt") == true, "the error does not say the prepared record is durable: \(String(describing: error))")
        expectLogError(.closed) { try superior.rollback() }

        let (log2, tm2) = try dir.reopenOnline()
        defer { try? log2.close() }
        #expect(tm2.inDoubtTransactions().map(\.id) == [tx.id])
        withExtendedLifetime((a, b)) {}
    }

    /// The log closed between the append of `resolve`'s forced record and its flush: the close flushed
    /// it, so recovery applies the forced outcome. Before, `resolve` threw the flush's bare "the log is
    /// closed", which did not say the forced outcome was durable.
    @Test("a resolve whose forced record the log's close made durable says so; recovery applies it", .hangGuard)
    func forcedRecordMadeDurableByTheClose() async throws {
        let dir = TMScratch("log-closed-forced")
        defer { dir.remove() }
        let (log, tm) = try dir.createOnline()
        let (a, tx, superior) = try await preparedUnderSuperior(tm)
        tm.afterForcedAppendForTesting = { try? log.close() }
        let error = await BackgroundCall { try await tm.resolve(tx.id, action: .commit, actor: "ops") }.expectLogError(.closed, "the resolve")
        tm.afterForcedAppendForTesting = nil
        #expect(error?.message.contains("durable") == true, "the error does not say the forced record is durable: \(String(describing: error))")

        let (log2, tm2) = try dir.reopenOnline()
        defer { try? log2.close() }
        #expect(tm2.transactionSnapshots().map(\.outcome) == [.committed])
        #expect(tm2.forcedOutcomes.map(\.transaction) == [tx.id])
        withExtendedLifetime((a, superior)) {}
    }

    /// An RM reading `notifications` (no handler): the sequence finishes when the log closes under its
    /// TM, as it does when the TM closes. Before, the reader waited for ever.
    @Test("an RM's notification sequence finishes when the log closes", .hangGuard)
    func notificationSequenceFinishes() async throws {
        let dir = TMScratch("log-closed-sequence")
        defer { dir.remove() }
        let (log, tm) = try dir.createOnline()
        let rm = try tm.createResourceManager(description: "reader")
        try rm.recover()
        let reader = BackgroundCall { () -> Int in
            var count = 0
            for await _ in rm.notifications { count += 1 }
            return count
        }
        try log.close()
        #expect(await reader.expectSuccess("the notification sequence") == 2)  // recovery-complete, tm-online
        #expect(rm.currentState == .closed)
    }

    /// The log closed while `recover()` ran (here from its progress callback, after the scan): the
    /// close stopped the TM (offline, its table let go), and recovery then installed the transactions
    /// it had read and set the TM online over the closed log. `recover()` returned, `currentState` said
    /// online, the recovered transaction stayed in a table nothing would detach, and `close()` threw.
    @Test("a log closed while recover() runs ends it with closed; the TM is not online and holds nothing", .hangGuard)
    func logClosedDuringRecovery() async throws {
        let dir = TMScratch("log-closed-recovery")
        defer { dir.remove() }
        do {
            // A committed transaction b never acknowledged: recovery has one to install.
            let (log, tm) = try dir.createOnline()
            let (a, b, tx) = try twoRMs(tm)
            b.on(.commit, .hold)
            let commit = BackgroundCall { try await tx.commit() }
            #expect(await b.waitFor(.commit, tx: tx.id))
            try log.close()
            _ = await commit.expectLogError(.closed, "the commit")
            try tm.close()
            withExtendedLifetime((a, b)) {}
        }
        let log = try LogStore.open(at: dir.path)
        let tm = try TransactionManager.open(log: log)
        expectLogError(.closed) { try tm.recover(progress: { _ in try? log.close() }) }
        #expect(tm.currentState == .offline)
        #expect(tm.transactionSnapshots().isEmpty)
        expectLogError(.notOnline) { _ = try tm.createTransaction() }
        try tm.close()

        // The log is as the first session left it.
        let (log2, tm2) = try dir.reopenOnline()
        defer { try? log2.close() }
        #expect(tm2.lastRecovery.committing == 1)
    }
}
