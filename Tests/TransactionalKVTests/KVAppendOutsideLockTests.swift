// A store's record append that waits (back-pressure: the log's writer held, `maxDirtyBytes` 0) must not
// hold the store's lock meanwhile: reads of the store and of other transactions' views, which callers
// make from async tasks on the cooperative pool, waited for the log's writer with it (docs/RELIABILITY.md,
// sixteenth review). The append is caught waiting by the log's `waitingForSpaceForTesting` hook, where
// each store's lock is tried (never waited for); then reads run on another thread. A watchdog opens the
// gate after a generous deadline so nothing hangs when the reads are blocked; nothing here asserts a
// timing.

import Dispatch
import Foundation
import Synchronization
import Testing
import TransactionManager
import TxLogTestSupport
@testable import LogStore
@testable import TransactionalKV

@Suite struct KVAppendOutsideLockTests {
    /// Stores on a log whose writes a gate can hold, with `maxDirtyBytes` 0: once the writer is held on
    /// a sealed block, every append waits until the gate opens.
    final class GatedWorld: @unchecked Sendable {
        let directory: String
        let io = GateIO(holding: .writes)
        let log: LogStore
        let tm: TransactionManager
        var stores: [KVStore] = []
        let other: LogStream

        init(stores count: Int) throws {
            directory = try makeTempDirectory("append-outside-lock")
            var open = LogOpenOptions()
            open.groupCommit.maxDirtyBytes = 0
            log = try LogStore.create(at: directory + "/log", options: KVWorld.tinyLog, openOptions: open, io: io)
            tm = try TransactionManager.create(log: log)
            try tm.recover()
            for _ in 0..<count { stores.append(try KVStore.open(transactionManager: tm, id: .random(), directory: directory + "/data")) }
            other = try log.createStream("other")
        }

        /// The writer takes a sealed block and is held writing it (blocks its thread until it is).
        func holdTheWriter() throws {
            io.close()
            let lsn = try other.append(b("sealed and held"))
            other.whenDurable(lsn) { _ in }
            io.waitUntilHolding()
        }

        /// `k` committed as "old" in every store, then "new" written by a transaction prepared under a
        /// superior, and a reader's views of every store begun.
        func newPreparedUnderASuperiorAndAReader() async throws -> (SuperiorEnlistment, Transaction, [KVTransaction]) {
            let setup = try tm.createTransaction()
            for store in stores { try store.begin(setup).put(b("k"), b("old")) }
            try await setup.commit()
            let p = try tm.createTransaction()
            for store in stores { try store.begin(p).put(b("k"), b("new")) }
            let sup = try p.enlistSuperior()
            #expect(try await sup.prepare() == .prepared)
            let reader = try tm.createTransaction()
            return (sup, reader, try stores.map { try $0.begin(reader) })
        }

