// Recovery in one process: do some work, close the log without tm.close() (the TM "crashes": no final
// checkpoint, no later records), reopen, recover the TM, open and recover the RMs.

import Foundation
import LogStore
import Testing
@testable import TransactionManager

/// What a crash scenario left behind, by identity.
struct CrashedTransaction {
    var tx: GUID
    var rms: [GUID]
    var enlistments: [GUID]
}

enum CrashScenario {
    static let blob = Array("a's recovery blob".utf8)

    /// Two RMs; the decision is forced and a acknowledged it, then the TM crashes before b answers
    /// commit (so no end record is written).
    static func afterCommitDecision(_ dir: TMScratch) async throws -> CrashedTransaction {
        let (log, tm) = try dir.createOnline()
        let a = try ScriptedRM.online(tm, "a")
        let b = try ScriptedRM.online(tm, "b")
        b.on(.commit, .hold)
        let tx = try tm.createTransaction(description: "crash after decision")
        let ea = try a.enlist(tx, info: blob)
        let eb = try b.enlist(tx)
        let commit = Task { try await tx.commit() }
        #expect(await b.waitFor(.commit))
        #expect(a.kinds(tx.id) == [.prePrepare, .prepare, .commit])
        #expect(try tmRecordKinds(tm) == [.rmRegistered, .rmRegistered, .outcome])
        try log.close()
        // The log's close stopped the old TM: its commit says the transaction committed, and b's late
        // answer is refused (its commit record could not have been logged anyway).
        #expect(throws: LogError.self) { try #require(b.held.first?.enlistment).commitComplete() }
        do {
            try await commit.value
            Issue.record("the commit returned")
        } catch let e as LogError {
            #expect(e.code == .closed && e.message.contains("committed"), "\(e)")
        }
        return CrashedTransaction(tx: tx.id, rms: [a.id, b.id], enlistments: [ea.id, eb.id])
    }

    /// One RM (a) prepared under a superior; the prepared record is forced, then the TM crashes.
    static func whilePreparedUnderSuperior(_ dir: TMScratch) async throws -> CrashedTransaction {
        let (log, tm) = try dir.createOnline()
        let a = try ScriptedRM.online(tm, "a")
        let tx = try tm.createTransaction(description: "in doubt")
        let ea = try a.enlist(tx, info: blob)
        let superior = try tx.enlistSuperior()
        #expect(try await superior.prepare() == .prepared)
        #expect(try tmRecordKinds(tm) == [.rmRegistered, .prepared])
        try log.close()
        return CrashedTransaction(tx: tx.id, rms: [a.id], enlistments: [ea.id])
    }
}

/// A transaction snapshot without its age, for comparing recoveries.
struct StableSnapshot: Equatable {
    var snapshot: TransactionSnapshot
    init(_ s: TransactionSnapshot) {
        snapshot = s
        snapshot.ageSeconds = 0
    }
}

@Suite struct RecoveryTests {
    @Test func committedWithoutEndIsCommittedAgain() async throws {
        let dir = TMScratch("rec-commit")
        defer { dir.remove() }
        let c = try await CrashScenario.afterCommitDecision(dir)
        let (log, tm) = try dir.reopenOnline()
        defer { try? log.close() }
        let stats = tm.lastRecovery
        #expect(stats.committing == 1 && stats.aborting == 0 && stats.inDoubt == 0)
        #expect(stats.recordsScanned == 3)
        #expect(try stats.lastRecoveredLSN == tmDataLSNs(tm).last)
        #expect(tm.virtualClock == 2)
        let snaps = tm.transactionSnapshots()
        #expect(snaps.map(\.id) == [c.tx])
        #expect(snaps.first?.state == .committing)
        #expect(snaps.first?.outcome == .committed)
        #expect(snaps.first?.recovered == true)
        #expect(snaps.first?.description == "crash after decision")
        #expect(snaps.first?.participants.map(\.enlistment) == c.enlistments)
        #expect(snaps.first?.participants.map(\.state) == [.recovering, .recovering])

        let a = try ScriptedRM.open(tm, id: c.rms[0]) { $0.on(.recover, .hold) }
        try a.rm.recover()
        #expect(a.allKinds == [.recover, .recoveryComplete, .tmOnline])
        let note = try #require(a.notes.first)
        #expect(note.transactionID == c.tx)
        #expect(note.recoveryInformation == CrashScenario.blob)
        let e = try #require(note.enlistment)
        #expect(e.id == c.enlistments[0])
        #expect(e.currentState == .recovering)
        expectAnswersRefused(e, except: [.recover])
        try a.release(.recover)
        // a had acknowledged before the crash: it gets commit again (duplicates are allowed).
        #expect(a.kinds(c.tx) == [.recover, .commit])
        #expect(e.currentState == .committed)
        #expect(try a.ownRecords() == ["prepare \(c.tx)", "commit \(c.tx)", "commit \(c.tx)"])

        let b = try ScriptedRM.open(tm, id: c.rms[1])
        try b.rm.recover()
        #expect(b.allKinds == [.recover, .commit, .recoveryComplete, .tmOnline])
        #expect(tm.transactionSnapshots().isEmpty)
        #expect(try tmRecordKinds(tm) == [.rmRegistered, .rmRegistered, .outcome, .end])
        #expect(a.errors == [] && b.errors == [])
    }

