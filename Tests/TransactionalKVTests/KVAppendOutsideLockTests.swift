// A prepare or single-phase commit whose record's append waits (back-pressure: the log's writer held,
// `maxDirtyBytes` 0) must not hold the store's lock meanwhile: reads of the store and of other
// transactions' views, which callers make from async tasks on the cooperative pool, waited for the log's
// writer with it (docs/RELIABILITY.md, sixteenth review). The append is caught waiting by the log's
// `waitingForSpaceForTesting` hook, where each store's lock is tried (never waited for); then reads run
// on another thread. A watchdog opens the gate after a generous deadline so nothing hangs when the
// reads are blocked; nothing here asserts a timing.

import Dispatch
import Foundation
import Synchronization
import Testing
import TransactionManager
import TxLogTestSupport
@testable import LogStore
@testable import TransactionalKV

@Suite struct KVAppendOutsideLockTests {
    @Test("reads go on while a prepare's (two stores) or a single-phase commit's (one store) append waits for back-pressure",
          .hangGuard, arguments: [1, 2])
    func readsWhileTheVoteAppendWaits(storeCount: Int) async throws {
        let directory = try makeTempDirectory("append-outside-lock")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let io = GateIO(holding: .writes)
        var open = LogOpenOptions()
        open.groupCommit.maxDirtyBytes = 0
        let log = try LogStore.create(at: directory + "/log", options: KVWorld.tinyLog, openOptions: open, io: io)
        defer { try? log.close() }
        let tm = try TransactionManager.create(log: log)
        try tm.recover()
        var opened: [KVStore] = []
        defer { for store in opened { store.close() } }
        for _ in 0..<storeCount { opened.append(try KVStore.open(transactionManager: tm, id: .random(), directory: directory + "/data")) }
        let stores = opened
        let setup = try tm.createTransaction()
        for store in stores { try store.begin(setup).put(b("k"), b("old")) }
        try await setup.commit()
        let reader = try tm.createTransaction()
        let views = try stores.map { try $0.begin(reader) }
        let writer = try tm.createTransaction()
        for store in stores { try store.begin(writer).put(b("k"), b("new")) }

        // The writer thread takes a sealed block and is held writing it: every append from now on waits.
        let other = try log.createStream("other")
        io.close()
        let lsn = try other.append(b("sealed and held"))
        other.whenDurable(lsn) { _ in }
        await onOwnThread { io.waitUntilHolding() }

        // The first wait of an append made once a store's vote began: does a store hold its lock then?
        let voting = Atomic<Bool>(false)
        for store in stores {
            store.beforePrepareForTesting = { voting.store(true, ordering: .sequentiallyConsistent) }
            store.beforeSinglePhaseForTesting = { voting.store(true, ordering: .sequentiallyConsistent) }
        }
        let lockHeld = Mutex<Bool?>(nil)
        let appendWaits = DispatchSemaphore(value: 0)
        log.core.waitingForSpaceForTesting = {
            guard voting.load(ordering: .sequentiallyConsistent) else { return }
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
        let commit = Task { () -> LogError.Code? in
            do { try await writer.commit() } catch { return (error as? LogError)?.code ?? .io }
            return nil
        }
        await onOwnThread { appendWaits.wait() }

        let reads = Mutex<[String?]>([])
        let readsDone = DispatchSemaphore(value: 0)
        Thread {
            for store in stores { let v = s(store.get(b("k"))); reads.withLock { $0.append(v) } }
            for view in views { let v = s(try? view.get(b("k"))); reads.withLock { $0.append(v) } }
            readsDone.signal()
        }.start()
        let blocked = await onOwnThread { () -> Bool in
            let timedOut = readsDone.wait(timeout: .now() + 60) == .timedOut
            io.open()
            if timedOut { readsDone.wait() }
            return timedOut
        }
        #expect(lockHeld.withLock { $0 } == false, "a store held its lock while its record's append waited for the log's writer")
        #expect(!blocked, "the reads waited until the log's writer was released")
        #expect(reads.withLock { $0 } == [String?](repeating: "old", count: 2 * storeCount))
        #expect(await commit.value == nil)
        for store in stores { #expect(s(store.get(b("k"))) == "new") }
        try reader.rollback()
        #expect(!log.isFailed)
    }
}
