// A store, its TM and its log close every file they open (snapshots written by checkpoints, the data
// directory, the log's containers), counted from /proc/self/fd under the test's own directory; and once
// closed and dropped, they are freed.

import Foundation
import LogStore
import Testing
import TransactionManager
@testable import TransactionalKV

@Suite("KV: files closed, objects freed")
struct KVDescriptorTests {
    @Test("ten lives of a log, a TM and two stores, each with commits and checkpoints, leave no descriptor open")
    func lives() async throws {
        let world = try KVWorld(tag: "fd")
        defer { world.finish() }
        for life in 0..<10 {
            for i in 0..<20 {
                try await world.load(world.stores[i % 2], [("k\(i)", "life \(life)")])
            }
            for store in world.stores { try store.checkpoint() }
            try world.tm.checkpoint()
            #expect(!world.snapshotFiles().isEmpty, "the checkpoints wrote snapshot files")
            for store in world.stores { store.close() }
            try world.tm.close()
            try world.log.close()
            #expect(openDescriptors(under: world.directory).isEmpty, "life \(life): \(openDescriptors(under: world.directory))")
            try world.reopen()
            #expect(world.contents(world.a)["k0"] == "life \(life)")
        }
    }

    @Test("a closed store, its TM and its log are freed once dropped")
    func closedStoreIsFreed() async throws {
        let dir = try makeTempDirectory("kv-freed")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        weak var weakStore: KVStore?
        weak var weakTM: TransactionManager?
        weak var weakLog: LogStore?
        do {
            let log = try LogStore.create(at: dir + "/log", options: KVWorld.tinyLog)
            let tm = try TransactionManager.create(log: log)
            try tm.recover()
            let store = try KVStore.open(transactionManager: tm, id: .random(), directory: dir + "/data")
            let tx = try tm.createTransaction()
            try store.begin(tx).put(b("k"), b("v"))
            try await tx.commit()
            try store.checkpoint()
            (weakStore, weakTM, weakLog) = (store, tm, log)
            store.close()
            try tm.close()
            try log.close()
        }
        #expect(weakStore == nil, "the store is still in memory")
        #expect(weakTM == nil, "the TM is still in memory")
        #expect(weakLog == nil, "the log is still in memory")
        #expect(openDescriptors(under: dir).isEmpty)
    }
}
