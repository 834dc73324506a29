// Transactions prepared and undecided at a checkpoint: however large their write sets are together, the
// checkpoint succeeds (each is carried by a `prepare` record of its own above the covered LSN), and a
// restart area that carries them itself (as format v1 allows, and earlier versions wrote) still recovers.

import Foundation
import LogStore
import Testing
import TransactionManager
@testable import TransactionalKV

@Suite struct KVCheckpointPendingTests {
    /// 1 MiB containers: a record holds at most about 1 MiB, so three prepared write sets of 400 KB
    /// cannot share one record.
    static let log = LogCreateOptions(containerSize: 1 << 20, containerCount: 8, blockSize: 8192)

    /// Prepares a transaction writing `key` = `value` in `store` under a superior; returns its id.
    static func prepareInDoubt(_ w: KVWorld, _ store: KVStore, key: String, value: [UInt8]) async throws -> GUID {
        let tx = try w.tm.createTransaction(description: "in doubt \(key)")
        try store.begin(tx).put(b(key), value)
        let sup = try tx.enlistSuperior()
        #expect(try await sup.prepare() == .prepared)
        return tx.id
    }

    @Test func preparedWriteSetsLargerThanARecordTogetherDoNotStopACheckpoint() async throws {
        let w = try KVWorld(stores: 2, tag: "ckptlarge", options: Self.log)
        defer { w.finish() }
        try await w.load(w.a, [("small", "1")])
        let values = (0..<3).map { i in [UInt8](repeating: UInt8(65 + i), count: 400_000) }
        var ids: [GUID] = []
        for i in 0..<3 { ids.append(try await Self.prepareInDoubt(w, w.a, key: "big\(i)", value: values[i])) }
        // Before, the restart area carried all three write sets (1.2 MB) and the append was refused.
        try w.a.checkpoint()
        #expect(try KVCheckpointTests.checkpointRecord(w.a).pending.isEmpty)
        try w.crashAndReopen()
        #expect(Set(w.a.inDoubtTransactions) == Set(ids))
        // Checkpoint again from the recovered state (twice, so the base moves past the first copies).
        try w.a.checkpoint()
        try w.a.checkpoint()
        try w.crashAndReopen()
        #expect(Set(w.a.inDoubtTransactions) == Set(ids))
        #expect(w.contents(w.a) == ["small": "1"])
        for (i, id) in ids.enumerated() {
            try await w.tm.resolve(id, action: i == 1 ? .rollback : .commit, actor: "kv-tests", reason: "test")
        }
        for _ in 0..<2 {
            #expect(w.a.get(b("big0")) == values[0] && w.a.get(b("big1")) == nil && w.a.get(b("big2")) == values[2])
            #expect(w.a.inDoubtTransactions.isEmpty)
            try w.a.checkpoint()
            try w.crashAndReopen()
        }
    }

    /// A restart area whose checkpoint lists pending write sets (what this store wrote before, and still
    /// valid format v1) recovers them as prepared: in doubt, then resolved.
    @Test func aRestartAreaCarryingPendingWriteSetsStillRecovers() async throws {
        let w = try KVWorld(stores: 2, tag: "ckptlegacy")
        defer { w.finish() }
        try await w.load(w.a, [("gone", "still here")])
        let tx = try await KVRecoveryTests.prepareInBoth(w)
        try w.a.checkpoint()
        // Rewrite the restart area in the older form: covered through the stream's last record (so the
        // carrying `prepare` record is not replayed), with the write set in the pending list; the snapshot
        // file says the same LSN.
        let cp = try KVCheckpointTests.checkpointRecord(w.a)
        let last = w.a.stream.lastLSN
        let snap = try KVSnapshotFile.read(io: PosixFileIO(), path: w.dataDirectory + "/" + cp.snapshotFile, store: w.a.id)
        try KVSnapshotFile.write(io: PosixFileIO(), directory: w.dataDirectory, name: cp.snapshotFile, store: w.a.id,
                                 coveredThrough: last, entries: snap.entries)
        let legacy = KVCheckpoint(store: w.a.id, snapshotFile: cp.snapshotFile, coveredThrough: last,
                                  pending: [(id: tx.id, writes: [KVWrite(key: b("doubt"), value: b("A")), KVWrite(key: b("gone"), value: nil)])])
        try w.a.stream.writeRestartArea(KVRecord.checkpoint(legacy).encode(), newBase: last)
        try w.crashAndReopen()
        KVRecoveryTests.expectInDoubt(w, tx.id)
        try await w.tm.resolve(tx.id, action: .commit, actor: "kv-tests", reason: "test")
        #expect(s(w.a.get(b("doubt"))) == "A" && s(w.b.get(b("doubt"))) == "B" && w.a.get(b("gone")) == nil)
    }

    /// A snapshot file whose covered-through LSN differs from its restart area's (a file from another
    /// checkpoint put in its place) fails the open with `corrupt` instead of loading a table that does
    /// not match the records replayed after it.
    @Test func aSnapshotFromAnotherCheckpointIsCorrupt() async throws {
        let w = try KVWorld(stores: 2, tag: "ckptmismatch")
        defer { w.finish() }
        try await w.load(w.a, [("k", "1")])
        try w.a.checkpoint()
        let first = try KVCheckpointTests.checkpointRecord(w.a)
        let old = try KVSnapshotFile.read(io: PosixFileIO(), path: w.dataDirectory + "/" + first.snapshotFile, store: w.a.id)
        try await w.load(w.a, [("k", "2")])
        try w.a.checkpoint()
        let second = try KVCheckpointTests.checkpointRecord(w.a)
        #expect(second.coveredThrough != first.coveredThrough)
        // The first checkpoint's table, under the second one's name.
        try KVSnapshotFile.write(io: PosixFileIO(), directory: w.dataDirectory, name: second.snapshotFile, store: w.a.id,
                                 coveredThrough: old.coveredThrough, entries: old.entries)
        try w.crash()
        expectLogError(.corrupt, "a snapshot covering another LSN") { try w.reopen() }
    }
}
