// CommittedTable: the frozen mode a checkpoint reads while commits go on, and a checkpoint that runs
// while commits land between its freeze and its thaw.

import Foundation
import Synchronization
import LogStore
import Testing
import TransactionManager
@testable import TransactionalKV

@Suite struct CommittedTableTests {
    static func entry(_ text: String, _ version: UInt64) -> Entry { Entry(value: Array(text.utf8)[...], version: version) }
    static func text(_ e: Entry?) -> String? { e?.value.map { String(decoding: $0, as: UTF8.self) } }

    @Test func writesWhileFrozenAreReadButStayOutOfTheFrozenCopy() {
        var t = CommittedTable([Key(b("a")): Self.entry("1", 1), Key(b("b")): Self.entry("1", 1)])
        let frozen = t.freeze()
        #expect(t.isFrozen)
        t.set(Key(b("a")), Self.entry("2", 2))  // overwrite
        t.set(Key(b("b")), nil)                 // delete
        t.set(Key(b("c")), Self.entry("3", 3))  // insert
        #expect(t.overlayCount == 3)
        #expect(Self.text(t[Key(b("a"))]) == "2" && t[Key(b("a"))]?.version == 2)
        #expect(t[Key(b("b"))] == nil, "a delete while frozen hides the frozen entry")
        #expect(Self.text(t[Key(b("c"))]) == "3")
        #expect(frozen.count == 2 && Self.text(frozen[Key(b("a"))]) == "1" && Self.text(frozen[Key(b("b"))]) == "1")
        #expect(frozen[Key(b("c"))] == nil)
    }

    @Test func thawFoldsTheOverlayInAndLaterWritesGoToTheTable() {
        var t = CommittedTable([Key(b("a")): Self.entry("1", 1), Key(b("b")): Self.entry("1", 1)])
        _ = t.freeze()
        t.set(Key(b("a")), Self.entry("2", 2))
        t.set(Key(b("b")), nil)
        t.set(Key(b("b")), Self.entry("again", 3))  // deleted, then written again while frozen
        t.set(Key(b("c")), Self.entry("x", 4))
        t.set(Key(b("c")), nil)                     // written, then deleted while frozen
        t.thaw()
        #expect(!t.isFrozen && t.overlayCount == 0)
        #expect(Self.text(t[Key(b("a"))]) == "2")
        #expect(Self.text(t[Key(b("b"))]) == "again" && t[Key(b("b"))]?.version == 3)
        #expect(t[Key(b("c"))] == nil)
        t.set(Key(b("d")), Self.entry("4", 5))
        #expect(t.overlayCount == 0, "not frozen: writes go straight to the table")
        #expect(Self.text(t[Key(b("d"))]) == "4")
        t.thaw()  // thawing a table that is not frozen changes nothing
        #expect(Self.text(t[Key(b("a"))]) == "2" && Self.text(t[Key(b("d"))]) == "4")
    }

    /// The stepwise thaw: every key reads the same after every step; writes made between steps are
    /// kept; the table thaws once few enough entries are left.
    @Test func aStepwiseThawKeepsEveryReadStableAndEndsThawed() {
        var t = CommittedTable(Dictionary(uniqueKeysWithValues: (0..<20).map { (Key(b("k\($0)")), Self.entry("old\($0)", 1)) }))
        _ = t.freeze()
        for i in 0..<10 { t.set(Key(b("k\(i)")), Self.entry("new\(i)", 2)) }  // overwrites
        for i in 10..<13 { t.set(Key(b("k\(i)")), nil) }                       // deletes
        for i in 20..<25 { t.set(Key(b("k\(i)")), Self.entry("added\(i)", 2)) } // inserts
        func snapshot(_ t: CommittedTable) -> [String?] { (0..<30).map { Self.text(t[Key(b("k\($0)"))]) } }
        var expected = snapshot(t)
        var steps = 0
        while !t.thawStep(limit: 4) {
            steps += 1
            #expect(t.isFrozen)
            #expect(snapshot(t) == expected, "step \(steps) changed a read")
            if steps == 2 {
                // A commit between steps: goes to the overlay, survives the rest of the thaw.
                t.set(Key(b("k29")), Self.entry("late", 3))
                t.set(Key(b("k0")), nil)
                expected[29] = "late"
                expected[0] = nil
            }
        }
        #expect(steps >= 3, "18 entries at 4 per step")
        #expect(!t.isFrozen && t.overlayCount == 0)
        #expect(snapshot(t) == expected)
        #expect(expected[29] == "late" && expected[0] == nil && expected[1] == "new1" && expected[10] == nil && expected[20] == "added20")
        let again = t.thawStep(limit: 4)
        #expect(again, "a thawed table has nothing to do")
    }

    /// A real commit made between the checkpoint's freeze and thaw: visible at once, absent from the
    /// snapshot (it covers only records up to its LSN), kept after the thaw, and replayed by recovery.
    @Test func commitsDuringACheckpointAreKeptButNotInItsSnapshot() async throws {
        let w = try KVWorld(stores: 1, tag: "frozen")
        defer { w.finish() }
        try await w.load(w.a, [("a", "1"), ("b", "1"), ("c", "1")])
        let store = w.a, tm = w.tm
        final class Seen: Sendable {
            let state = Mutex<(frozen: Bool, overlay: Int, values: [String: String?], error: String?)>((false, 0, [:], nil))
        }
        let seen = Seen()
        store.whileFrozenForTesting = { @Sendable [unowned store] in
            // The checkpoint runs on its own thread (below), so blocking here leaves the pool free.
            let done = DispatchSemaphore(value: 0)
            Task.detached { [store] in
                do {
                    let tx = try tm.createTransaction()
                    let v = try store.begin(tx)
                    try v.put(b("a"), b("2"))
                    try v.delete(b("b"))
                    try v.put(b("d"), b("4"))
                    try await tx.commit()
                } catch { seen.state.withLock { $0.error = "\(error)" } }
                done.signal()
            }
            done.wait()
            let state = store.lock.withLock { (store.values.isFrozen, store.values.overlayCount) }
            let values = Dictionary(uniqueKeysWithValues: ["a", "b", "c", "d"].map { ($0, s(store.get(b($0)))) })
            seen.state.withLock { $0.frozen = state.0; $0.overlay = state.1; $0.values = values }
        }
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
            Thread {
                do { try store.checkpoint(); c.resume() } catch { c.resume(throwing: error) }
            }.start()
        }
        store.whileFrozenForTesting = nil
        let during = seen.state.withLock { $0 }
        #expect(during.error == nil)
        #expect(during.frozen && during.overlay == 3, "the commit went to the overlay, not the frozen table")
        let expected: [String: String?] = ["a": "2", "b": nil, "c": "1", "d": "4"]
        #expect(during.values == expected)
        #expect(store.lock.withLock { !store.values.isFrozen && store.values.overlayCount == 0 })
        #expect(w.contents(store) == ["a": "2", "c": "1", "d": "4"])
        #expect(store.count == 3)

        let cp = try KVCheckpointTests.checkpointRecord(store)
        let snap = try KVSnapshotFile.read(io: PosixFileIO(), path: w.dataDirectory + "/" + cp.snapshotFile, store: store.id)
        #expect(snap.entries.map { s($0.0.bytes)! + "=" + s($0.1)! } == ["a=1", "b=1", "c=1"])

        try await w.load(store, [("e", "5")])
        try w.crashAndReopen()
        #expect(w.contents(w.a) == ["a": "2", "c": "1", "d": "4", "e": "5"])
    }
}
