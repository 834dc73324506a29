// Recovery: committed data survives a crash; a transaction prepared in two stores under a superior is in
// doubt after a crash (keys locked) until the superior or `tm.resolve` decides it, in both stores at once.

import Foundation
import LogStore
import Testing
import TransactionManager
@testable import TransactionalKV

@Suite struct KVRecoveryTests {
    @Test func committedDataSurvivesACrash() async throws {
        let w = try KVWorld(stores: 2, tag: "survive")
        defer { w.finish() }
        try await w.load(w.a, [("one", "1"), ("two", "2"), ("three", "3")])
        let tx = try w.tm.createTransaction()
        let va = try w.a.begin(tx), vb = try w.b.begin(tx)
        try va.delete(b("two"))
        try va.put(b("three"), b("33"))
        try vb.put(b("four"), b("4"))
        try await tx.commit()
        let before = (w.contents(w.a), w.contents(w.b))
        for _ in 0..<2 {
            try w.crashAndReopen()
            #expect(w.contents(w.a) == before.0 && w.contents(w.b) == before.1)
            #expect(w.contents(w.a) == ["one": "1", "three": "33"])
            #expect(w.a.inDoubtTransactions.isEmpty && w.b.inDoubtTransactions.isEmpty)
        }
        // The reopened stores keep working, and a clean close (TM checkpoint) reopens the same.
        try await w.load(w.b, [("five", "5")])
        try w.tm.close()
        try w.crashAndReopen()
        #expect(w.contents(w.b) == ["four": "4", "five": "5"])
    }

    /// Prepares `tx` (writing in both stores) under a superior and returns the superior.
    static func prepareInBoth(_ w: KVWorld) async throws -> Transaction {
        let tx = try w.tm.createTransaction(description: "in doubt")
        let va = try w.a.begin(tx), vb = try w.b.begin(tx)
        try va.put(b("doubt"), b("A"))
        try va.delete(b("gone"))
        try vb.put(b("doubt"), b("B"))
        let sup = try tx.enlistSuperior()
        #expect(try await sup.prepare() == .prepared)
        #expect(w.a.get(b("doubt")) == nil, "not visible while prepared")
        return tx
    }

    /// The in-doubt transaction's keys are locked: reading or writing them is a conflict.
    static func expectLocked(_ w: KVWorld, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let writer = try w.tm.createTransaction()
        try w.a.begin(writer).put(b("gone"), b("overwrite"))
        await expectLogError(.conflict, "a write to an in-doubt key", sourceLocation: sourceLocation) { try await writer.commit() }
        let reader = try w.tm.createTransaction()
        _ = try w.b.begin(reader).get(b("doubt"))
        await expectLogError(.conflict, "a read of an in-doubt key", sourceLocation: sourceLocation) { try await reader.commit() }
        // Other keys are free.
        let other = try w.tm.createTransaction()
        try w.a.begin(other).put(b("free"), b("1"))
        try w.b.begin(other).put(b("free"), b("1"))
        try await other.commit()
    }

    static func expectInDoubt(_ w: KVWorld, _ id: GUID, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(w.a.inDoubtTransactions == [id], sourceLocation: sourceLocation)
        #expect(w.b.inDoubtTransactions == [id], sourceLocation: sourceLocation)
        #expect(w.tm.inDoubtTransactions().map(\.id) == [id], sourceLocation: sourceLocation)
        #expect(w.a.get(b("doubt")) == nil && w.b.get(b("doubt")) == nil, sourceLocation: sourceLocation)
        #expect(s(w.a.get(b("gone"))) == "still here", sourceLocation: sourceLocation)
    }

