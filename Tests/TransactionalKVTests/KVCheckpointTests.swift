// Checkpoints: a snapshot file plus a restart area; recovery loads the snapshot and replays only the
// records after it; old snapshots are deleted; prepared transactions survive in the restart area; a
// checkpoint taken under concurrent transfers loses nothing.

import Foundation
import LogStore
import Synchronization
import Testing
import TransactionManager
@testable import TransactionalKV

@Suite struct KVCheckpointTests {
    /// The store's current checkpoint, decoded from its restart area.
    static func checkpointRecord(_ store: KVStore) throws -> KVCheckpoint {
        let restart = try #require(try store.stream.readRestartArea())
        guard case .checkpoint(let cp) = try KVRecord.decode(restart.data) else { throw LogError(.corrupt, "not a checkpoint") }
        return cp
    }

    @Test func recoveryLoadsTheSnapshotAndReplaysOnlyLaterRecords() async throws {
        let w = try KVWorld(stores: 2, tag: "ckpt")
        defer { w.finish() }
        try await w.load(w.a, [("x", "log"), ("y", "1"), ("z", "1")])
        try await w.load(w.a, [("y", "2")])
        let atCheckpoint = w.contents(w.a)
        let lsn = try w.a.checkpoint()
        #expect(try w.a.stream.readRestartArea()?.lsn == lsn)
        let cp = try Self.checkpointRecord(w.a)
        #expect(cp.store == w.a.id && cp.pending.isEmpty)
        #expect(cp.snapshotFile == KVSnapshotFile.name(store: w.a.id, generation: 1))
        // Nothing of the store came after the LSN the snapshot covers: the base is the restart record.
        #expect(w.a.stream.baseLSN == lsn && lsn > cp.coveredThrough, "records the snapshot covers are released")
        let snap = try KVSnapshotFile.read(io: PosixFileIO(), path: w.dataDirectory + "/" + cp.snapshotFile, store: w.a.id)
        #expect(snap.coveredThrough == cp.coveredThrough)
        #expect(Dictionary(uniqueKeysWithValues: snap.entries.map { (s($0.0.bytes)!, s($0.1)!) }) == atCheckpoint)

        // Later work: single-phase, two-phase, a delete.
        try await w.load(w.a, [("y", "3"), ("new", "n")])
        let tx = try w.tm.createTransaction()
        try w.a.begin(tx).delete(b("z"))
        try w.b.begin(tx).put(b("other"), b("o"))
        try await tx.commit()
        var later: [KVRecord] = []
        var cursor = try w.a.stream.records(from: cp.coveredThrough)
        while let r = try cursor.next() {
            if r.lsn > cp.coveredThrough && r.type == .data { later.append(try KVRecord.decode(r.data)) }
        }
        #expect(later.count == 3, "commitOnePhase, prepare, commit: \(later)")

        // Replace the snapshot with one that differs from what the old records would produce: x is
        // "snap" there, "log" in the records before the checkpoint. Recovery must not replay those.
        var entries = snap.entries.filter { $0.0 != Key(b("x")) }
        entries.append((Key(b("x")), b("snap")))
        entries.sort { $0.0 < $1.0 }
        try KVSnapshotFile.write(io: PosixFileIO(), directory: w.dataDirectory, name: cp.snapshotFile, store: w.a.id,
                                 coveredThrough: cp.coveredThrough, entries: entries)
        let live = w.contents(w.a)
        try w.crashAndReopen()
        var expected = live
        expected["x"] = "snap"
        #expect(w.contents(w.a) == expected)
        #expect(w.contents(w.b) == ["other": "o"])
        #expect(expected == ["x": "snap", "y": "3", "new": "n"])
    }

    @Test func oldSnapshotsAreDeleted() async throws {
        let w = try KVWorld(stores: 2, tag: "ckptfiles")
        defer { w.finish() }
        try await w.load(w.b, [("b", "1")])
        try w.b.checkpoint()
        let bFile = KVSnapshotFile.name(store: w.b.id, generation: 1)
        for g in 1...3 {
            try await w.load(w.a, [("k\(g)", "\(g)")])
            try w.a.checkpoint()
            #expect(w.snapshotFiles() == [KVSnapshotFile.name(store: w.a.id, generation: UInt64(g)), bFile].sorted())
        }
        try w.crashAndReopen()
        #expect(w.contents(w.a) == ["k1": "1", "k2": "2", "k3": "3"])
        // Generations continue after a reopen (no file is reused).
        try w.a.checkpoint()
        #expect(w.snapshotFiles() == [KVSnapshotFile.name(store: w.a.id, generation: 4), bFile].sorted())
        #expect(!w.snapshotFiles().contains { $0.hasSuffix(".tmp") })
        // A checkpoint of an empty store, and of a store emptied by deletes, reopens empty.
        let empty = try w.tm.createTransaction()
        for k in ["k1", "k2", "k3"] { try w.a.begin(empty).delete(b(k)) }
        try await empty.commit()
        try w.a.checkpoint()
        try w.crashAndReopen()
        #expect(w.a.count == 0 && w.contents(w.b) == ["b": "1"])
    }

