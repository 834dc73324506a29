// A store on a log far too small for what is written through it. First another stream pins the log's
// oldest container, so the log fills: commits are refused with typed errors (the tail-pinned handlers of
// the TM and the store run and cannot help; none of them recurses or crashes), nothing hangs, and the
// store stays usable. Then the pin goes: checkpoints move the bases, containers recycle, and the log takes
// about four times its size. Every acknowledged put survives a crash.

import Foundation
import Synchronization
import LogStore
import Testing
import TransactionManager
@testable import TransactionalKV

@Suite struct KVLogFullTests {
    @Test("a 2 x 1 MiB log pinned full refuses commits with typed errors, then recycles once unpinned; acknowledged puts survive a crash",
          .hangGuard)
    func pinnedThenRecycling() async throws {
        let world = try KVWorld(stores: 1, tag: "logfull")
        defer { world.finish() }
        let pin = try world.log.createStream("pin")
        _ = try pin.append(b("the oldest record, never released until the stream goes"))
        var acknowledged: [Int: Int] = [:]  // key -> the last transaction that put it and was acknowledged
        var refused: [LogError.Code: Int] = [:]
        let value = [UInt8](repeating: 0x6B, count: 3000)

        func put(_ i: Int) async throws -> Bool {
            let key = i % 40
            let tx = try world.tm.createTransaction()
            do {
                try world.a.begin(tx).put(b("k\(key)"), value + b(" \(i)"))
                try await tx.commit()
                acknowledged[key] = i
                return true
            } catch let e as LogError {
                refused[e.code, default: 0] += 1
                return false
            }
        }

        // Pinned: the log fills, then refuses (a few dozen refusals in a row is plenty).
        var i = 0
        var refusedInARow = 0
        while refusedInARow < 30, i < 5000 {
            refusedInARow = try await put(i) ? 0 : refusedInARow + 1
            i += 1
        }
        #expect(refusedInARow == 30, "the pinned log never filled")
        #expect(Set(refused.keys).isSubset(of: [.logFull, .aborted]), "refusals: \(refused)")
        #expect(!world.log.isFailed)
        #expect(world.tm.currentState == .online)

        // Unpinned: 2500 more puts, about four times the log, mostly succeed.
        try world.log.deleteStream("pin")
        var committed = 0
        for j in i..<(i + 2500) where try await put(j) { committed += 1 }
        #expect(committed > 2000, "only \(committed) of 2500 commits succeeded after the pin went; refusals: \(refused)")
        #expect(!world.log.isFailed)

        try world.crashAndReopen()
        for (key, last) in acknowledged {
            let got = world.a.get(b("k\(key)")).map { String(decoding: $0.suffix(from: 3000), as: UTF8.self) }
            #expect(got == " \(last)", "k\(key)")
        }
    }
    /// A log kept nearly full by a reservation: two-store commits run while room comes back 1800 bytes at
    /// a time, so some decisions fit and the stores' outcome records would not. (Less at a time is used up
    /// by the log-full path itself, which seals the open block before it asks the tail-pinned streams.) Before, a store whose
    /// commit record the log refused applied and acknowledged anyway; the TM forgot the transaction, and
    /// after a crash the store found only its prepare record and presumed abort: acknowledged commits were
    /// lost. Now a store reserves its outcome record's room at prepare.
    @Test(.hangGuard) func everyAcknowledgedTwoStoreCommitSurvivesALogKeptFull() async throws {
        let world = try KVWorld(stores: 2, tag: "outcome-room")
        defer { world.finish() }
        let reservation = try world.log.createStream("reservation")
        let filler = try world.log.createStream("filler")
        // 200 reserved records: plain appends must leave their room free, and get log-full at once.
        try reservation.reserve(recordSizes: [Int](repeating: 0, count: 200))
        for size in [3000, 100, 0] {
            while true {
                do { _ = try filler.append([UInt8](repeating: 7, count: size)) } catch let e as LogError where e.code == .logFull { break }
            }
        }
        var acknowledged: [String] = []
        var refused = 0
        var i = 0
        for _ in 0..<66 {
            try reservation.release(recordSizes: [0, 0, 0])
            for _ in 0..<3 {
                i += 1
                let key = "k\(i)"
                let value = [UInt8](repeating: 0x41, count: 1 + (i * 37) % 300)
                let tx = try world.tm.createTransaction()
                do {
                    try world.a.begin(tx).put(b(key), value)
                    try world.b.begin(tx).put(b(key), value)
                    try await tx.commit()
                    acknowledged.append(key)
                } catch let e as LogError {
                    #expect([.logFull, .aborted].contains(e.code), "\(e)")
                    refused += 1
                }
            }
        }
        #expect(acknowledged.count > 10 && refused > 10, "\(acknowledged.count) acknowledged, \(refused) refused")
        try reservation.release(recordSizes: [0, 0])  // the last ones: room for the TM's checkpoint
        try world.tm.checkpoint()
        try world.crashAndReopen()
        let lostA = acknowledged.filter { world.a.get(b($0)) == nil }
        let lostB = acknowledged.filter { world.b.get(b($0)) == nil }
        #expect(lostA.isEmpty && lostB.isEmpty, "lost after the crash: store a \(lostA), store b \(lostB) (of \(acknowledged.count))")
    }
}


