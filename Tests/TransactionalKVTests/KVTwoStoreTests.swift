// Two stores in one transaction: they commit or roll back together, and a two-phase commit costs one
// log sync (the TM's decision record covers both unforced prepare records).

import Foundation
import LogStore
import Testing
import TransactionManager
@testable import TransactionalKV

@Suite struct KVTwoStoreTests {
    @Test func commitTogetherWithOneSync() async throws {
        let w = try KVWorld(stores: 2, tag: "twostore")
        defer { w.finish() }
        try await w.load(w.a, [("alice", "100")])
        try await w.load(w.b, [("bob", "0")])
        for round in 1...5 {
            let syncs0 = w.syncs
            let tx = try w.tm.createTransaction()
            let va = try w.a.begin(tx), vb = try w.b.begin(tx)
            let alice = Int(s(try va.get(b("alice")))!)!, bob = Int(s(try vb.get(b("bob")))!)!
            try va.put(b("alice"), b("\(alice - 10)"))
            try vb.put(b("bob"), b("\(bob + 10)"))
            try va.put(b("log/\(round)"), b("sent 10"))
            try vb.put(b("log/\(round)"), b("got 10"))
            try await tx.commit()
            #expect(w.syncs - syncs0 == 1, "round \(round): one sync for the two-phase commit")
            #expect(s(w.a.get(b("alice"))) == "\(100 - 10 * round)" && s(w.b.get(b("bob"))) == "\(10 * round)")
        }
        #expect(w.a.statistics.commits == 5 && w.b.statistics.commits == 5)
        #expect(w.a.statistics.singlePhaseCommits == 1)
        // Each store logged prepare then commit for each round.
        let aRecords = try KVRollbackTests.records(w.a)
        #expect(aRecords.count == 1 + 5 * 2)
        for (i, r) in aRecords.dropFirst().enumerated() {
            switch (i % 2, r) {
            case (0, .prepare(_, let writes)): #expect(writes.count == 2)
            case (1, .commit): break
            default: Issue.record("record \(i + 1) of A is \(r)")
            }
        }
        try w.crashAndReopen()
        #expect(s(w.a.get(b("alice"))) == "50" && s(w.b.get(b("bob"))) == "50")
        #expect(w.a.scan(from: b("log/")).count == 5 && w.b.scan(from: b("log/")).count == 5)
    }

    /// The first store vetoes: the second never prepares, and neither store shows anything.
    @Test func firstStoreVetoes() async throws {
        let w = try KVWorld(stores: 2, tag: "firstveto")
        defer { w.finish() }
        try await w.load(w.a, [("k", "1")])
        let tx = try w.tm.createTransaction()
        let va = try w.a.begin(tx), vb = try w.b.begin(tx)
        _ = try va.get(b("k"))
        try va.put(b("k"), b("2"))
        try vb.put(b("m"), b("2"))
        try await w.load(w.a, [("k", "9")])
        await expectLogError(.conflict) { try await tx.commit() }
        #expect(s(w.a.get(b("k"))) == "9" && w.b.get(b("m")) == nil)
        #expect(try KVRollbackTests.records(w.b).isEmpty, "B was never asked to prepare")
        KVRollbackTests.expectNoTrace(w, w.b, keys: ["m"])
        // Retrying the whole transaction succeeds in both stores.
        let retry = try w.tm.createTransaction()
        let ra = try w.a.begin(retry), rb = try w.b.begin(retry)
        try ra.put(b("k"), b("\(Int(s(try ra.get(b("k")))!)! + 1)"))
        try rb.put(b("m"), b("2"))
        try await retry.commit()
        #expect(s(w.a.get(b("k"))) == "10" && s(w.b.get(b("m"))) == "2")
    }

    /// Many concurrent cross-store transfers with conflicts and retries: the total is conserved live
    /// and after a crash, and the reopened stores equal the live ones exactly.
    @Test func concurrentCrossStoreTransfersStayAtomic() async throws {
        let w = try KVWorld(stores: 2, tag: "xfer2")
        defer { w.finish() }
        try await w.load(w.a, (0..<4).map { ("acct\($0)", "100") })
        try await w.load(w.b, (0..<4).map { ("acct\($0)", "100") })
        let tm = w.tm, a = w.a, bStore = w.b
        let committed = try await withThrowingTaskGroup(of: Int.self) { group in
            for client in 0..<4 {
                group.addTask {
                    var rng = SplitMix64(seed: UInt64(client + 1))
                    var done = 0
                    for _ in 0..<15 {
                        let from = Int.random(in: 0..<4, using: &rng), to = Int.random(in: 0..<4, using: &rng)
                        for _ in 0..<50 {
                            let tx = try tm.createTransaction()
                            do {
                                let va = try a.begin(tx), vb = try bStore.begin(tx)
                                let x = Int(s(try va.get(b("acct\(from)")))!)!, y = Int(s(try vb.get(b("acct\(to)")))!)!
                                try va.put(b("acct\(from)"), b("\(x - 1)"))
                                try vb.put(b("acct\(to)"), b("\(y + 1)"))
                                try await tx.commit()
                                done += 1
                                break
                            } catch let e as LogError where e.code == .conflict {
                                try await Task.sleep(for: .microseconds(Int.random(in: 200...2000, using: &rng)))
                            }
                        }
                    }
                    return done
                }
            }
            return try await group.reduce(0, +)
        }
        func total(_ st: KVStore) -> Int { st.scan().reduce(0) { $0 + Int(s($1.value)!)! } }
        #expect(committed > 30)
        #expect(total(w.a) == 400 - committed && total(w.b) == 400 + committed)
        let liveA = w.contents(w.a), liveB = w.contents(w.b)
        try w.crashAndReopen()
        #expect(w.contents(w.a) == liveA && w.contents(w.b) == liveB)
    }

    /// A store closed while a transaction it prepared waits for its superior: the superior's commit does
    /// not wait for it, and the store opened again in the same process applies the commit.
    @Test func storeClosedWhilePreparedGetsTheCommitWhenReopened() async throws {
        let w = try KVWorld(stores: 2, tag: "closeprepared")
        defer { w.finish() }
        let sup = try await w.preparedUnderASuperior()
        // Each store holds room for its outcome record while prepared; a closed store gives its back.
        // Beside the rooms for the next checkpoints (the TM's and each store's: CheckpointRoomTests).
        let rooms = UInt64(w.tmRoomBytes + 2 * w.storeRoomBytes)
        let heldByTwo = w.log.info().reservedBytes - rooms
        #expect(heldByTwo > 0)
        w.b.close()
        let roomsLeft = rooms - UInt64(w.storeRoomBytes)
        #expect(w.log.info().reservedBytes == roomsLeft + heldByTwo / 2)
        await BackgroundCall { try await sup.commit() }.expectSuccess("the superior's commit with store b closed")
        #expect(w.log.info().reservedBytes == roomsLeft, "store a's commit record used its room")
        #expect(s(w.a.get(b("k"))) == "p")
        #expect(w.b.get(b("j")) == nil, "the closed store got nothing")
        let reopened = try KVStore.open(transactionManager: w.tm, id: w.storeIDs[1], directory: w.dataDirectory)
        defer { reopened.close() }
        #expect(s(reopened.get(b("j"))) == "p")
        #expect(reopened.inDoubtTransactions.isEmpty)
        #expect(await eventually { w.tm.transactionSnapshots().isEmpty })
        #expect(w.log.info().reservedBytes == rooms, "the reopened store reserved room again and used it")
    }
}
