// What a store reports about the outcomes it owes: `inDoubtTransactions` lists only transactions whose
// outcome the store has not been told, and each commit is logged and counted by one instance of the store.

import Foundation
import LogStore
import Testing
import TransactionManager
@testable import TransactionalKV

@Suite("KV in-doubt list and outcome counters")
struct KVOutcomeBookkeepingTests {
    /// A commit the TM sent and the full log refused to record was listed in `inDoubtTransactions`,
    /// though the store knew it committed (it logs and applies it once there is room): a tool or operator
    /// reading the list would go and resolve a transaction that is decided.
    @Test("a commit waiting for log room is not in doubt", .hangGuard)
    func commitWaitingForRoomIsNotInDoubt() async throws {
        let w = try KVWorld(stores: 2, tag: "in-doubt-full")
        defer { w.finish() }
        let (room, a, log, tm) = try await KVLogFullAtOpenTests.openOnAFullLogOwingACommit(w)
        defer { try? log.close() }
        // The commit is known and not yet logged: its writes are not applied, and it is not in doubt.
        #expect(a.get(b("x")) == nil)
        #expect(a.inDoubtTransactions.isEmpty, "listed in doubt: \(a.inDoubtTransactions)")
        try room.release(recordSizes: [Int](repeating: 0, count: 200))
        let tx = try tm.createTransaction()
        _ = try a.begin(tx)
        try tx.rollback()
        #expect(s(a.get(b("x"))) == "1")
        #expect(a.inDoubtTransactions.isEmpty)
        #expect(a.statistics.recoveredCommitted == 1, "\(a.statistics)")
        a.close()
    }

    /// A store closed while its handler was inside a commit notification, and opened again before that
    /// call went on: the closed instance still logged the commit record, applied it and counted it as a
    /// commit, and the TM sent the commit to the new instance (which had loaded the transaction pending),
    /// which logged it again and counted it as recovered. One transaction, two commit records, counted
    /// twice. The closed instance now leaves it to the open one.
    @Test("a commit reaching a closed instance is logged and counted once, by the open one", .hangGuard)
    func closedInstanceLeavesTheCommitToTheOpenOne() async throws {
        let w = try KVWorld(stores: 2, tag: "kv-closed-commit")
        defer { w.finish() }
        let held = try await KVReopenWhileHandlerRunsTests.HeldCommit(w)
        let releasing = held.releaseOnceDeferred()
        let opening = Task(executorPreference: OwnThreadExecutor()) {
            try KVStore.open(transactionManager: w.tm, id: w.storeIDs[0], directory: w.dataDirectory)
        }
        #expect(await releasing.value, "the reopened RM's recovery-complete was not deferred")
        let a2 = try await opening.value
        try await held.commit.value
        #expect(s(a2.get(b("x"))) == "1")
        let old = held.oldA.statistics
        #expect(KVStatisticsTests.total(old) == 0, "the closed instance counted it: \(old)")
        #expect(a2.statistics.recoveredCommitted == 1, "\(a2.statistics)")
        var commits = 0
        var cursor = try a2.stream.records()
        while let r = try cursor.next() {
            guard r.type == .data else { continue }
            if case .commit = try KVRecord.decode(r.data) { commits += 1 }
        }
        #expect(commits == 1, "\(commits) commit records in the store's stream")
        a2.close()
        withExtendedLifetime(held) {}
    }
}