    @Test func recoveringAgainWithoutWorkGivesTheSameState() async throws {
        let dir = TMScratch("rec-twice")
        defer { dir.remove() }
        let c = try await CrashScenario.afterCommitDecision(dir)
        func recoverOnce() throws -> ([StableSnapshot], RecoveryStatistics) {
            let (log, tm) = try dir.reopenOnline()
            defer { try? log.close() }
            var stats = tm.lastRecovery
            stats.durationNanos = 0
            return (tm.transactionSnapshots().map(StableSnapshot.init), stats)
        }
        let first = try recoverOnce()
        let second = try recoverOnce()
        let third = try recoverOnce()
        #expect(first.0.count == 1)
        #expect(first == second)
        #expect(second == third)

        // Now deliver: both RMs get the commit, once per incarnation that reached them.
        let (log, tm) = try dir.reopenOnline()
        defer { try? log.close() }
        let a = try ScriptedRM.open(tm, id: c.rms[0])
        let b = try ScriptedRM.open(tm, id: c.rms[1])
        try a.rm.recover()
        try b.rm.recover()
        #expect(a.kinds(c.tx) == [.recover, .commit])
        #expect(b.kinds(c.tx) == [.recover, .commit])
        try log.close()
        let (log2, tm2) = try dir.reopenOnline()
        defer { try? log2.close() }
        #expect(tm2.transactionSnapshots().isEmpty)
        #expect(tm2.lastRecovery.committing == 0)
    }

    @Test func preparedUnderASuperiorIsInDoubt() async throws {
        let dir = TMScratch("rec-indoubt")
        defer { dir.remove() }
        let c = try await CrashScenario.whilePreparedUnderSuperior(dir)
        let (log, tm) = try dir.reopenOnline()
        defer { try? log.close() }
        #expect(tm.lastRecovery.inDoubt == 1)
        #expect(tm.lastRecovery.committing == 0 && tm.lastRecovery.aborting == 0)
        #expect(tm.inDoubtTransactions().map(\.id) == [c.tx])
        #expect(tm.inDoubtTransactions().first?.state == .inDoubt)
        #expect(tm.inDoubtTransactions().first?.superior == true)

        let a = try ScriptedRM.open(tm, id: c.rms[0])
        try a.rm.recover()
        #expect(a.allKinds == [.recover, .inDoubt, .recoveryComplete, .tmOnline])
        let e = try #require(a.notes.first?.enlistment)
        #expect(e.currentState == .inDoubt)
        expectAnswersRefused(e, except: [.requestOutcome])

        // The superior re-attaches and decides.
        let asked = GUIDBox()
        let superior = try tm.superior(for: c.tx) { asked.append($0) }
        #expect(try e.requestOutcome() == .undetermined)
        #expect(asked.values == [c.tx])
        let syncs = syncCount(log)
        try await superior.commit()
        #expect(syncCount(log) - syncs == 1)
        #expect(a.kinds(c.tx) == [.recover, .inDoubt, .commit])
        #expect(try tmRecordKinds(tm) == [.rmRegistered, .prepared, .outcome, .end])
        #expect(tm.inDoubtTransactions().isEmpty)
    }

