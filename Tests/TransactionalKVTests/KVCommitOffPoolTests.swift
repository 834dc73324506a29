// Async commits whose appends wait (back-pressure, a full log that grows) must not hold threads of Swift's
// cooperative pool. The log's writes or syncs are held by a gate, so every commit's append waits; more
// commits than the pool has threads are started, then an unrelated task. A watchdog thread waits for that
// task with a generous deadline: if the commits held every pool thread it never runs, and the watchdog
// opens the gate (so nothing hangs) and records the starvation. Nothing here asserts a timing.

import Foundation
import LogStore
import Synchronization
import Testing
import TransactionManager
import TxLogTestSupport
@testable import TransactionalKV

@Suite struct KVCommitOffPoolTests {
    /// More commits than the cooperative pool has threads.
    static let commits = ProcessInfo.processInfo.activeProcessorCount + 4

    /// Starts `commits` commits (a put in each store: single-phase with one store, two-phase with more)
    /// while `io` holds the log, then an unrelated task; returns whether that task ran while the commits
    /// waited. Opens the gate before it returns.
    private static func unrelatedTaskRunsWhileCommitsWait(
        tm: TransactionManager, stores: [KVStore], io: GateIO, value: [UInt8]
    ) async throws -> Bool {
        var transactions: [Transaction] = []
        for i in 0..<commits {
            let tx = try tm.createTransaction()
            for store in stores { try store.begin(tx).put(b("key-\(i)"), value) }
            transactions.append(tx)
        }
        let tasks = transactions.map { tx in Task { () -> LogError.Code? in
            do { try await tx.commit() } catch { return (error as? LogError)?.code ?? .io }
            return nil
        } }
        let ran = DispatchSemaphore(value: 0)
        let unrelated = Task { _ = ran.signal() }
        // The watchdog waits off the pool (the test's own task needs a pool thread to go on).
        let starved = await onOwnThread { () -> Bool in
            let timedOut = ran.wait(timeout: .now() + 60) == .timedOut
            io.open()
            return timedOut
        }
        io.open()
        await unrelated.value
        var failures: [LogError.Code] = []
        for t in tasks { if let code = await t.value { failures.append(code) } }
        #expect(failures.isEmpty, "commits failed: \(failures)")
        return !starved
    }

    @Test("async commits held by back-pressure (writer held, maxDirtyBytes 0) leave the cooperative pool free",
          .hangGuard, arguments: [1, 2])
    func backPressure(storeCount: Int) async throws {
        let directory = try makeTempDirectory("offpool-dirty")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let io = GateIO(holding: .writes)
        var open = LogOpenOptions()
        open.groupCommit.maxDirtyBytes = 0
        let log = try LogStore.create(at: directory + "/log", options: KVWorld.tinyLog, openOptions: open, io: io)
        defer { try? log.close() }
        let tm = try TransactionManager.create(log: log)
        try tm.recover()
        var stores: [KVStore] = []
        defer { for store in stores { store.close() } }
        for _ in 0..<storeCount { stores.append(try KVStore.open(transactionManager: tm, id: .random(), directory: directory + "/data")) }
        // The writer takes a sealed block and is held writing it: the block stays dirty, so with a limit
        // of 0 every append waits until the gate opens.
        let other = try log.createStream("other")
        io.close()
        let lsn = try other.append(b("sealed and held"))
        other.whenDurable(lsn) { _ in }
        await onOwnThread { io.waitUntilHolding() }
        #expect(try await Self.unrelatedTaskRunsWhileCommitsWait(tm: tm, stores: stores, io: io, value: b("v")),
                "the commits' appends held every cooperative-pool thread")
        #expect(!log.isFailed)
    }

    @Test("async commits that fill the log and auto-grow it through held syncs leave the cooperative pool free", .hangGuard)
    func fullLogGrows() async throws {
        let directory = try makeTempDirectory("offpool-full")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let io = GateIO(holding: .syncs)
        // No codec: the filler below takes the space its size says.
        let options = LogCreateOptions(containerSize: KVWorld.tinyLog.containerSize, containerCount: 2, blockSize: KVWorld.tinyLog.blockSize, codec: .none)
        let log = try LogStore.create(at: directory + "/log", options: options, io: io)
        defer { try? log.close() }
        var policy = log.policy
        policy.autoGrow = true
        try log.setPolicy(policy)
        let tm = try TransactionManager.create(log: log)
        try tm.recover()
        let store = try KVStore.open(transactionManager: tm, id: .random(), directory: directory + "/data")
        defer { store.close() }
        // A pinned stream fills both containers to within a few records of the end, durably.
        let pin = try log.createStream("pin")
        let filler = [UInt8](repeating: 0x5A, count: 4000)
        var last = try pin.append(filler)
        while last.container < 2 || last.blockOffset + 32 * 1024 < options.containerSize { last = try pin.append(filler) }
        try await pin.flush(upTo: last)
        // Every commit's record needs a container; none is free, so its append flushes and grows the log.
        io.close()
        #expect(try await Self.unrelatedTaskRunsWhileCommitsWait(tm: tm, stores: [store], io: io, value: filler + filler),
                "the commits' appends held every cooperative-pool thread")
        #expect(!log.isFailed)
        #expect(log.info().containers.count > 2, "the log did not grow")
    }
}