/// A store opened on a full log: it could not reserve room for the outcome record of a transaction still
/// prepared in its stream, and the commit the TM owed it (sent as the store opened) was refused for lack
/// of room. The store kept `log-full` as a failure that every later `begin` threw, and the committed writes
/// unapplied, until it was opened again, however much room came back.
@Suite struct KVLogFullAtOpenTests {
    /// A transaction across stores b and a whose decision is durable and whose commit record in a is not
    /// (the log goes, "a crash", while a's commit handler is held); the log is then opened again with
    /// almost no room left, held back by a reservation (returned by `room`), and the TM and both stores
    /// are opened on it. Store a gets the commit as it opens and cannot log it.
    static func openOnAFullLogOwingACommit(_ w: KVWorld) async throws -> (LogStream, KVStore, LogStore, TransactionManager) {
        let inCommit = DispatchSemaphore(value: 0)
        let gate = DispatchSemaphore(value: 0)
        let first = Atomic<Bool>(true)
        w.a.beforeCommitForTesting = { @Sendable in
            if first.exchange(false, ordering: .sequentiallyConsistent) {
                inCommit.signal()
                gate.wait()
            }
        }
        let tx = try w.tm.createTransaction()
        try w.b.begin(tx).put(b("y"), b("1"))
        try w.a.begin(tx).put(b("x"), b("1"))
        let commit = Task(executorPreference: OwnThreadExecutor()) { try await tx.commit() }
        let entered = await onOwnThread { inCommit.wait(timeout: .now() + 60) == .success }
        #expect(entered, "store a never got its commit")
        try w.crash()
        gate.signal()
        // The store cannot log its commit record in the closed log and does not answer: the commit
        // returns once its TM is closed (its decision is durable).
        try? w.tm.close()
        _ = try? await commit.value

        let log = try LogStore.open(at: w.directory + "/log")
        let room = try log.createStream("room")
        let filler = try log.createStream("filler")
        try room.reserve(recordSizes: [Int](repeating: 0, count: 200))
        for size in [3000, 100, 0] {
            while true {
                do { _ = try filler.append([UInt8](repeating: 7, count: size)) } catch let e as LogError where e.code == .logFull { break }
            }
        }
        let tm = try TransactionManager.open(log: log)
        try tm.recover()
        let a = try KVStore.open(transactionManager: tm, id: w.storeIDs[0], directory: w.dataDirectory)
        return (room, a, log, tm)
    }

    @Test("once room comes back, the store logs and applies the commit it owed and begins transactions again", .hangGuard)
    func storeRecoversOnceRoomReturns() async throws {
        let w = try KVWorld(stores: 2, tag: "full-at-open")
        defer { w.finish() }
        let (room, a, log, tm) = try await Self.openOnAFullLogOwingACommit(w)
        defer { try? log.close() }
        // The open met the full log: the commit is not applied, and transactions are refused.
        #expect(a.get(b("x")) == nil)
        #expect(throws: LogError.self) { _ = try a.begin(try tm.createTransaction()) }
        // Room comes back.
        try room.release(recordSizes: [Int](repeating: 0, count: 200))
        let tx = try tm.createTransaction()
        #expect(throws: Never.self, "the store still refuses transactions after room came back") { try a.begin(tx).put(b("z"), b("1")) }
        try? await tx.commit()
        #expect(s(a.get(b("x"))) == "1", "the owed commit was not applied once there was room")
        #expect(a.inDoubtTransactions.isEmpty)
        #expect(s(a.get(b("z"))) == "1")
        a.close()
        // And it is in the log: reopened, the store has it without the TM's help.
        let a2 = try KVStore.open(transactionManager: tm, id: w.storeIDs[0], directory: w.dataDirectory)
        #expect(s(a2.get(b("x"))) == "1")
        #expect(s(a2.get(b("z"))) == "1")
        a2.close()
    }
}

extension KVLogFullAtOpenTests {
    @Test("a closed store throws closed from begin, as close() says, also while it has a failure", .hangGuard)
    func closedStoreWithAFailureThrowsClosed() async throws {
        let w = try KVWorld(stores: 2, tag: "full-at-open-closed")
        defer { w.finish() }
        let (_, a, log, tm) = try await Self.openOnAFullLogOwingACommit(w)
        defer { try? log.close() }
        expectLogError(.logFull, "the open met the full log") { _ = try a.begin(try tm.createTransaction()) }
        a.close()
        expectLogError(.closed, "begin on a closed store") { _ = try a.begin(try tm.createTransaction()) }
    }
}
