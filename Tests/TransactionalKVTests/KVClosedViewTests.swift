// A transaction's view of a store that was closed (or whose TM was): closing rolled the transaction back
// or let go of it without telling this instance, so the view refuses further use with `closed`.

import Foundation
import LogStore
import Testing
import TransactionManager
@testable import TransactionalKV

@Suite struct KVClosedViewTests {
    /// Before, the view of a closed store went on taking puts and answering reads for a transaction the
    /// close had already rolled back; only `commit()` said so.
    @Test func aViewOfAClosedStoreRefusesUse() async throws {
        let w = try KVWorld(stores: 2, tag: "closed-view")
        defer { w.finish() }
        try await w.load(w.a, [("x", "0")])
        let tx = try w.tm.createTransaction()
        let va = try w.a.begin(tx)
        try va.put(b("x"), b("1"))
        try w.b.begin(tx).put(b("y"), b("1"))
        w.a.close()
        expectLogError(.closed) { try va.put(b("z"), b("1")) }
        expectLogError(.closed) { try va.delete(b("x")) }
        expectLogError(.closed) { _ = try va.get(b("x")) }
        expectLogError(.closed) { _ = try va.scan() }
        expectLogError(.closed) { _ = try w.a.begin(tx) }
        await #expect(throws: LogError.self) { try await tx.commit() }
        #expect(tx.outcome == .aborted)
        #expect(w.b.get(b("y")) == nil)
        // The store opened again has none of it, and its keys are free.
        let a2 = try KVStore.open(transactionManager: w.tm, id: w.storeIDs[0], directory: w.dataDirectory)
        defer { a2.close() }
        #expect(s(a2.get(b("x"))) == "0")
        let t2 = try w.tm.createTransaction()
        try a2.begin(t2).put(b("x"), b("2"))
        try w.b.begin(t2).put(b("y"), b("2"))
        try await t2.commit()
        #expect(s(a2.get(b("x"))) == "2" && s(w.b.get(b("y"))) == "2")
    }

    /// The same once the store's TM is closed (which closes the store's resource manager).
    @Test func aViewOfAStoreWhoseTMClosedRefusesUse() async throws {
        let w = try KVWorld(stores: 1, tag: "closed-tm-view")
        defer { w.finish() }
        let tx = try w.tm.createTransaction()
        let va = try w.a.begin(tx)
        try va.put(b("x"), b("1"))
        try w.tm.close()
        expectLogError(.closed) { try va.put(b("x"), b("2")) }
        expectLogError(.closed) { _ = try va.get(b("x")) }
        #expect(w.a.get(b("x")) == nil)
    }
}
