// Forced (heuristic) outcomes: TransactionManager.resolve on transactions recovered in doubt or owed an
// outcome. Each writes an audited `forced` record and forces it before anything is sent.

import Foundation
import LogStore
import Synchronization
import Testing
import TxLogTestSupport
@testable import TransactionManager

@Suite struct ResolveTests {
    static func nowNanos() -> UInt64 { UInt64(Date().timeIntervalSince1970 * 1e9) }

    /// The last forced record of the TM stream.
    static func lastForced(_ tm: TransactionManager) throws -> (tx: GUID, action: ForcedAction, nanos: UInt64, actor: String, reason: String)? {
        for r in try tmRecords(tm).reversed() {
            if case .forced(let tx, let action, let nanos, let actor, let reason) = r { return (tx, action, nanos, actor, reason) }
        }
        return nil
    }

    @Test func forcedCommitOfAnInDoubtTransaction() async throws {
        let dir = TMScratch("resolve-commit")
        defer { dir.remove() }
        let c = try await CrashScenario.whilePreparedUnderSuperior(dir)
        let (log, tm) = try dir.reopenOnline()
        defer { try? log.close() }
        let a = try ScriptedRM.open(tm, id: c.rms[0])
        try a.rm.recover()
        #expect(a.kinds(c.tx) == [.recover, .inDoubt])
        let syncs = syncCount(log)
        let before = Self.nowNanos()
        try await tm.resolve(c.tx, action: .commit, actor: "operator", reason: "superior is gone")
        let after = Self.nowNanos()
        #expect(syncCount(log) - syncs == 1)
        #expect(a.kinds(c.tx) == [.recover, .inDoubt, .commit])
        #expect(tm.transactionSnapshots().isEmpty)
        #expect(try tmRecordKinds(tm) == [.rmRegistered, .prepared, .forced, .end])
        let f = try #require(try Self.lastForced(tm))
        #expect(f.tx == c.tx)
        #expect(f.action == .commit)
        #expect(f.actor == "operator")
        #expect(f.reason == "superior is gone")
        #expect(f.nanos >= before - 1_000_000_000 && f.nanos <= after + 1_000_000_000)
        #expect(tm.virtualClock == 2)  // a forced commit is a commit: the clock moves
    }

    /// A forced record the log refuses (log full) leaves the transaction as it was: before, the outcome
    /// had already changed, its notifications were dropped (waitForOutcome never returned), a rollback
    /// was refused as "already committed", and the next checkpoint made the refused commit durable.
    @Test func resolveWhoseRecordIsRefusedChangesNothing() async throws {
        let dir = TMScratch("resolve-refused")
        defer { dir.remove() }
        let (log, tm) = try dir.createOnline()
        let (a, tx, _) = try await preparedUnderSuperior(tm)

        // Fill the log behind a reservation: plain appends (the forced record) then get log-full. The
        // filler pins the tail, so the TM's checkpoint (its tail-pinned handler) frees nothing, and its
        // records do not compress, so sealing the open block frees nothing either.
        let reservation = try log.createStream("reservation")
        let filler = try log.createStream("filler")
        try reservation.reserve(recordSizes: [Int](repeating: 0, count: 50))
        var random = SplitMix64(seed: 7)
        for size in [3000, 100, 0] {
            while true {
                let bytes = (0..<size).map { _ in UInt8(truncatingIfNeeded: random.next()) }
                do { _ = try filler.append(bytes) } catch let e as LogError where e.code == .logFull { break }
            }
        }
        await expectLogError(.logFull) { try await tm.resolve(tx.id, action: .commit, reason: "refused") }
        #expect(tx.outcome == .undetermined)
        #expect(tm.transactionSnapshots().first { $0.id == tx.id }?.state == .prepared)
        #expect(tm.forcedOutcomes.isEmpty)
        #expect(a.kinds(tx.id) == [.prePrepare, .prepare])

        // With room again, a checkpoint still holds it prepared, and the operator may choose either way.
        try reservation.release(recordSizes: [Int](repeating: 0, count: 50))
        try tm.checkpoint()
        #expect(try tmCheckpoint(tm).transactions.first { $0.id == tx.id }?.outcome == .undetermined)
        try await tm.resolve(tx.id, action: .rollback, reason: "second try")
        let wait = BackgroundCall { await tx.waitForOutcome() }
        #expect(await wait.expectSuccess("waitForOutcome after the forced rollback") == .aborted)
        #expect(a.kinds(tx.id) == [.prePrepare, .prepare, .rollback])
        try log.close()  // crash: no tm.close()
        let (log2, tm2) = try dir.reopenOnline()
        defer { try? log2.close() }
        #expect(tm2.transactionSnapshots().first { $0.id == tx.id } == nil)
        #expect(tm2.forcedOutcomes.map(\.action) == [.rollback])
    }

