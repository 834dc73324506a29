// A throwaway transaction stack for one benchmark: a log (LogFixture), a recovered TM, and either bench
// resource managers or one KVStore. Created in setup, closed and removed in teardown.

import BenchFixtures
import Foundation
import LogStore
import Synchronization
import TransactionManager
import TransactionalKV

final class TransactionFixture: @unchecked Sendable {
    private let logFixture: LogFixture
    /// Where the KVStore keeps its snapshot files (next to the log).
    private let dataPath: String
    private var manager: TransactionManager?
    private(set) var resourceManagers: [BenchRM] = []
    private(set) var store: KVStore?
    /// Advances across iterations so consecutive iterations write different keys.
    var counter = 0

    init(_ name: String) {
        logFixture = LogFixture(name)
        dataPath = logFixture.path + "-kv"
    }

    var log: LogStore { logFixture.log }

    /// The recovered TM (only between `create` and `remove`).
    var tm: TransactionManager {
        guard let manager else { preconditionFailure("TransactionFixture.tm used outside setup/teardown") }
        return manager
    }

    /// 4 x 64 MiB containers; the RMs and the store move their streams' bases, and the TM checkpoints
    /// when its tail is pinned, so the log also recycles.
    func create(benchRMs: Int = 0, recordSize: Int = 100, kvStore: Bool = false) throws {
        remove()
        counter = 0
        try logFixture.create(containerSize: 64 << 20, containerCount: 4)
        let tm = try TransactionManager.create(log: log)
        manager = tm
        try tm.recover()
        for i in 0..<benchRMs {
            let holder = BenchRM(log: log, recordSize: recordSize)
            let rm = try tm.createResourceManager(description: "bench rm \(i)") { holder.handle($0) }
            holder.rm = rm
            try rm.recover()
            resourceManagers.append(holder)
        }
        if kvStore {
            store = try KVStore.open(transactionManager: tm, id: GUID.random(), description: "bench kv", directory: dataPath)
        }
    }

    func remove() {
        store?.close()
        store = nil
        for r in resourceManagers { r.rm?.close() }
        resourceManagers = []
        try? manager?.close()
        manager = nil
        logFixture.remove()
        try? FileManager.default.removeItem(atPath: dataPath)
    }
}