    @Test func preparedWithoutSuperiorLeavesNothingToRecover() async throws {
        let dir = TMScratch("rec-presumed-abort")
        defer { dir.remove() }
        let (log, tm) = try dir.createOnline()
        let (a, b, tx) = try twoRMs(tm)
        b.on(.prepare, .hold)
        let commit = Task { try await tx.commit() }
        #expect(await b.waitFor(.prepare))
        #expect(try a.ownRecords() == ["prepare \(tx.id)"])
        #expect(try tmRecordKinds(tm) == [.rmRegistered, .rmRegistered])  // nothing before the decision
        try log.close()
        #expect(throws: LogError.self) { try #require(b.held.first?.enlistment).prepareComplete() }  // the log's close stopped the TM
        await expectLogError(.closed) { try await commit.value }  // no decision can be written

        let (log2, tm2) = try dir.reopenOnline()
        defer { try? log2.close() }
        #expect(tm2.lastRecovery.committing == 0 && tm2.lastRecovery.aborting == 0 && tm2.lastRecovery.inDoubt == 0)
        #expect(tm2.transactionSnapshots().isEmpty)
        let a2 = try ScriptedRM.open(tm2, id: a.id)
        try a2.rm.recover()
        // No recover notification: a's own prepare record is to be rolled back by a (presumed abort).
        #expect(a2.allKinds == [.recoveryComplete, .tmOnline])
        #expect(try a2.ownRecords() == ["prepare \(tx.id)"])
    }

    @Test func rolledBackPreparedTransactionIsRolledBackAgain() async throws {
        let dir = TMScratch("rec-abort")
        defer { dir.remove() }
        let (log, tm) = try dir.createOnline()
        let a = try ScriptedRM.online(tm, "a")
        a.on(.rollback, .hold)
        let tx = try tm.createTransaction()
        _ = try a.enlist(tx)
        let superior = try tx.enlistSuperior()
        #expect(try await superior.prepare() == .prepared)
        try superior.rollback()
        #expect(try tmRecordKinds(tm) == [.rmRegistered, .prepared, .outcome])
        try log.close()  // the lazy abort record is flushed by the close

        let (log2, tm2) = try dir.reopenOnline()
        defer { try? log2.close() }
        #expect(tm2.lastRecovery.aborting == 1)
        let a2 = try ScriptedRM.open(tm2, id: a.id)
        try a2.rm.recover()
        #expect(a2.allKinds == [.recover, .rollback, .recoveryComplete, .tmOnline])
        #expect(tm2.transactionSnapshots().isEmpty)
        #expect(try tmRecordKinds(tm2) == [.rmRegistered, .prepared, .outcome, .end])
    }

    @Test func recoveryReportsProgressAndCanBeCancelled() throws {
        let dir = TMScratch("rec-progress")
        defer { dir.remove() }
        let (log, tm) = try dir.createOnline()
        // 600 end records of unknown transactions: harmless to replay, cheap to write (lazy).
        for _ in 0..<600 { try tm.append(.end(.random())) }
        try log.close()

        let log2 = try LogStore.open(at: dir.path)
        defer { try? log2.close() }
        let tm2 = try TransactionManager.open(log: log2)
        let polls = GUIDBox()
        expectLogError(.terminated) {
            try tm2.recover(isCancelled: {
                polls.append(.zero)
                return true
            })
        }
        #expect(polls.values.count == 1)  // polled after 256 records
        #expect(tm2.currentState == .initialized)
        expectLogError(.notOnline) { _ = try tm2.createTransaction() }
        let seen = CountBox()
        try tm2.recover(progress: { seen.append($0) })
        #expect(seen.values == [256, 512, 600])
        #expect(tm2.lastRecovery.recordsScanned == 600)
        #expect(tm2.currentState == .online)
        #expect(tm2.transactionSnapshots().isEmpty)
    }

    @Test func unregisteredStreamIsNotATM() throws {
        let dir = TMScratch("rec-not-tm")
        defer { dir.remove() }
        let log = try LogStore.create(at: dir.path, options: TMScratch.options)
        defer { try? log.close() }
        let s = try log.createStream("plain")
        try s.append(Array("not a tm".utf8))
        expectLogError(.notFound) { _ = try TransactionManager.open(log: log, stream: "plain") }
        // Another program's restart area: not a TM's stream (as `list` says), not damage.
        try s.writeRestartArea(Array("not a checkpoint".utf8))
        expectLogError(.notFound) { _ = try TransactionManager.open(log: log, stream: "plain") }
        #expect(TransactionManager.list(log: log).isEmpty)
    }
}

/// Collects integers from a callback.
final class CountBox: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [Int] = []
    func append(_ n: Int) { lock.withLock { list.append(n) } }
    var values: [Int] { lock.withLock { list } }
}