    /// While a forced outcome is being written, the superior cannot decide, and a second resolve is refused.
    @Test func superiorCannotDecideWhileAForcedOutcomeIsWritten() async throws {
        let dir = TMScratch("resolve-forcing")
        defer { dir.remove() }
        let (log, tm) = try dir.createOnline()
        defer { try? log.close() }
        let (a, tx, superior) = try await preparedUnderSuperior(tm)
        let core = try #require(tm.lock.withLock { tm.transactions[tx.id] })
        tm.lock.withLock { core.forcing = true }  // as resolve leaves it while its record is appended
        await expectLogError(.invalidState) { try await superior.commit() }
        expectLogError(.invalidState) { try superior.rollback() }
        await expectLogError(.invalidState) { try await tm.resolve(tx.id, action: .rollback) }
        #expect(tx.outcome == .undetermined)
        tm.lock.withLock { core.forcing = false }
        try await superior.commit()
        #expect(a.kinds(tx.id) == [.prePrepare, .prepare, .commit])
    }

    /// A superior's commit has appended its decision and flushes it (the outcome is committed, the
    /// state still prepared): a resolve then is refused, as while the record is appended. Before, a
    /// `commit` resolve logged a forced record and sent the commit, and the superior's commit then
    /// finished the transaction again (a second end record; an RM that had not answered yet got the
    /// commit twice); a `forget` dropped the transaction, which the superior's commit then committed
    /// anyway, its end record never written.
    @Test(arguments: [ForcedAction.commit, .forget])
    func resolveWhileASuperiorsDecisionIsFlushedIsRefused(_ action: ForcedAction) async throws {
        let dir = TMScratch("resolve-decision-flush")
        defer { dir.remove() }
        let (log, tm) = try dir.createOnline()
        defer { try? log.close() }
        let (a, tx, superior) = try await preparedUnderSuperior(tm)
        let id = tx.id
        let refusal = Mutex<LogError.Code?>(nil)
        tm.afterDecisionAppendForTesting = {
            let error = errorOfAsyncCall { try await tm.resolve(id, action: action) }
            refusal.withLock { $0 = error?.code }
        }
        try await Task(executorPreference: OwnThreadExecutor()) { try await superior.commit() }.value
        tm.afterDecisionAppendForTesting = nil
        #expect(refusal.withLock { $0 } == .invalidState)
        #expect(a.kinds(id) == [.prePrepare, .prepare, .commit])
        #expect(a.errors == [])
        #expect(try tmRecordKinds(tm) == [.rmRegistered, .prepared, .outcome, .end])
    }

    @Test func forcedRollbackThenCommitIsRefused() async throws {
        let dir = TMScratch("resolve-rollback")
        defer { dir.remove() }
        let c = try await CrashScenario.whilePreparedUnderSuperior(dir)
        let (log, tm) = try dir.reopenOnline()
        defer { try? log.close() }
        let a = try ScriptedRM.open(tm, id: c.rms[0]) { $0.on(.rollback, .hold) }
        try a.rm.recover()
        try await tm.resolve(c.tx, action: .rollback)
        #expect(a.kinds(c.tx) == [.recover, .inDoubt, .rollback])
        let f = try #require(try Self.lastForced(tm))
        #expect(f.action == .rollback)
        #expect(f.actor == "api")  // TransactionManagerOptions.defaultActor
        #expect(f.reason == "")
        await expectLogError(.invalidState) { try await tm.resolve(c.tx, action: .commit) }
        try a.release(.rollback)
        #expect(tm.transactionSnapshots().isEmpty)
        await expectLogError(.notFound) { try await tm.resolve(c.tx, action: .rollback) }
    }

