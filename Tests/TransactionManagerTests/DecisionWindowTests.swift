// The window between the commit decision and its flush. The decision (outcome committed) is made under
// the TM's lock, then its record is appended and flushed while the transaction's state is still
// `preparing`. Nothing may roll the transaction back in that window: not its timeout, not the client's
// rollback, not a participant closing its enlistment or vetoing.

import Foundation
import LogStore
import Testing
@testable import TransactionManager

/// PosixFileIO whose data syncs block while armed, until released: holds a flush open.
final class BlockingSyncIO: ForwardingFileIO, @unchecked Sendable {
    let base: any FileIO = PosixFileIO()
    private let lock = NSLock()
    private var armed = false
    private var blockedCount = 0
    private let gate = DispatchSemaphore(value: 0)
    func arm() { lock.withLock { armed = true } }
    var blocked: Int { lock.withLock { blockedCount } }
    func release() {
        let n: Int = lock.withLock {
            armed = false
            return blockedCount
        }
        for _ in 0..<max(n, 1) { gate.signal() }
    }
    private func maybeBlock() {
        let wait: Bool = lock.withLock {
            guard armed else { return false }
            blockedCount += 1
            return true
        }
        if wait { gate.wait() }
    }
    func fdatasync(_ fd: Int32) throws {
        maybeBlock()
        try base.fdatasync(fd)
    }
    func fsync(_ fd: Int32) throws {
        maybeBlock()
        try base.fsync(fd)
    }
}

@Suite struct DecisionWindowTests {
    enum Racer: String, CaseIterable, Sendable { case timeout, clientRollback, closeObserverEnlistment, observerVeto }

