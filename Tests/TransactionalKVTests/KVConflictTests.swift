// Serializable isolation by optimistic validation: write-write, lost update, phantoms, read-only
// transactions, retries, and write skew across two stores.

import Dispatch
import Foundation
import LogStore
import Testing
import TransactionManager
@testable import TransactionalKV

@Suite struct KVConflictTests {
    /// Runs `body` in fresh transactions until one commits without a conflict; returns the attempts.
    static func retrying(_ tm: TransactionManager, max: Int = 20, _ body: (Transaction) throws -> Void) async throws -> Int {
        for attempt in 1...max {
            let tx = try tm.createTransaction()
            do {
                try body(tx)
                try await tx.commit()
                return attempt
            } catch let e as LogError where e.code == .conflict {
                continue
            }
        }
        throw LogError(.conflict, "still conflicting after \(max) attempts")
    }

    static func int(_ bytes: [UInt8]?) -> Int { Int(s(bytes) ?? "0")! }

    /// A key loaded from the snapshot, read by one transaction and deleted by another, is a conflict for
    /// the reader: keys used to load with version 0, the version an absent key reads as, so the delete
    /// went unseen and the reader's write brought the key back.
    @Test(arguments: [false, true]) func deletingAKeyTheReaderSawIsAConflict(fromSnapshot: Bool) async throws {
        let w = try KVWorld(stores: 1, tag: "delete-seen")
        defer { w.finish() }
        try await w.load(w.a, [("balance", "100"), ("other", "x")])
        if fromSnapshot {
            try w.a.checkpoint()
            try w.crashAndReopen()
        }
        let t1 = try w.tm.createTransaction()
        let v1 = try w.a.begin(t1)
        #expect(s(try v1.get(b("balance"))) == "100")
        let t2 = try w.tm.createTransaction()
        try w.a.begin(t2).delete(b("balance"))
        try await t2.commit()

        try v1.put(b("balance"), b("90"))
        await #expect(throws: LogError.self, "t1 read a key deleted since") { try await t1.commit() }
        #expect(w.a.get(b("balance")) == nil)
        #expect(w.contents(w.a) == ["other": "x"])
    }

    @Test func lostUpdateIsAConflictAndARetrySucceeds() async throws {
        let w = try KVWorld(stores: 1, tag: "lostupdate")
        defer { w.finish() }
        try await w.load(w.a, [("n", "10")])
        let t1 = try w.tm.createTransaction(), t2 = try w.tm.createTransaction()
        let v1 = try w.a.begin(t1), v2 = try w.a.begin(t2)
        let n1 = Self.int(try v1.get(b("n"))), n2 = Self.int(try v2.get(b("n")))
        try v1.put(b("n"), b("\(n1 + 1)"))
        try v2.put(b("n"), b("\(n2 + 1)"))
        try await t1.commit()
        await expectLogError(.conflict, "t2 read n before t1 changed it") { try await t2.commit() }
        #expect(s(w.a.get(b("n"))) == "11")
        #expect(w.a.statistics.conflicts == 1)
        // Retrying the increment reads the new value and commits.
        let attempts = try await Self.retrying(w.tm) { tx in
            let v = try w.a.begin(tx)
            try v.put(b("n"), b("\(Self.int(try v.get(b("n"))) + 1)"))
        }
        #expect(attempts == 1)
        #expect(s(w.a.get(b("n"))) == "12")
        // A read of an absent key is validated too: someone inserting it is a conflict.
        let t3 = try w.tm.createTransaction()
        let v3 = try w.a.begin(t3)
        #expect(try v3.get(b("fresh")) == nil)
        try v3.put(b("other"), b("1"))
        try await w.load(w.a, [("fresh", "x")])
        await expectLogError(.conflict) { try await t3.commit() }
        #expect(w.a.get(b("other")) == nil)
    }

