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

/// The RM of `txlog bench 2pc` (tools/txlog/Bench2PC.swift): a work record per transaction, a prepare
/// record on prepare (appended, not flushed: the TM's forced decision record covers it), and on
/// single-phase commit a commit record it appends and flushes itself before answering. It moves its
/// stream's base as transactions finish, so the log recycles.
final class BenchRM: @unchecked Sendable {
    var rm: ResourceManager?
    let log: LogStore
    let payload: [UInt8]
    private let committed = Atomic<Int>(0)

    init(log: LogStore, recordSize: Int) {
        self.log = log
        payload = [UInt8](repeating: 0x5A, count: recordSize)
    }

    func work(_ tx: Transaction, mask: NotificationMask) throws {
        guard let rm, let stream = rm.stream else { return }
        _ = try rm.enlist(tx, mask: mask)
        try stream.append(payload)
    }

    func handle(_ n: TransactionNotification) {
        guard let e = n.enlistment, let stream = rm?.stream else { return }
        do {
            switch n.kind {
            case .prePrepare: try e.prePrepareComplete()
            case .prepare:
                try stream.append(payload.prefix(16).map { $0 })
                try e.prepareComplete()
            case .singlePhaseCommit:
                let lsn = try stream.append(payload.prefix(16).map { $0 })
                Task {
                    try? await stream.flush(upTo: lsn)
                    try? e.commitComplete()
                    self.finished(lsn)
                }
            case .commit:
                try e.commitComplete()
                finished(stream.lastLSN)
            case .rollback: try e.rollbackComplete()
            default: break
            }
        } catch {
            try? e.rollback()
        }
    }

    private func finished(_ lsn: LSN) {
        let n = committed.add(1, ordering: .relaxed).newValue
        if n % 4096 == 0, let stream = rm?.stream {
            // Bench only: this RM never recovers, so its records are not needed once durable.
            let target = min(log.durableLSN, lsn)
            if target.isValid, target > stream.baseLSN { try? stream.advanceBase(to: target) }
        }
    }
}