    /// Before the fix each racer rolled every participant back while `commit()` still returned success,
    /// and the log held the commit decision: recovery after a crash sent commit to RMs that had rolled
    /// back (in the key-value store, the writes of a successful commit were gone).
    @Test(arguments: Racer.allCases) func nothingRollsBackADecidedCommit(racer: Racer) async throws {
        let dir = TMScratch("decision-\(racer.rawValue)")
        defer { dir.remove() }
        let io = BlockingSyncIO()
        let log = try LogStore.create(at: dir.path, options: TMScratch.options, io: io)
        let tm = try TransactionManager.create(log: log)
        try tm.recover()
        let (a, b, tx) = try twoRMs(tm, timeout: racer == .timeout ? .milliseconds(300) : nil)
        let c = try ScriptedRM.online(tm, "observer")
        let observer = try c.enlist(tx, mask: [.commit])  // takes no part in prepare
        io.arm()
        let commit = BackgroundCall { try await tx.commit() }
        #expect(await eventually { io.blocked > 0 }, "the decision's flush never started")
        #expect(a.kinds(tx.id) == [.prePrepare, .prepare])
        switch racer {
        case .timeout: try await Task.sleep(for: .milliseconds(600))
        case .clientRollback: expectLogError(.invalidState) { try tx.rollback() }
        case .closeObserverEnlistment: observer.close()
        case .observerVeto: expectLogError(.invalidState) { try observer.rollback() }
        }
        io.release()
        await commit.expectSuccess("commit")
        for rm in [a, b] { #expect(rm.kinds(tx.id) == [.prePrepare, .prepare, .commit], "\(rm.kinds(tx.id))") }
        #expect(tx.outcome == .committed)
        #expect(try tmRecordKinds(tm).filter { $0 == .end }.count == 1)

        // Crash and recover: the outcome stands, and nobody is told anything else.
        let ids = [a.id, b.id]
        try log.close()
        let (log2, tm2) = try dir.reopenOnline()
        defer { try? log2.close() }
        let a2 = try ScriptedRM.open(tm2, id: ids[0])
        try a2.rm.recover()
        #expect(!a2.kinds(tx.id).contains(.rollback))
    }
}

/// Answers and drivers that must not overtake the participant or the driver that owns the moment.
@Suite struct ExclusiveDriverTests {
    /// A superior that calls `prepare()` again while the first call waits for a vote gets invalidState.
    /// Before, the second call voted prepared without that vote, the superior could commit without the
    /// participant, and the first call never returned.
    @Test func secondSuperiorPrepareWhileTheFirstRunsIsRefused() async throws {
        let dir = TMScratch("sup-prepare-twice")
        defer { dir.remove() }
        let (log, tm) = try dir.createOnline()
        defer { try? log.close() }
        let (a, b, tx) = try twoRMs(tm)
        b.on(.prepare, .hold)
        let superior = try tx.enlistSuperior()
        let first = BackgroundCall { try await superior.prepare() }
        #expect(await b.waitFor(.prepare))
        await BackgroundCall { try await superior.prepare() }.expectLogError(.invalidState, "a second prepare")
        await BackgroundCall { try await superior.prePrepare() }.expectLogError(.invalidState, "a pre-prepare during prepare")
        try b.release(.prepare)
        #expect(await first.expectSuccess("the first prepare") == .prepared)
        try await superior.commit()
        for rm in [a, b] { #expect(rm.kinds(tx.id) == [.prePrepare, .prepare, .commit]) }
    }

    /// During a single-phase commit the outcome belongs to the RM that got it: another participant's veto
    /// is refused. Before, it was accepted, the single-phase RM was told to roll back, and its
    /// commit-complete (it had committed) was refused.
    @Test func onlyTheSinglePhaseRMDecidesItsCommit() async throws {
        let dir = TMScratch("spc-veto")
        defer { dir.remove() }
        let (log, tm) = try dir.createOnline()
        defer { try? log.close() }
        let a = try ScriptedRM.online(tm, "a")
        a.on(.singlePhaseCommit, .hold)
        let c = try ScriptedRM.online(tm, "observer")
        let tx = try tm.createTransaction()
        _ = try a.enlist(tx, mask: .all)
        let observer = try c.enlist(tx, mask: [.commit])
        let commit = BackgroundCall { try await tx.commit() }
        #expect(await a.waitFor(.singlePhaseCommit))
        expectLogError(.invalidState) { try observer.rollback() }
        expectLogError(.invalidState) { try observer.rollback(reason: LogError(.conflict, "observer")) }
        try a.release(.singlePhaseCommit)
        await commit.expectSuccess("the single-phase commit")
        #expect(a.kinds(tx.id) == [.singlePhaseCommit])
        #expect(tx.outcome == .committed)
    }
}

/// The log closed under the TM between the commit decision's append and its flush. The close flushes
/// everything, so the decision is durable and recovery commits the transaction; the commit used to throw
/// the flush's bare `closed` ("the log is closed"), left the outcome `undetermined`, and said nothing of
/// the decision.
@Suite struct DecisionLogClosedTests {
    @Test("a commit whose decision the log's close made durable says it committed, and recovery commits it", .hangGuard)
    func decisionMadeDurableByTheClose() async throws {
        let dir = TMScratch("decision-log-closed")
        defer { dir.remove() }
        let (log, tm) = try dir.createOnline()
        let (a, b, tx) = try twoRMs(tm)
        tm.afterDecisionAppendForTesting = { try? log.close() }
        let error = await BackgroundCall { try await tx.commit() }.expectLogError(.closed, "the commit")
        tm.afterDecisionAppendForTesting = nil
        #expect(error?.message.contains("committed") == true, "the error does not say the decision is durable: \(String(describing: error))")
        #expect(tx.outcome == .committed)
        #expect(await tx.waitForOutcome() == .committed)
        // Nothing was sent: the participants cannot log an acknowledgement in a closed log.
        for rm in [a, b] { #expect(rm.kinds(tx.id) == [.prePrepare, .prepare], "\(rm.kinds(tx.id))") }

        let ids = [a.id, b.id]
        let (log2, tm2) = try dir.reopenOnline()
        defer { try? log2.close() }
        #expect(tm2.lastRecovery.committing == 1)
        let a2 = try ScriptedRM.open(tm2, id: ids[0])
        try a2.rm.recover()
        #expect(await eventually { a2.kinds(tx.id).contains(.commit) }, "\(a2.kinds(tx.id))")
        withExtendedLifetime((a, b)) {}
    }
}
