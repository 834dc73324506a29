// A handler RM gets each enlistment's notifications one at a time, in the order of the state changes:
// a notification decided while the handler runs (on another thread, or by the handler's own answer)
// is delivered after the handler returns, never beside it or nested inside it.

import Foundation
import LogStore
import Testing
@testable import TransactionManager

/// What a handler saw, in order: "enter <kind>" and "exit <kind>".
private final class HandlerTrace: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [String] = []
    func add(_ s: String) { lock.withLock { items.append(s) } }
    var all: [String] { lock.withLock { items } }
    func contains(_ s: String) -> Bool { all.contains(s) }
}

@Suite struct HandlerDeliveryOrderTests {
    /// The commit driver's prepare is in the handler when the client rolls the transaction back on another
    /// thread: the rollback reaches the handler after the prepare returned (before, the handler was
    /// called with the rollback while it still ran the prepare, so the RM could act on them in either order).
    @Test func rollbackDecidedDuringAPrepareWaitsForIt() async throws {
        let scratch = TMScratch("order-race")
        defer { scratch.remove() }
        let (log, tm) = try scratch.createOnline()
        defer { try? log.close() }
        let trace = HandlerTrace()
        let entered = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        let rm = try tm.createResourceManager(description: "slow prepare") { n in
            guard let e = n.enlistment else { return }
            trace.add("enter \(n.kind.rawValue)")
            switch n.kind {
            case .prePrepare: try? e.prePrepareComplete()
            case .prepare:
                entered.signal()
                // Bounded: a broken TM must fail the test, not hang it.
                _ = release.wait(timeout: .now() + 120)
                try? e.prepareComplete()
            case .rollback: try? e.rollbackComplete()
            default: break
            }
            trace.add("exit \(n.kind.rawValue)")
        }
        try rm.recover()
        let tx = try tm.createTransaction()
        _ = try rm.enlist(tx, mask: .twoPhase)
        let rolledBack = ResultBox()
        // The client's rollback, on a thread of its own (not the cooperative pool, where the handler holds
        // the driver's thread): it runs while the handler is inside the prepare.
        DispatchQueue.global().async {
            entered.wait()
            do {
                try tx.rollback()
                rolledBack.set("ok")
            } catch { rolledBack.set("\(error)") }
            release.signal()
        }
        let driver = Task(executorPreference: OwnThreadExecutor()) { try await tx.commit() }
        await #expect(throws: LogError.self) { try await driver.value }
        #expect(rolledBack.value == "ok")
        #expect(await eventually { trace.contains("exit rollback") })
        #expect(trace.all == ["enter pre-prepare", "exit pre-prepare", "enter prepare", "exit prepare", "enter rollback", "exit rollback"])
        #expect(await tx.waitForOutcome() == .aborted)
        withExtendedLifetime(rm) {}
    }

    /// Reentrancy: a handler that rolls its transaction back from inside its prepare gets the rollback
    /// that follows after it returns (not nested inside it), and its answer to the rollback, given inside
    /// the handler again, finishes the transaction.
    @Test func rollbackFromInsideTheHandlerIsDeliveredAfterItReturns() async throws {
        let scratch = TMScratch("order-reentrant")
        defer { scratch.remove() }
        let (log, tm) = try scratch.createOnline()
        defer { try? log.close() }
        let trace = HandlerTrace()
        let tx = try tm.createTransaction()
        let rm = try tm.createResourceManager(description: "rolls back in prepare") { n in
            guard let e = n.enlistment else { return }
            trace.add("enter \(n.kind.rawValue)")
            switch n.kind {
            case .prePrepare: try? e.prePrepareComplete()
            case .prepare: try? tx.rollback()
            case .rollback: try? e.rollbackComplete()
            default: break
            }
            trace.add("exit \(n.kind.rawValue)")
        }
        try rm.recover()
        _ = try rm.enlist(tx, mask: .twoPhase)
        await #expect(throws: LogError.self) { try await tx.commit() }
        #expect(trace.all == ["enter pre-prepare", "exit pre-prepare", "enter prepare", "exit prepare", "enter rollback", "exit rollback"])
        #expect(await tx.waitForOutcome() == .aborted)
        #expect(tm.transactionSnapshots().isEmpty)
        withExtendedLifetime(rm) {}
    }

    /// Answers given inside the handlers still complete a commit of several RMs, over many transactions
    /// run concurrently (each RM's notifications of different transactions may still run side by side).
    @Test func concurrentCommitsWithInlineAnswersAllFinish() async throws {
        let scratch = TMScratch("order-many")
        defer { scratch.remove() }
        let (log, tm) = try scratch.createOnline()
        defer { try? log.close() }
        let a = try tm.createResourceManager(description: "a", handler: answerAtOnce)
        let b = try tm.createResourceManager(description: "b", handler: answerAtOnce)
        try a.recover()
        try b.recover()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    for _ in 0..<25 {
                        let tx = try tm.createTransaction()
                        _ = try a.enlist(tx)
                        _ = try b.enlist(tx)
                        try await tx.commit()
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(tm.transactionSnapshots().isEmpty)
    }
}