    @Test func writeWriteAgainstAPreparedTransaction() async throws {
        let w = try KVWorld(stores: 2, tag: "writewrite")
        defer { w.finish() }
        // Blind writes after a commit are serializable (last writer wins): no conflict.
        let x = try w.tm.createTransaction(), y = try w.tm.createTransaction()
        try w.a.begin(x).put(b("k"), b("x"))
        try w.a.begin(y).put(b("k"), b("y"))
        try await x.commit()
        try await y.commit()
        #expect(s(w.a.get(b("k"))) == "y")
        // A write to a key held by a prepared transaction is a conflict.
        let sup = try await w.preparedUnderASuperior()
        let q = try w.tm.createTransaction()
        try w.a.begin(q).put(b("k"), b("q"))
        await expectLogError(.conflict, "k is locked by prepared p") { try await q.commit() }
        // Reading a locked key is a conflict too (its value is about to change).
        let r = try w.tm.createTransaction()
        #expect(s(try w.b.begin(r).get(b("j"))) == nil)
        await expectLogError(.conflict) { try await r.commit() }
        try await sup.commit()
        #expect(s(w.a.get(b("k"))) == "p" && s(w.b.get(b("j"))) == "p")
        // Once p committed the same write goes through.
        _ = try await Self.retrying(w.tm) { try w.a.begin($0).put(b("k"), b("q")) }
        #expect(s(w.a.get(b("k"))) == "q")
    }

    @Test func phantomInsertIntoAScannedRange() async throws {
        let w = try KVWorld(stores: 1, tag: "phantom")
        defer { w.finish() }
        try await w.load(w.a, [("item/1", "a"), ("item/3", "c"), ("other", "z")])
        // A counts the items and records the count; B inserts an item and commits first.
        let ta = try w.tm.createTransaction()
        let va = try w.a.begin(ta)
        let count = try va.scan(from: b("item/"), to: b("item0")).count
        try va.put(b("count"), b("\(count)"))
        try await w.load(w.a, [("item/2", "b")])
        await expectLogError(.conflict, "a phantom appeared in A's range") { try await ta.commit() }
        #expect(w.a.get(b("count")) == nil)
        // A deletion in the range is a phantom too.
        let tb = try w.tm.createTransaction()
        let vb = try w.a.begin(tb)
        _ = try vb.scan(from: b("item/"), to: b("item0"))
        try vb.put(b("count"), b("3"))
        let del = try w.tm.createTransaction()
        try w.a.begin(del).delete(b("item/1"))
        try await del.commit()
        await expectLogError(.conflict) { try await tb.commit() }
        // Writes outside the scanned range do not conflict.
        let tc = try w.tm.createTransaction()
        let vc = try w.a.begin(tc)
        #expect(try vc.scan(from: b("item/"), to: b("item0")).count == 2)
        try vc.put(b("count"), b("2"))
        try await w.load(w.a, [("other", "y"), ("item0", "edge"), ("item", "before")])  // end exclusive, start inclusive
        try await tc.commit()
        #expect(s(w.a.get(b("count"))) == "2")
        // An insert into the range by a prepared transaction is a conflict as well.
        let td = try w.tm.createTransaction()
        let vd = try w.a.begin(td)
        _ = try vd.scan(from: b("item/"), to: b("item0"))
        try vd.put(b("count"), b("9"))
        let pre = try w.tm.createTransaction()
        try w.a.begin(pre).put(b("item/5"), b("e"))
        let sup = try pre.enlistSuperior()
        _ = try await sup.prepare()
        await expectLogError(.conflict) { try await td.commit() }
        try sup.rollback()
        _ = await sup.waitForOutcome()
        #expect(w.a.get(b("item/5")) == nil)
    }