    @Test func forcedOutcomeBeforeTheRMRecoversIsDeliveredAtItsRecovery() async throws {
        let dir = TMScratch("resolve-early")
        defer { dir.remove() }
        let c = try await CrashScenario.whilePreparedUnderSuperior(dir)
        let (log, tm) = try dir.reopenOnline()
        try await tm.resolve(c.tx, action: .commit)
        #expect(tm.transactionSnapshots().map(\.state) == [.committing])
        // The TM crashes again before the RM came back: the forced record is replayed.
        try log.close()
        let (log2, tm2) = try dir.reopenOnline()
        defer { try? log2.close() }
        #expect(tm2.lastRecovery.committing == 1)
        #expect(tm2.lastRecovery.inDoubt == 0)
        let a = try ScriptedRM.open(tm2, id: c.rms[0])
        try a.rm.recover()
        #expect(a.kinds(c.tx) == [.recover, .commit])
        #expect(tm2.transactionSnapshots().isEmpty)
    }

    @Test func forgetDropsTheTransactionWithoutTellingAnyone() async throws {
        let dir = TMScratch("resolve-forget")
        defer { dir.remove() }
        let c = try await CrashScenario.whilePreparedUnderSuperior(dir)
        let (log, tm) = try dir.reopenOnline()
        let a = try ScriptedRM.open(tm, id: c.rms[0])
        try a.rm.recover()
        try await tm.resolve(c.tx, action: .forget, actor: "ops", reason: "participant decommissioned")
        #expect(a.kinds(c.tx) == [.recover, .inDoubt])
        #expect(tm.transactionSnapshots().isEmpty)
        #expect(try tmRecordKinds(tm) == [.rmRegistered, .prepared, .forced])  // the forced record ends it
        #expect(try Self.lastForced(tm)?.action == .forget)
        try log.close()
        let (log2, tm2) = try dir.reopenOnline()
        defer { try? log2.close() }
        #expect(tm2.transactionSnapshots().isEmpty)
        #expect(tm2.lastRecovery.inDoubt == 0)
    }

    @Test func commitOfARecoveredAbortedTransactionIsRefused() async throws {
        let dir = TMScratch("resolve-aborted")
        defer { dir.remove() }
        let (log, tm) = try dir.createOnline()
        let a = try ScriptedRM.online(tm, "a")
        a.on(.rollback, .hold)
        let tx = try tm.createTransaction()
        _ = try a.enlist(tx)
        let superior = try tx.enlistSuperior()
        #expect(try await superior.prepare() == .prepared)
        try superior.rollback()
        try log.close()

        let (log2, tm2) = try dir.reopenOnline()
        defer { try? log2.close() }
        #expect(tm2.lastRecovery.aborting == 1)
        await expectLogError(.invalidState) { try await tm2.resolve(tx.id, action: .commit) }
        #expect(try tmRecordKinds(tm2) == [.rmRegistered, .prepared, .outcome])  // nothing written
        let a2 = try ScriptedRM.open(tm2, id: a.id)
        try a2.rm.recover()
        #expect(a2.kinds(tx.id) == [.recover, .rollback])
    }

    @Test func rollbackOfARecoveredCommittedTransactionIsRefused() async throws {
        let dir = TMScratch("resolve-committed")
        defer { dir.remove() }
        let c = try await CrashScenario.afterCommitDecision(dir)
        let (log, tm) = try dir.reopenOnline()
        defer { try? log.close() }
        await expectLogError(.invalidState) { try await tm.resolve(c.tx, action: .rollback) }
        // Forcing the outcome it already has is allowed, and audited.
        try await tm.resolve(c.tx, action: .commit, actor: "ops")
        #expect(try Self.lastForced(tm)?.action == .commit)
        #expect(tm.virtualClock == 2)  // already committed: the clock does not move again
    }

