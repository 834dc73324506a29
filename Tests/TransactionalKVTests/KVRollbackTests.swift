// Rollback leaves no trace: an explicit rollback, a veto (conflict), a timeout, a dropped handle —
// nothing visible, nothing locked, nothing applied after a crash and reopen.

import Foundation
import LogStore
import Testing
import TransactionManager
@testable import TransactionalKV

@Suite struct KVRollbackTests {
    /// Nothing of a rolled-back transaction remains in `store`: no values, locks, views or pending writes.
    static func expectNoTrace(_ w: KVWorld, _ store: KVStore, keys: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        for k in keys { #expect(store.get(b(k)) == nil, "\(k) is visible", sourceLocation: sourceLocation) }
        #expect(store.lock.withLock { store.locks.isEmpty && store.active.isEmpty && store.pending.isEmpty }, sourceLocation: sourceLocation)
        #expect(store.inDoubtTransactions.isEmpty, sourceLocation: sourceLocation)
    }

    /// The decoded records of a store's stream.
    static func records(_ store: KVStore) throws -> [KVRecord] {
        var out: [KVRecord] = []
        var cursor = try store.stream.records()
        while let r = try cursor.next() {
            if r.type == .data { out.append(try KVRecord.decode(r.data)) }
        }
        return out
    }

    @Test func explicitRollback() async throws {
        let w = try KVWorld(stores: 2, tag: "rollback")
        defer { w.finish() }
        try await w.load(w.a, [("keep", "1")])
        let tx = try w.tm.createTransaction()
        let va = try w.a.begin(tx), vb = try w.b.begin(tx)
        try va.put(b("x"), b("1"))
        try va.delete(b("keep"))
        try vb.put(b("y"), b("2"))
        try tx.rollback()
        await expectLogError(.aborted) { try await tx.commit() }
        expectLogError(.invalidState, "the view is finished") { try va.put(b("z"), b("3")) }
        Self.expectNoTrace(w, w.a, keys: ["x", "z"])
        Self.expectNoTrace(w, w.b, keys: ["y"])
        #expect(s(w.a.get(b("keep"))) == "1")
        #expect(w.a.statistics.rollbacks == 1 && w.b.statistics.rollbacks == 1)
        // Never prepared: nothing was logged for it.
        #expect(try Self.records(w.b).isEmpty)
        // A handle closed before commit rolls back the same way.
        var dropped: Transaction? = try w.tm.createTransaction()
        try w.b.begin(dropped!).put(b("dropped"), b("1"))
        dropped = nil
        Self.expectNoTrace(w, w.b, keys: ["dropped"])
        try w.crashAndReopen()
        Self.expectNoTrace(w, w.a, keys: ["x", "z"])
        Self.expectNoTrace(w, w.b, keys: ["y", "dropped"])
        #expect(w.contents(w.a) == ["keep": "1"])
    }

    /// Store A prepares (a logged prepare record, keys locked); store B vetoes with a conflict. Both roll
    /// back, commit throws `conflict`, and A's stream ends with an abort record.
    @Test func vetoByOneStoreRollsBackBoth() async throws {
        let w = try KVWorld(stores: 2, tag: "veto")
        defer { w.finish() }
        try await w.load(w.b, [("n", "1")])
        let tx = try w.tm.createTransaction()
        let va = try w.a.begin(tx), vb = try w.b.begin(tx)
        try va.put(b("a1"), b("x"))
        try va.put(b("a2"), b("y"))
        #expect(s(try vb.get(b("n"))) == "1")
        try vb.put(b("n"), b("2"))
        try await w.load(w.b, [("n", "5")])  // invalidates tx's read of n
        let syncs0 = w.syncs
        await expectLogError(.conflict, "B vetoes") { try await tx.commit() }
        #expect(w.syncs == syncs0, "an aborted transaction forces nothing")
        Self.expectNoTrace(w, w.a, keys: ["a1", "a2"])
        #expect(s(w.b.get(b("n"))) == "5")
        #expect(w.b.lock.withLock { w.b.locks.isEmpty && w.b.active.isEmpty })
        let aRecords = try Self.records(w.a)
        #expect(aRecords.count == 2)
        if case .prepare(let id, let writes)? = aRecords.first {
            #expect(id == tx.id && writes.map(\.key) == [b("a1"), b("a2")])
        } else {
            Issue.record("A's first record is \(String(describing: aRecords.first))")
        }
        #expect(aRecords.last == .abort(tx.id))
        // The keys are free again.
        try await w.load(w.a, [("a1", "free")])
        try w.crashAndReopen()
        #expect(w.contents(w.a) == ["a1": "free"])
        #expect(w.contents(w.b) == ["n": "5"])
        Self.expectNoTrace(w, w.a, keys: ["a2"])
    }

    @Test func timeoutRollsBack() async throws {
        let w = try KVWorld(stores: 2, tag: "timeout")
        defer { w.finish() }
        let tx = try w.tm.createTransaction(timeout: .milliseconds(30))
        let va = try w.a.begin(tx), vb = try w.b.begin(tx)
        try va.put(b("late"), b("1"))
        try vb.put(b("late"), b("2"))
        // Wait until the timeout fired (bounded; no timing assertion).
        _ = await eventually { tx.state != .active }
        #expect(tx.outcome == .aborted)
        await expectLogError(.aborted) { try await tx.commit() }
        expectLogError(.invalidState) { try va.put(b("later"), b("1")) }
        Self.expectNoTrace(w, w.a, keys: ["late", "later"])
        Self.expectNoTrace(w, w.b, keys: ["late"])
        // A transaction that commits within its timeout is unaffected.
        let quick = try w.tm.createTransaction(timeout: .seconds(60))
        try w.a.begin(quick).put(b("quick"), b("1"))
        try await quick.commit()
        try w.crashAndReopen()
        Self.expectNoTrace(w, w.a, keys: ["late"])
        Self.expectNoTrace(w, w.b, keys: ["late"])
        #expect(w.contents(w.a) == ["quick": "1"])
    }

    /// Prepared in a store's log but never decided (no TM record at all): presumed abort at recovery.
    @Test func preparedWithoutDecisionIsPresumedAborted() async throws {
        let w = try KVWorld(stores: 2, tag: "presumed")
        defer { w.finish() }
        let tx = try w.tm.createTransaction()
        try w.a.begin(tx).put(b("orphan"), b("1"))
        try w.b.begin(tx).put(b("orphan"), b("2"))
        // Log A's and B's prepare records by hand, as a prepare phase cut short by a crash would: the
        // records are durable (flushed explicitly) but the TM never logged a decision.
        for store in [w.a, w.b] {
            let v = store.lock.withLock { store.active[tx.id]! }
            let lsn = try store.stream.append(KVRecord.prepare(tx.id, v.loggedWrites).encode())
            try await store.stream.flush(upTo: lsn)
        }
        try w.crashAndReopen()
        Self.expectNoTrace(w, w.a, keys: ["orphan"])
        Self.expectNoTrace(w, w.b, keys: ["orphan"])
        #expect(w.a.statistics.recoveredAborted == 1 && w.b.statistics.recoveredAborted == 1)
        #expect(try Self.records(w.a).last == .abort(tx.id))
        try w.crashAndReopen()
        Self.expectNoTrace(w, w.a, keys: ["orphan"])
        #expect(w.a.statistics.recoveredAborted == 0, "the abort record settled it")
    }
}