    @Test(arguments: [ForcedAction.commit, .rollback])
    func inDoubtAfterCrashThenResolved(action: ForcedAction) async throws {
        let w = try KVWorld(stores: 2, tag: "indoubt")
        defer { w.finish() }
        try await w.load(w.a, [("gone", "still here")])
        let id = try await Self.prepareInBoth(w).id
        try w.crashAndReopen()
        Self.expectInDoubt(w, id)
        try await Self.expectLocked(w)
        // Still in doubt after a second crash, keys still locked.
        try w.crashAndReopen()
        Self.expectInDoubt(w, id)
        try await Self.expectLocked(w)
        try await w.tm.resolve(id, action: action, actor: "kv-tests", reason: "test")
        // Counted once, as recovered (a recovered rollback was also counted as a rollback before).
        for store in [w.a, w.b] {
            let st = store.statistics
            #expect(st.rollbacks == 0)
            #expect(action == .commit ? st.recoveredCommitted == 1 && st.recoveredAborted == 0 : st.recoveredAborted == 1 && st.recoveredCommitted == 0)
        }
        func expectOutcome(sourceLocation: SourceLocation = #_sourceLocation) {
            #expect(w.a.inDoubtTransactions.isEmpty && w.b.inDoubtTransactions.isEmpty, sourceLocation: sourceLocation)
            #expect(w.tm.inDoubtTransactions().isEmpty, sourceLocation: sourceLocation)
            if action == .commit {
                #expect(s(w.a.get(b("doubt"))) == "A" && s(w.b.get(b("doubt"))) == "B", sourceLocation: sourceLocation)
                #expect(w.a.get(b("gone")) == nil, sourceLocation: sourceLocation)
            } else {
                #expect(w.a.get(b("doubt")) == nil && w.b.get(b("doubt")) == nil, sourceLocation: sourceLocation)
                #expect(s(w.a.get(b("gone"))) == "still here", sourceLocation: sourceLocation)
            }
            #expect(s(w.a.get(b("free"))) == "1" && s(w.b.get(b("free"))) == "1", sourceLocation: sourceLocation)
        }
        expectOutcome()
        #expect(w.a.lock.withLock { w.a.locks.isEmpty } && w.b.lock.withLock { w.b.locks.isEmpty })
        // The keys are free again: a transaction reading and rewriting them commits.
        let touch = try w.tm.createTransaction()
        let ta = try w.a.begin(touch), tb = try w.b.begin(touch)
        for (v, k) in [(ta, "gone"), (tb, "doubt")] {
            if let val = try v.get(b(k)) { try v.put(b(k), val) } else { try v.delete(b(k)) }
        }
        try await touch.commit()
        try w.crashAndReopen()
        expectOutcome()
        try w.crashAndReopen()
        expectOutcome()
    }

    /// The superior re-attaches after the crash and commits: both stores apply, exactly once.
    /// A store whose open fails (a damaged snapshot) leaves nothing open: once the snapshot is repaired,
    /// the store opens on the same TM. Before, its RM stayed open and every later open got alreadyExists.
    @Test func failedOpenCanBeRetried() async throws {
        let w = try KVWorld(stores: 1, tag: "failed-open")
        defer { w.finish() }
        try await w.load(w.a, [("k", "v")])
        try w.a.checkpoint()
        let snapshot = w.dataDirectory + "/" + w.snapshotFiles()[0]
        let good = try Data(contentsOf: URL(fileURLWithPath: snapshot))
        var bad = good
        bad[50] ^= 0xFF
        try bad.write(to: URL(fileURLWithPath: snapshot))
        try w.crash()
        let log = try LogStore.open(at: w.directory + "/log")
        defer { try? log.close() }
        let tm = try TransactionManager.open(log: log)
        try tm.recover()
        expectLogError(.corrupt) { _ = try KVStore.open(transactionManager: tm, id: w.storeIDs[0], directory: w.dataDirectory) }
        try good.write(to: URL(fileURLWithPath: snapshot))
        let store = try KVStore.open(transactionManager: tm, id: w.storeIDs[0], directory: w.dataDirectory)
        defer { store.close() }
        #expect(s(store.get(b("k"))) == "v")
    }

    /// A closed instance writes no checkpoint and begins nothing. Before, its checkpoint (a late
    /// tail-pinned one, say) covered records a reopened instance of the same store had written with a
    /// snapshot of its own older table, and those commits were lost at the next restart.
    @Test func aClosedInstanceWritesNoCheckpoint() async throws {
        let w = try KVWorld(stores: 1, tag: "closed-checkpoint")
        defer { w.finish() }
        let old = w.a
        try await w.load(old, [("k1", "v1")])
        old.close()
        let reopened = try KVStore.open(transactionManager: w.tm, id: w.storeIDs[0], directory: w.dataDirectory)
        try await w.load(reopened, [("k2", "v2")])
        expectLogError(.closed) { try old.checkpoint() }
        expectLogError(.closed) { _ = try old.begin(try w.tm.createTransaction()) }
        old.close()  // twice: nothing happens
        try w.crashAndReopen()
        #expect(w.contents(w.a) == ["k1": "v1", "k2": "v2"])
    }

