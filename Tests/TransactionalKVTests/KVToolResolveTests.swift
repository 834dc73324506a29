// An in-doubt transaction across two stores, resolved by an operator with `txlog tm resolve`, is then
// seen (commit) or not seen (rollback) by both stores, and stays so after another crash.

import Foundation
import LogStore
import Testing
import TransactionManager
import TxLogTestSupport
@testable import TransactionalKV

@Suite struct KVToolResolveTests {
    /// Leaves a transaction prepared in both stores under a superior, then crashes.
    static func inDoubtWorld(_ tag: String) async throws -> (KVWorld, GUID) {
        let w = try KVWorld(tag: tag)
        return try await removingOnThrow(w.directory) {
            try await w.load(w.a, [("alice", "100")])
            let tx = try w.tm.createTransaction(description: "transfer under an external coordinator")
            let sup = try tx.enlistSuperior()
            try w.a.begin(tx).put(b("alice"), b("60"))
            try w.b.begin(tx).put(b("bob"), b("40"))
            #expect(try await sup.prepare() == .prepared)
            let id = tx.id
            try w.crash()
            return (w, id)
        }
    }

    @Test(arguments: ["commit", "rollback"])
    func resolvedWithTheToolIsSeenByBothStores(_ action: String) async throws {
        let (w, id) = try await Self.inDoubtWorld("tool-\(action)")
        defer { w.finish() }
        // The stores report it in doubt and keep its keys locked.
        try w.reopen()
        #expect(w.a.inDoubtTransactions == [id])
        #expect(w.b.inDoubtTransactions == [id])
        try w.crash()

        let r = try await TxlogProcess.run(
            ["tm", "resolve", w.directory + "/log", id.description, action, "--reason", "coordinator lost", "--actor", "ops"], scratch: w.directory)
        #expect(r.status == 0, "\(r.stdout) \(r.stderr)")

        try w.reopen()
        #expect(w.a.inDoubtTransactions.isEmpty)
        #expect(w.b.inDoubtTransactions.isEmpty)
        if action == "commit" {
            #expect(w.contents(w.a) == ["alice": "60"])
            #expect(w.contents(w.b) == ["bob": "40"])
        } else {
            #expect(w.contents(w.a) == ["alice": "100"])
            #expect(w.contents(w.b).isEmpty)
        }
        // The outcome is final: after another crash nothing is owed and the data is unchanged.
        try w.crashAndReopen()
        #expect(w.tm.transactionSnapshots().isEmpty)
        #expect(w.contents(w.a)["alice"] == (action == "commit" ? "60" : "100"))
    }
}
