// `begin` racing the transaction's rollback (its timeout, or another thread): the rollback notification
// reached the store after the store's RM was enlisted and before `begin` made the view, found no view,
// and the view `begin` then made stayed in the store for good.

import Foundation
import LogStore
import Testing
import TransactionManager
@testable import TransactionalKV

@Suite struct KVBeginRaceTests {
    @Test("a rollback that reaches the store between begin's enlistment and its view leaves no view behind", .hangGuard)
    func rollbackBetweenEnlistAndView() async throws {
        let w = try KVWorld(stores: 1, tag: "begin-race")
        defer { w.finish() }
        let tx = try w.tm.createTransaction()
        let rolledBack = DispatchSemaphore(value: 0)
        w.a.afterEnlistForTesting = { @Sendable in
            try? tx.rollback()
            // Until the store has answered the rollback (the transaction then finishes).
            Task { _ = await tx.waitForOutcome(); rolledBack.signal() }
            _ = rolledBack.wait(timeout: .now() + 60)
        }
        let began = await onOwnThread { () -> LogError? in
            do { _ = try w.a.begin(tx); return nil } catch { return error as? LogError }
        }
        w.a.afterEnlistForTesting = nil
        #expect(tx.outcome == .aborted)
        #expect(began?.code == .invalidState, "begin of a transaction rolled back meanwhile: \(String(describing: began))")
        #expect(w.a.lock.withLock { w.a.active[tx.id] } == nil, "the view of a rolled-back transaction stayed in the store")
        #expect(w.a.statistics.rollbacks + w.a.statistics.conflicts <= 1)
        // The store goes on.
        try await w.load(w.a, [("k", "v")])
        #expect(s(w.a.get(b("k"))) == "v")
    }
}