    /// A live transaction committing, its RM `b` not yet acknowledging: a resolve to commit is audited
    /// and sends nothing. Before, it decided again and sent `b` the commit a second time, and `b`'s
    /// answer to the second one was refused (`invalid-state`).
    @Test func resolveToTheOutcomeItHasSendsNothingAgain() async throws {
        let dir = TMScratch("resolve-same-outcome")
        defer { dir.remove() }
        let (log, tm) = try dir.createOnline()
        defer { try? log.close() }
        let (a, b, tx) = try twoRMs(tm)
        b.on(.commit, .hold)
        let committing = Task(executorPreference: OwnThreadExecutor()) { try await tx.commit() }
        #expect(await b.waitFor(.commit, tx: tx.id))
        try await tm.resolve(tx.id, action: .commit, actor: "ops")
        #expect(try Self.lastForced(tm)?.action == .commit)
        #expect(b.kinds(tx.id) == [.prePrepare, .prepare, .commit])
        try b.release(.commit, tx: tx.id)
        try await committing.value
        #expect(a.kinds(tx.id) == [.prePrepare, .prepare, .commit])
        #expect(b.held.isEmpty)
        #expect(a.errors == [] && b.errors == [])
    }

    @Test func onlyPreparedOrUnfinishedTransactionsCanBeResolved() async throws {
        let dir = TMScratch("resolve-active")
        defer { dir.remove() }
        let (log, tm) = try dir.createOnline()
        defer { try? log.close() }
        let a = try ScriptedRM.online(tm, "a")
        let tx = try tm.createTransaction()
        _ = try a.enlist(tx)
        await expectLogError(.invalidState) { try await tm.resolve(tx.id, action: .rollback) }
        await expectLogError(.notFound) { try await tm.resolve(.random(), action: .commit) }
        #expect(tx.state == .active)
        try tx.rollback()
    }

    @Test func longAuditTextIsCutToItsByteLimitAndStillRecovers() async throws {
        let dir = TMScratch("resolve-long")
        defer { dir.remove() }
        let c = try await CrashScenario.whilePreparedUnderSuperior(dir)
        let (log, tm) = try dir.reopenOnline()
        let actor = String(repeating: "é", count: TMLimits.maxShortText)  // 2 bytes each in UTF-8
        let reason = String(repeating: "ü", count: 3 * TMLimits.maxShortText) + "end"
        try await tm.resolve(c.tx, action: .commit, actor: actor, reason: reason)
        let f = try #require(try Self.lastForced(tm))
        #expect(f.actor.utf8.count == TMLimits.maxShortText)
        #expect(f.actor == String(repeating: "é", count: TMLimits.maxShortText / 2))
        #expect(f.reason.utf8.count == TMLimits.maxShortText)
        #expect(f.reason == String(repeating: "ü", count: TMLimits.maxShortText / 2))
        try log.close()
        let (log2, tm2) = try dir.reopenOnline()  // the forced record decodes: recovery works
        defer { try? log2.close() }
        #expect(tm2.lastRecovery.committing == 1)
    }
}

/// A `resolve(.forget)` whose forced record's flush fails (the log fails): the forget had already taken
/// the transaction out of the table and its outcome waiters into the effects to perform after the flush,
/// which the failure skipped. The log's failure wakes only waiters of transactions still in the table, so
/// a `waitForOutcome()` on it never returned.
@Suite struct ResolveFlushFailureTests {
    @Test("a waiter of a transaction forgotten by a resolve whose flush fails returns", .hangGuard)
    func forgetWhoseFlushFailsWakesTheWaiters() async throws {
        let dir = TMScratch("resolve-forget-flush-fails")
        defer { dir.remove() }
        let io = FailingSyncIO()
        let log = try LogStore.create(at: dir.path, options: TMScratch.options, io: io)
        defer { try? log.close() }
        let tm = try TransactionManager.create(log: log)
        try tm.recover()
        let (a, tx, superior) = try await preparedUnderSuperior(tm)
        let waiter = BackgroundCall { await tx.waitForOutcome() }
        #expect(await eventually { tm.lock.withLock { tx.core.finishWaiters.count == 1 } }, "the waiter never waited")
        io.failSyncs.set(true)
        await BackgroundCall { try await tm.resolve(tx.id, action: .forget) }.expectLogError(.failed, "the resolve")
        await waiter.expectSuccess("waitForOutcome() on the forgotten transaction")
        withExtendedLifetime((a, superior)) {}
    }
}
