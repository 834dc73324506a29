// Commits that overwrite and delete keys, in one store and across two, while checkpoints run: the stores
// hold exactly what was acknowledged, before and after a crash; a scan racing commits never sees part
// of a transaction.

import Foundation
import LogStore
import Synchronization
import Testing
import TransactionManager
@testable import TransactionalKV

@Suite struct KVChurnTests {
    /// Four clients, each on its own keys (so the expected contents are known without conflicts), commit
    /// random puts and deletes in store a, half of them also in store b, while checkpoints of both run.
    @Test func overwritesAndDeletesBesideCheckpointsSurviveCrashes() async throws {
        let w = try KVWorld(stores: 2, tag: "churn", options: LogCreateOptions(containerSize: 1 << 20, containerCount: 4, blockSize: 8192))
        defer { w.finish() }
        let (a, bs, tm) = (w.a, w.b, w.tm)
        typealias Model = [String: String]
        let (ma, mb) = try await withThrowingTaskGroup(of: (Model, Model).self) { group in
            for c in 0..<4 {
                group.addTask {
                    var rng = SplitMix64(seed: UInt64(c + 1))
                    var ma: Model = [:], mb: Model = [:]
                    for i in 0..<150 {
                        let tx = try tm.createTransaction()
                        let va = try a.begin(tx)
                        var pa: [String: String?] = [:], pb: [String: String?] = [:]
                        for _ in 0..<Int(rng.next() % 20 + 1) {
                            let k = "c\(c)-\(rng.next() % 40)"
                            if rng.next() % 3 == 0 {
                                try va.delete(b(k))
                                pa[k] = .some(nil)
                            } else {
                                let value = "\(i)-" + String(repeating: "x", count: Int(rng.next() % 300))
                                try va.put(b(k), b(value))
                                pa[k] = .some(value)
                            }
                        }
                        if rng.next() % 2 == 0 {
                            let vb = try bs.begin(tx)
                            let k = "c\(c)-\(rng.next() % 10)"
                            if rng.next() % 3 == 0 {
                                try vb.delete(b(k))
                                pb[k] = .some(nil)
                            } else {
                                try vb.put(b(k), b("\(i)"))
                                pb[k] = .some("\(i)")
                            }
                        }
                        try await tx.commit()
                        for (k, v) in pa { ma[k] = v }
                        for (k, v) in pb { mb[k] = v }
                    }
                    return (ma, mb)
                }
            }
            group.addTask {
                for _ in 0..<15 {
                    try await onOwnThread {
                        try a.checkpoint()
                        try bs.checkpoint()
                    }
                    try await Task.sleep(for: .milliseconds(20))
                }
                return ([:], [:])
            }
            var ma: Model = [:], mb: Model = [:]
            for try await (x, y) in group {
                ma.merge(x) { $1 }
                mb.merge(y) { $1 }
            }
            return (ma, mb)
        }
        #expect(w.contents(w.a) == ma && w.contents(w.b) == mb)
        try w.crashAndReopen()
        #expect(w.contents(w.a) == ma && w.contents(w.b) == mb)
        try w.a.checkpoint()
        try w.crashAndReopen()
        #expect(w.contents(w.a) == ma && w.contents(w.b) == mb)
    }

    /// Transactions that end without committing, every way they can (handle dropped, rollback, a veto
    /// after the other store prepared, timeout), leave no view, lock, pending entry or reservation.
    @Test func abortedTransactionsLeaveNothingBehind() async throws {
        let w = try KVWorld(stores: 2, tag: "aborted-leave-nothing")
        defer { w.finish() }
        try await w.load(w.a, [("a", "0")])
        for i in 0..<10 {  // handle dropped: its last close rolls it back
            let tx = try w.tm.createTransaction()
            try w.a.begin(tx).put(b("d\(i)"), b("1"))
            _ = try w.a.begin(tx).get(b("a"))
        }
        for i in 0..<10 {
            let tx = try w.tm.createTransaction()
            try w.a.begin(tx).put(b("r\(i)"), b("1"))
            try w.b.begin(tx).put(b("r\(i)"), b("1"))
            try tx.rollback()
        }
        for i in 0..<10 {  // a prepares, b vetoes (a key it read changed)
            let tx = try w.tm.createTransaction()
            try w.a.begin(tx).put(b("c\(i)"), b("1"))
            let vb = try w.b.begin(tx)
            _ = try vb.get(b("hot"))
            try vb.put(b("c\(i)"), b("1"))
            try await w.load(w.b, [("hot", "\(i)")])
            await expectLogError(.conflict) { try await tx.commit() }
        }
        for i in 0..<3 {
            let tx = try w.tm.createTransaction(timeout: .milliseconds(5))
            try w.a.begin(tx).put(b("t\(i)"), b("1"))
            #expect(await eventually { tx.state != .active })
        }
        for s in [w.a, w.b] {
            #expect(s.lock.withLock { s.active.isEmpty && s.locks.isEmpty && s.pending.isEmpty && s.outcomeReserved.isEmpty })
        }
        #expect(w.contents(w.a) == ["a": "0"])
        #expect(w.contents(w.b) == ["hot": "9"])
    }

    /// Each commit sets all 50 keys to one new value; scans outside any transaction, racing them, always
    /// find one value throughout (a commit is applied under the store's lock, all at once).
    @Test func scansRacingCommitsAreNeverTorn() async throws {
        let w = try KVWorld(stores: 1, tag: "torn")
        defer { w.finish() }
        let keys = (0..<50).map { "k\($0)" }
        try await w.load(w.a, keys.map { ($0, "0") })
        let store = w.a
        let done = Atomic<Bool>(false)
        let scanner = Task.detached {
            var torn = 0, scans = 0
            while !done.load(ordering: .acquiring) {
                let rows = store.scan()
                if rows.count != 50 || Set(rows.map(\.value)).count != 1 { torn += 1 }
                scans += 1
            }
            return (torn, scans)
        }
        for i in 1...100 { try await w.load(w.a, keys.map { ($0, "\(i)") }) }
        done.store(true, ordering: .releasing)
        let (torn, scans) = await scanner.value
        #expect(torn == 0, "\(torn) of \(scans) scans saw part of a commit")
        #expect(w.contents(w.a) == Dictionary(uniqueKeysWithValues: keys.map { ($0, "100") }))
    }
}