    @Test func readOnlyTransactionsValidate() async throws {
        let w = try KVWorld(stores: 2, tag: "readonly")
        defer { w.finish() }
        try await w.load(w.a, [("a", "1"), ("b", "2")])
        try await w.load(w.b, [("c", "3")])
        // Unrelated commits in between: the reader commits, reading a consistent state.
        let r = try w.tm.createTransaction()
        let ra = try w.a.begin(r), rb = try w.b.begin(r)
        #expect(s(try ra.get(b("a"))) == "1")
        #expect(keysOf(try rb.scan()) == ["c"])
        try await w.load(w.a, [("z", "26")])
        let syncs0 = w.syncs
        try await r.commit()
        // Reading in two stores: each holds its reads until the decision, which the TM forces.
        #expect(w.syncs - syncs0 == 1)
        #expect(w.a.lock.withLock { w.a.active.isEmpty } && w.b.lock.withLock { w.b.active.isEmpty })
        #expect(try KVRollbackTests.records(w.b).count == 1, "a store that only read logs nothing")
        // Read-only in one store: single-phase validation, no log write at all.
        let single = try w.tm.createTransaction()
        #expect(try w.b.begin(single).scan().count == 1)
        let syncs1 = w.syncs
        try await single.commit()
        #expect(w.syncs == syncs1)
        // A reader whose key changed under it cannot commit (its reads would not be serializable).
        let r2 = try w.tm.createTransaction()
        #expect(s(try w.a.begin(r2).get(b("b"))) == "2")
        try await w.load(w.a, [("b", "20")])
        await expectLogError(.conflict) { try await r2.commit() }
        #expect(w.a.statistics.conflicts == 1)
    }

    /// Write skew across two stores. T1 reads x (store A) and writes w (store B); T2 writes x and reads w.
    /// T1 prepares in A, then T2 runs entirely, then T1 prepares in B. Committing both would be a cycle
    /// (T1 read x before T2 wrote it; T2 read w before T1 wrote it), so one of them must get a conflict.
    @Test func writeSkewAcrossTwoStoresIsRefused() async throws {
        let w = try KVWorld(stores: 2, tag: "skew")
        defer { w.finish() }
        try await w.load(w.a, [("x", "0")])
        try await w.load(w.b, [("w", "0")])
        // A volatile RM enlisted between the two stores holds T1's prepare phase after A prepared.
        let (reached, reachedC) = AsyncStream.makeStream(of: Void.self)
        let release = DispatchSemaphore(value: 0)
        let gate = try w.tm.createResourceManager(description: "gate", volatile: true) { n in
            guard n.kind == .prepare, let e = n.enlistment else {
                if n.kind == .prePrepare { try? n.enlistment?.prePrepareComplete() }
                if n.kind == .rollback { try? n.enlistment?.rollbackComplete() }
                if n.kind == .commit { try? n.enlistment?.commitComplete() }
                return
            }
            reachedC.yield()
            release.wait()
            try? e.readOnly()
        }
        try gate.recover()
        let t1 = try w.tm.createTransaction()
        #expect(s(try w.a.begin(t1).get(b("x"))) == "0")
        _ = try gate.enlist(t1, mask: [.prepare])
        try w.b.begin(t1).put(b("w"), b("1"))
        // T1's commit runs on its own thread: the gate blocks that thread, not the cooperative pool.
        let t1Commit = Task(executorPreference: DedicatedThreadExecutor.shared) { () -> LogError.Code? in
            do {
                try await t1.commit()
                return nil
            } catch let e as LogError { return e.code } catch { return .io }
        }
        var it = reached.makeAsyncIterator()
        _ = await it.next()  // A has prepared T1; B has not
        #expect(w.a.lock.withLock { w.a.active[t1.id]?.state } == .prepared, "A holds T1's read of x until the outcome")
        let t2 = try w.tm.createTransaction()
        try w.a.begin(t2).put(b("x"), b("1"))
        #expect(s(try w.b.begin(t2).get(b("w"))) == "0")
        var t2Error: LogError.Code?
        do { try await t2.commit() } catch let e as LogError { t2Error = e.code }
        release.signal()
        let t1Error = await t1Commit.value
        #expect(t1Error == nil || t2Error == nil, "at most one may fail")
        #expect(t1Error != nil || t2Error != nil, "committing both is write skew: x=\(s(w.a.get(b("x")))!) w=\(s(w.b.get(b("w")))!)")
        #expect(t2Error == .conflict, "T2 writes x, which prepared T1 read")
        #expect(s(w.a.get(b("x"))) == (t2Error == nil ? "1" : "0"))
        #expect(s(w.b.get(b("w"))) == (t1Error == nil ? "1" : "0"))
    }
}

/// A task executor with one thread of its own, for a task that must be allowed to block.
final class DedicatedThreadExecutor: TaskExecutor, @unchecked Sendable {
    static let shared = DedicatedThreadExecutor()
    private let queue = DispatchQueue(label: "kv-tests.dedicated")

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queue.async { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