    /// The same after `tm.close()`, which closes the store's RM but not the store: the store opened
    /// again on a new TM object commits, and the old instance's checkpoint is refused. Before, it wrote
    /// a snapshot of its older table covering the new instance's commit record, and that commit (an
    /// acknowledged one) was gone after the next restart.
    @Test func anInstanceWhoseTMClosedWritesNoCheckpoint() async throws {
        let dir = try makeTempDirectory("tm-closed-checkpoint")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let id = GUID.random()
        let log = try LogStore.create(at: dir + "/log", options: KVWorld.tinyLog)
        let tm = try TransactionManager.create(log: log)
        try tm.recover()
        let old = try KVStore.open(transactionManager: tm, id: id, directory: dir + "/data")
        let t1 = try tm.createTransaction()
        try old.begin(t1).put(b("k1"), b("v1"))
        try await t1.commit()
        try tm.close()
        let tm2 = try TransactionManager.open(log: log)
        try tm2.recover()
        let reopened = try KVStore.open(transactionManager: tm2, id: id, directory: dir + "/data")
        let t2 = try tm2.createTransaction()
        try reopened.begin(t2).put(b("k2"), b("v2"))
        try await t2.commit()
        expectLogError(.closed) { try old.checkpoint() }
        try log.close()
        let log3 = try LogStore.open(at: dir + "/log")
        defer { try? log3.close() }
        let tm3 = try TransactionManager.open(log: log3)
        try tm3.recover()
        let again = try KVStore.open(transactionManager: tm3, id: id, directory: dir + "/data")
        #expect(s(again.get(b("k1"))) == "v1")
        #expect(s(again.get(b("k2"))) == "v2", "the commit acknowledged by the reopened instance survives")
    }

    /// A store registered with one TM is not opened on another TM of the same log (`already-exists`),
    /// in the same process or after a restart. Before, the other TM registered it too, reusing its
    /// stream: the store presumed abort a transaction its own TM had committed (it was closed meanwhile),
    /// and its own TM's commit, delivered later, found nothing pending: the other store kept its half.
    @Test(arguments: [false, true])
    func aStoreOfOneTMIsNotOpenedOnAnother(afterRestart: Bool) async throws {
        let w = try KVWorld(stores: 2, tag: "other-tm")
        defer { w.finish() }
        let sup = try await w.preparedUnderASuperior()
        w.b.close()
        await BackgroundCall { try await sup.commit() }.expectSuccess("the superior's commit with store b closed")
        #expect(s(w.a.get(b("k"))) == "p")
        if afterRestart {
            try w.crash()
            try w.reopen()
        }
        let other = try TransactionManager.create(log: w.log, stream: "ktm-other")
        try other.recover()
        expectLogError(.alreadyExists) { _ = try KVStore.open(transactionManager: other, id: w.storeIDs[1], directory: w.dataDirectory) }
        if !afterRestart {
            let reopened = try KVStore.open(transactionManager: w.tm, id: w.storeIDs[1], directory: w.dataDirectory)
            defer { reopened.close() }
            #expect(s(reopened.get(b("j"))) == "p", "store b applies the commit of its own TM")
        } else {
            #expect(s(w.b.get(b("j"))) == "p", "store b applies the commit of its own TM")
        }
    }

    @Test func superiorReattachesAfterCrash() async throws {
        let w = try KVWorld(stores: 2, tag: "reattach")
        defer { w.finish() }
        try await w.load(w.a, [("gone", "still here")])
        let id = try await Self.prepareInBoth(w).id
        try w.crashAndReopen()
        Self.expectInDoubt(w, id)
        let sup = try w.tm.superior(for: id)
        try await sup.commit()
        #expect(s(w.a.get(b("doubt"))) == "A" && s(w.b.get(b("doubt"))) == "B" && w.a.get(b("gone")) == nil)
        #expect(w.a.statistics.recoveredCommitted == 1 && w.b.statistics.recoveredCommitted == 1)
        try w.crashAndReopen()
        #expect(s(w.a.get(b("doubt"))) == "A" && s(w.b.get(b("doubt"))) == "B" && w.a.get(b("gone")) == nil)
        #expect(w.a.statistics.recoveredCommitted == 0, "the commit record settled it: nothing re-applied")
        #expect(w.a.inDoubtTransactions.isEmpty && w.tm.inDoubtTransactions().isEmpty)
    }

    /// Committed by the superior before the crash: recovery neither loses nor re-applies it.
    @Test func superiorCommitSurvivesACrash() async throws {
        let w = try KVWorld(stores: 2, tag: "idempotent")
        defer { w.finish() }
        try await w.load(w.a, [("gone", "still here")])
        let tx = try await Self.prepareInBoth(w)
        let sup = try w.tm.superior(for: tx.id)
        try await sup.commit()
        try w.crashAndReopen()
        #expect(s(w.a.get(b("doubt"))) == "A" && s(w.b.get(b("doubt"))) == "B" && w.a.get(b("gone")) == nil)
        #expect(w.a.inDoubtTransactions.isEmpty && w.b.inDoubtTransactions.isEmpty)
        try await w.load(w.a, [("doubt", "A2")])
        try w.crashAndReopen()
        #expect(s(w.a.get(b("doubt"))) == "A2", "replaying the old transaction must not apply its writes over newer ones")
    }
}