    /// The records of the store's stream above the checkpoint's covered LSN, decoded.
    static func recordsAfterCheckpoint(_ store: KVStore) throws -> [KVRecord] {
        let cp = try checkpointRecord(store)
        var out: [KVRecord] = []
        var cursor = try store.stream.records(from: cp.coveredThrough)
        while let r = try cursor.next() {
            if r.type == .data && r.lsn > cp.coveredThrough { out.append(try KVRecord.decode(r.data)) }
        }
        return out
    }

    /// A transaction prepared at the checkpoint is carried across it by a new `prepare` record just above
    /// the covered LSN: committed after the checkpoint it is applied at recovery; left undecided under a
    /// superior it is in doubt.
    @Test func preparedTransactionsAreCarriedAcrossTheCheckpoint() async throws {
        let w = try KVWorld(stores: 2, tag: "ckptpending")
        defer { w.finish() }
        try await w.load(w.a, [("gone", "still here")])
        let decided = try w.tm.createTransaction()
        try w.a.begin(decided).put(b("decided"), b("yes"))
        try w.b.begin(decided).put(b("decided"), b("yes"))
        let decidedSup = try decided.enlistSuperior()
        _ = try await decidedSup.prepare()
        let doubtful = try await KVRecoveryTests.prepareInBoth(w)
        try w.a.checkpoint()
        try w.b.checkpoint()
        #expect(try Self.checkpointRecord(w.a).pending.isEmpty, "the restart area carries no write sets")
        let carried = try Self.recordsAfterCheckpoint(w.a)
        #expect(carried == [decided.id, doubtful.id].sorted().map { id in
            .prepare(id, id == decided.id ? [KVWrite(key: b("decided"), value: b("yes"))] : [KVWrite(key: b("doubt"), value: b("A")), KVWrite(key: b("gone"), value: nil)])
        })
        try await decidedSup.commit()  // its commit record lands after the checkpoint
        try w.crashAndReopen()
        #expect(s(w.a.get(b("decided"))) == "yes" && s(w.b.get(b("decided"))) == "yes")
        KVRecoveryTests.expectInDoubt(w, doubtful.id)
        try await KVRecoveryTests.expectLocked(w)
        // Checkpoint again while in doubt (pending carried from the recovered state), crash, resolve.
        try w.a.checkpoint()
        #expect(try Self.recordsAfterCheckpoint(w.a).map { record -> GUID? in
            if case .prepare(let id, _) = record { return id }
            return nil
        } == [doubtful.id])
        try w.crashAndReopen()
        KVRecoveryTests.expectInDoubt(w, doubtful.id)
        try await w.tm.resolve(doubtful.id, action: .commit)
        #expect(s(w.a.get(b("doubt"))) == "A" && s(w.b.get(b("doubt"))) == "B" && w.a.get(b("gone")) == nil)
        try w.a.checkpoint()
        try w.crashAndReopen()
        #expect(s(w.a.get(b("doubt"))) == "A" && s(w.b.get(b("doubt"))) == "B" && w.a.get(b("gone")) == nil)
        #expect(w.a.inDoubtTransactions.isEmpty && w.b.inDoubtTransactions.isEmpty)
    }

    /// 8 clients transfer between 8 accounts (4 per store, so both single- and two-phase commits) while
    /// checkpoints run. Each acknowledged transfer also writes a receipt key. After a crash: the total is
    /// conserved, every receipt is present, and the stores equal their live state.
    @Test func checkpointUnderConcurrentTransfers() async throws {
        let w = try KVWorld(stores: 2, tag: "ckptconc")
        defer { w.finish() }
        let accounts = (0..<8).map { (store: $0 < 4 ? 0 : 1, key: "acct\($0)") }
        try await w.load(w.a, (0..<4).map { ("acct\($0)", "1000") })
        try await w.load(w.b, (4..<8).map { ("acct\($0)", "1000") })
        let tm = w.tm, stores = w.stores
        let running = ManagedAtomicFlag()
        let checkpointer = Task.detached { () -> Int in
            while !running.isDone {
                for st in stores { _ = try? st.checkpoint() }
                running.checkpointed()
                try? await Task.sleep(for: .milliseconds(5))
            }
            return running.checkpoints
        }
        let receipts = try await withThrowingTaskGroup(of: [String].self) { group in
            for client in 0..<8 {
                group.addTask {
                    var rng = SplitMix64(seed: UInt64(100 + client))
                    var acked: [String] = []
                    for i in 0..<20 {
                        // Halfway, make sure a checkpoint completed while this client was running.
                        if i == 10 { while running.checkpoints < 1 { try await Task.sleep(for: .milliseconds(1)) } }
                        var from = Int.random(in: 0..<8, using: &rng), to = Int.random(in: 0..<7, using: &rng)
                        if to >= from { to += 1 }
                        if Bool.random(using: &rng) { swap(&from, &to) }
                        let amount = Int.random(in: 1...50, using: &rng)
                        let receipt = "r/\(client)/\(i)"
                        for _ in 0..<100 {
                            let tx = try tm.createTransaction()
                            do {
                                let vf = try stores[accounts[from].store].begin(tx), vt = try stores[accounts[to].store].begin(tx)
                                let x = Int(s(try vf.get(b(accounts[from].key)))!)!, y = Int(s(try vt.get(b(accounts[to].key)))!)!
                                try vf.put(b(accounts[from].key), b("\(x - amount)"))
                                try vt.put(b(accounts[to].key), b("\(y + amount)"))
                                try vf.put(b(receipt), b("\(amount)"))
                                try await tx.commit()
                                acked.append(receipt)
                                break
                            } catch let e as LogError where e.code == .conflict {
                                // Keys of a committing transaction stay locked over its log flush: back off.
                                try await Task.sleep(for: .microseconds(Int.random(in: 200...2000, using: &rng)))
                            }
                        }
                    }
                    return acked
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        running.finish()
        let checkpoints = await checkpointer.value
        #expect(checkpoints >= 1)
        #expect(w.a.lock.withLock { w.a.locks.isEmpty && w.a.active.isEmpty } && w.b.lock.withLock { w.b.locks.isEmpty && w.b.active.isEmpty },
                "no transaction is left holding keys: \(w.a.lock.withLock { w.a.locks.count }) \(w.b.lock.withLock { w.b.locks.count })")
        #expect(receipts.count > 120, "most transfers commit within 100 attempts")
        func total() -> Int { accounts.reduce(0) { $0 + Int(s(w.stores[$1.store].get(b($1.key)))!)! } }
        func present(_ r: String) -> Bool { w.a.get(b(r)) != nil || w.b.get(b(r)) != nil }
        #expect(total() == 8000)
        let live = (w.contents(w.a), w.contents(w.b))
        try w.a.checkpoint()  // one more, with the final state
        try w.crashAndReopen()
        #expect(total() == 8000)
        #expect(receipts.allSatisfy(present), "missing: \(receipts.filter { !present($0) })")
        #expect(w.contents(w.a) == live.0 && w.contents(w.b) == live.1)
        #expect(w.snapshotFiles().count == 2)
    }
}

/// A flag one task sets and another polls, and a count of checkpoints taken.
final class ManagedAtomicFlag: Sendable {
    private let done = Atomic<Bool>(false)
    private let count = Atomic<Int>(0)
    var isDone: Bool { done.load(ordering: .acquiring) }
    func finish() { done.store(true, ordering: .releasing) }
    var checkpoints: Int { count.load(ordering: .acquiring) }
    func checkpointed() { count.add(1, ordering: .releasing) }
}

extension KVCheckpointTests {
    /// A commit the store applied, acknowledged and then checkpointed is sent again after a crash (the TM's
    /// `end` was never written: the other store was closed): it is acknowledged and ignored, and does not
    /// undo the later commits of the keys it wrote.
    @Test func aCommitRedeliveredAfterTheStoreCheckpointedChangesNothing() async throws {
        let w = try KVWorld(stores: 2, tag: "redeliver")
        defer { w.finish() }
        let p = try w.tm.createTransaction()
        try w.a.begin(p).put(b("k"), b("p"))
        try w.a.begin(p).delete(b("gone"))
        try w.b.begin(p).put(b("j"), b("p"))
        let sup = try p.enlistSuperior()
        #expect(try await sup.prepare() == .prepared)
        w.b.close()
        await BackgroundCall { try await sup.commit() }.expectSuccess("commit")
        try await w.load(w.a, [("k", "newer"), ("gone", "back")])
        try w.a.checkpoint()
        try await w.load(w.a, [("after", "cp")])
        try w.crashAndReopen()
        #expect(w.contents(w.a) == ["k": "newer", "gone": "back", "after": "cp"])
        #expect(w.contents(w.b) == ["j": "p"])
        #expect(w.tm.transactionSnapshots().isEmpty)
        // The recover notification of a transaction already applied is not kept once recovery is done.
        #expect(w.a.lock.withLock { w.a.recoverNotified.isEmpty })
        try w.crashAndReopen()
        #expect(w.contents(w.a) == ["k": "newer", "gone": "back", "after": "cp"])
        #expect(w.contents(w.b) == ["j": "p"])
        #expect(w.tm.lastRecovery.committing == 0)
    }
}