        /// Every store holds "new" for `k`; the reader rolls back; the log has not failed.
        func expectNewCommitted(reader: Transaction) throws {
            for store in stores { #expect(s(store.get(b("k"))) == "new") }
            try reader.rollback()
            #expect(!log.isFailed)
        }

        func finish() {
            io.open()
            for store in stores { store.close() }
            try? log.close()
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    /// Starts `start` once `armed` hooks are set, waits for the first append that waits after `voting`
    /// became true, and reads key `k` from every store and view meanwhile. Returns whether a store held its
    /// lock in that append, whether the reads were blocked until the gate opened, and what they read.
    /// Opens the gate before it returns.
    static func readsWhileAnAppendWaits(
        _ w: GatedWorld, views: [KVTransaction], voting: @escaping @Sendable () -> Bool, start: @escaping @Sendable () -> Void
    ) async -> (lockHeld: Bool?, blocked: Bool, reads: [String?]) {
        let stores = w.stores
        let lockHeld = Mutex<Bool?>(nil)
        let appendWaits = DispatchSemaphore(value: 0)
        w.log.core.waitingForSpaceForTesting = {
            guard voting() else { return }
            let first = lockHeld.withLock { seen -> Bool in
                guard seen == nil else { return false }
                seen = stores.contains { store in
                    guard store.lock.tryLock() else { return true }
                    store.lock.unlock()
                    return false
                }
                return true
            }
            if first { appendWaits.signal() }
        }
        start()
        await onOwnThread { appendWaits.wait() }
        let reads = Mutex<[String?]>([])
        let readsDone = DispatchSemaphore(value: 0)
        Thread {
            for store in stores { let v = s(store.get(b("k"))); reads.withLock { $0.append(v) } }
            for view in views { let v = s(try? view.get(b("k"))); reads.withLock { $0.append(v) } }
            readsDone.signal()
        }.start()
        let io = w.io
        let blocked = await onOwnThread { () -> Bool in
            let timedOut = readsDone.wait(timeout: .now() + 60) == .timedOut
            io.open()
            if timedOut { readsDone.wait() }
            return timedOut
        }
        return (lockHeld.withLock { $0 }, blocked, reads.withLock { $0 })
    }

    @Test("reads go on while a prepare's (two stores) or a single-phase commit's (one store) append waits for back-pressure",
          .hangGuard, arguments: [1, 2])
    func readsWhileTheVoteAppendWaits(storeCount: Int) async throws {
        let w = try GatedWorld(stores: storeCount)
        defer { w.finish() }
        let setup = try w.tm.createTransaction()
        for store in w.stores { try store.begin(setup).put(b("k"), b("old")) }
        try await setup.commit()
        let reader = try w.tm.createTransaction()
        let views = try w.stores.map { try $0.begin(reader) }
        let writer = try w.tm.createTransaction()
        for store in w.stores { try store.begin(writer).put(b("k"), b("new")) }
        try await onOwnThread { try w.holdTheWriter() }

        // Only the stores' appends count: those of a vote begun.
        let voting = Atomic<Bool>(false)
        for store in w.stores {
            store.beforePrepareForTesting = { voting.store(true, ordering: .sequentiallyConsistent) }
            store.beforeSinglePhaseForTesting = { voting.store(true, ordering: .sequentiallyConsistent) }
        }
        let commit = Mutex<Task<LogError.Code?, Never>?>(nil)
        let r = await Self.readsWhileAnAppendWaits(w, views: views, voting: { voting.load(ordering: .sequentiallyConsistent) }) {
            commit.withLock { $0 = Task { () -> LogError.Code? in
                do { try await writer.commit() } catch { return (error as? LogError)?.code ?? .io }
                return nil
            } }
        }
        #expect(r.lockHeld == false, "a store held its lock while its record's append waited for the log's writer")
        #expect(!r.blocked, "the reads waited until the log's writer was released")
        #expect(r.reads == [String?](repeating: "old", count: 2 * storeCount))
        #expect(await commit.withLock { $0 }?.value == nil)
        try w.expectNewCommitted(reader: reader)
    }

    @Test("reads go on while a commit record's append waits for back-pressure (two stores, prepared under a superior)", .hangGuard)
    func readsWhileTheCommitAppendWaits() async throws {
        let w = try GatedWorld(stores: 2)
        defer { w.finish() }
        let (sup, reader, views) = try await w.newPreparedUnderASuperiorAndAReader()

        // The TM's decision is durable; the writer is held as the first store's commit notification
        // arrives, so the stores' commit records wait.
        let voting = Atomic<Bool>(false)
        for store in w.stores {
            store.beforeCommitForTesting = {
                guard !voting.exchange(true, ordering: .sequentiallyConsistent) else { return }
                try? w.holdTheWriter()
            }
        }
        let commit = Mutex<Task<LogError.Code?, Never>?>(nil)
        let r = await Self.readsWhileAnAppendWaits(w, views: views, voting: { voting.load(ordering: .sequentiallyConsistent) }) {
            commit.withLock { $0 = Task { () -> LogError.Code? in
                do { try await sup.commit() } catch { return (error as? LogError)?.code ?? .io }
                return nil
            } }
        }
        #expect(r.lockHeld == false, "a store held its lock while its commit record's append waited for the log's writer")
        #expect(!r.blocked, "the reads waited until the log's writer was released")
        #expect(r.reads == ["old", "old", "old", "old"])
        #expect(await commit.withLock { $0 }?.value == nil)
        try w.expectNewCommitted(reader: reader)
    }

    @Test("reads go on while a checkpoint's prepare record, appended again for a transaction in doubt, waits for back-pressure", .hangGuard)
    func readsWhileTheCheckpointAppendWaits() async throws {
        let w = try GatedWorld(stores: 2)
        defer { w.finish() }
        let (sup, reader, views) = try await w.newPreparedUnderASuperiorAndAReader()
        try await onOwnThread { try w.holdTheWriter() }

        let voting = Atomic<Bool>(false)
        let checkpointed = DispatchSemaphore(value: 0)
        let result = Mutex<LogError.Code?>(nil)
        let store = w.stores[0]
        let r = await Self.readsWhileAnAppendWaits(w, views: views, voting: { voting.load(ordering: .sequentiallyConsistent) }) {
            voting.store(true, ordering: .sequentiallyConsistent)
            Thread {
                do { _ = try store.checkpoint() } catch { result.withLock { $0 = (error as? LogError)?.code ?? .io } }
                checkpointed.signal()
            }.start()
        }
        await onOwnThread { checkpointed.wait() }
        #expect(r.lockHeld == false, "the store held its lock while its checkpoint's append waited for the log's writer")
        #expect(!r.blocked, "the reads waited until the log's writer was released")
        #expect(r.reads == ["old", "old", "old", "old"])
        #expect(result.withLock { $0 } == nil)
        try await sup.commit()
        try w.expectNewCommitted(reader: reader)
    }
}
