// A forced outcome delivered to one store, then a crash before the other store (not open) took it:
// recovery sends the outcome again to both. The store that applied it must acknowledge the repeat
// without applying it again, also after its own checkpoint dropped the records and a later commit
// wrote the same key (a repeated apply would bring back the old value).

import Foundation
import LogStore
import Testing
import TransactionManager
import TxLogTestSupport
@testable import TransactionalKV

@Suite struct KVRedeliveredOutcomeTests {
    @Test(arguments: ["commit", "rollback"])
    func outcomeRedeliveredAfterACrashMidResolutionIsAppliedOnce(_ action: String) async throws {
        let (w, id) = try await KVToolResolveTests.inDoubtWorld("redeliver-\(action)")
        defer { w.finish() }
        // Life 2: only store a opens. The resolve reaches it; b owes its acknowledgement.
        var log = try LogStore.open(at: w.directory + "/log")
        var tm = try TransactionManager.open(log: log)
        try tm.recover()
        let a = try KVStore.open(transactionManager: tm, id: w.storeIDs[0], directory: w.dataDirectory)
        try await tm.resolve(id, action: action == "commit" ? .commit : .rollback, reason: "coordinator lost")
        #expect(w.contents(a)["alice"] == (action == "commit" ? "60" : "100"))
        #expect(tm.transactionSnapshots().map(\.id) == [id], "store b has not acknowledged")
        // A later commit writes the same key, and the store checkpoints: its stream no longer holds
        // the transaction's records.
        let later = try tm.createTransaction()
        try a.begin(later).put(b("alice"), b("70"))
        try await later.commit()
        _ = try a.checkpoint()
        try log.close()  // crash: neither the TM nor the store is closed

        // Life 3: both stores; the outcome goes to both again.
        log = try LogStore.open(at: w.directory + "/log")
        tm = try TransactionManager.open(log: log)
        try tm.recover()
        let a3 = try KVStore.open(transactionManager: tm, id: w.storeIDs[0], directory: w.dataDirectory)
        let b3 = try KVStore.open(transactionManager: tm, id: w.storeIDs[1], directory: w.dataDirectory)
        #expect(await eventually { tm.transactionSnapshots().isEmpty }, "both stores acknowledged")
        #expect(w.contents(a3) == ["alice": "70"], "the repeated outcome is not applied again")
        #expect(w.contents(b3) == (action == "commit" ? ["bob": "40"] : [:]))
        #expect(a3.inDoubtTransactions.isEmpty && b3.inDoubtTransactions.isEmpty)
        // And once more: nothing is owed, nothing changes.
        try log.close()
        log = try LogStore.open(at: w.directory + "/log")
        tm = try TransactionManager.open(log: log)
        try tm.recover()
        #expect(tm.transactionSnapshots().isEmpty)
        let a4 = try KVStore.open(transactionManager: tm, id: w.storeIDs[0], directory: w.dataDirectory)
        let b4 = try KVStore.open(transactionManager: tm, id: w.storeIDs[1], directory: w.dataDirectory)
        #expect(w.contents(a4) == ["alice": "70"])
        #expect(w.contents(b4) == (action == "commit" ? ["bob": "40"] : [:]))
        try tm.close()
        try log.close()
    }
}
