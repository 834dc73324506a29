// Races with a superior's decisions.
//
// A prepare whose participants all voted read-only commits the transaction. The votes were counted in
// one hold of the TM's lock and the commit made in another, so a rollback (the client's, its timeout's:
// the same call) let in between rolled the transaction back, sent `rollback` to its outcome-only
// participants, and the commit then overwrote that outcome: `prepare()` answered `readOnly`
// (committed) to the superior after a participant had rolled back.
//
// A commit retried by the superior while the first one's decision was flushed threw `aborted` ("rolled
// back") for a transaction that committed.

import Foundation
import LogStore
import Synchronization
import Testing
@testable import TransactionManager

@Suite struct SuperiorDecisionRaceTests {
    /// `a` votes read-only; `b` takes only the outcome. The hook runs between the count of the votes
    /// and the commit's effects: a rollback there finds the transaction committed and is refused.
    @Test func rollbackAfterTheReadOnlyVotesIsRefused() async throws {
        let scratch = TMScratch("sup-ro-race")
        defer { scratch.remove() }
        let (log, tm) = try scratch.createOnline()
        defer { try? log.close() }
        let a = try ScriptedRM.online(tm, "a")
        let b = try ScriptedRM.online(tm, "b")
        a.on(.prepare, .readOnly)
        let tx = try tm.createTransaction()
        _ = try a.enlist(tx)
        _ = try b.enlist(tx, mask: [.commit, .rollback])
        let superior = try tx.enlistSuperior()
        let refusal = Mutex<LogError?>(nil)
        tm.afterVotesCountedForTesting = {
            do { try tx.rollback() } catch { refusal.withLock { $0 = error as? LogError } }
        }
        let vote = try await superior.prepare()
        tm.afterVotesCountedForTesting = nil
        #expect(vote == .readOnly)
        #expect(refusal.withLock { $0?.code } == .invalidState, "the rollback came after the commit")
        #expect(b.kinds(tx.id) == [.commit], "the outcome-only participant gets the outcome the superior was told")
        #expect(await tx.waitForOutcome() == .committed)
        #expect(a.errors == [] && b.errors == [])
    }

    /// The superior's second commit arrives while the first one flushes its decision (test hook): it
    /// is refused with `invalid-state`, not `aborted`, and the transaction commits once.
    @Test func commitRetriedWhileTheDecisionIsFlushedIsNotAborted() async throws {
        let scratch = TMScratch("sup-commit-twice")
        defer { scratch.remove() }
        let (log, tm) = try scratch.createOnline()
        defer { try? log.close() }
        let (a, tx, superior) = try await preparedUnderSuperior(tm)
        let second = Mutex<LogError?>(nil)
        tm.afterDecisionAppendForTesting = {
            let error = errorOfAsyncCall { try await superior.commit() }
            second.withLock { $0 = error }
        }
        try await Task(executorPreference: OwnThreadExecutor()) { try await superior.commit() }.value
        tm.afterDecisionAppendForTesting = nil
        let refusal = second.withLock { $0 }
        #expect(refusal?.code == .invalidState, "\(String(describing: refusal))")
        #expect(tx.outcome == .committed)
        #expect(a.kinds(tx.id) == [.prePrepare, .prepare, .commit])
        #expect(try tmRecordKinds(tm) == [.rmRegistered, .prepared, .outcome, .end])
    }
}

/// Runs `body` in a task on a thread of its own and waits for it (for a synchronous test hook that makes
/// an async call); returns what it threw (nil when it returned).
func errorOfAsyncCall(_ body: @escaping @Sendable () async throws -> Void) -> LogError? {
    final class Box: @unchecked Sendable { var error: LogError? }
    let box = Box()
    let done = DispatchSemaphore(value: 0)
    Task(executorPreference: OwnThreadExecutor()) {
        do { try await body() } catch { box.error = (error as? LogError) ?? LogError(.io, "\(error)") }
        done.signal()
    }
    done.wait()
    return box.error
}
