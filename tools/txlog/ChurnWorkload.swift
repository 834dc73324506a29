// The churn workload behind `txlog workload churn` and `churn-check`: clients run the deterministic
// transactions of ChurnModel.swift on two stores of one log (1 KiB blocks, 16 containers of 512 KiB), with
// checkpoints meanwhile, and print `<client> <n>` once transaction n's commit returned. After a kill the
// checker recovers, reads how far each client got, replays the model and compares it with both stores
// exactly: scans, gets, counts.

import Foundation
import LogStore
import TransactionManager
import TransactionalKV

struct ChurnWorkload {
    static let storeIDs = [GUID("6b1c0a58-0000-4000-8000-0000000000c1")!, GUID("6b1c0a58-0000-4000-8000-0000000000c2")!]
    static let metaKey = "meta:churn"
    /// The most transactions a client's `seq` key may claim: more is damage (and would replay for ever).
    static let maxSeq = 10_000_000

    let log: LogStore
    let tm: TransactionManager
    let stores: [KVStore]
    /// nil: the workload's first transaction (which records these) never committed.
    let seed: UInt64?
    let clients: Int

    static func logPath(_ dir: String) -> String { dir + "/log" }

    /// Opens the workload in `dir`, creating the log first if it does not exist and, with `create`,
    /// recording `seed` and `clients` in its first transaction if no run got that far. With `create`
    /// false a missing log is `notFound`.
    static func open(_ dir: String, seed: UInt64, clients: Int, create: Bool) async throws -> ChurnWorkload {
        let fm = FileManager.default
        let exists = fm.fileExists(atPath: logPath(dir) + "/txlog.base")
        if !exists, !create { throw LogError(.notFound, "no churn workload in \(dir) (no log at \(logPath(dir)))") }
        let log: LogStore
        if exists {
            log = try LogStore.open(at: logPath(dir))
        } else {
            try fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
            var o = LogCreateOptions(containerSize: 512 << 10, containerCount: 16, blockSize: 1024, codec: seed % 2 == 0 ? .lz4 : .none)
            o.maxRecordSize = Int(LogLimits.largestRecord(containerSize: o.containerSize))
            log = try LogStore.create(at: logPath(dir), options: o)
        }
        let tm = try TransactionManager.openOrCreate(log: log)
        try tm.recover()
        let stores = try storeIDs.enumerated().map {
            try KVStore.open(transactionManager: tm, id: $0.element, description: "churn \($0.offset)", directory: dir + "/data")
        }
        if let meta = stores[0].get(Array(metaKey.utf8)) {
            let parts = String(decoding: meta, as: UTF8.self).split(separator: " ")
            guard parts.count == 3, parts[0] == "churn-v1", let s = UInt64(parts[1]), let c = Int(parts[2]), (1...64).contains(c) else {
                throw LogError(.corrupt, "unreadable \(metaKey): \(String(decoding: meta, as: UTF8.self))")
            }
            return ChurnWorkload(log: log, tm: tm, stores: stores, seed: s, clients: c)
        }
        guard create else { return ChurnWorkload(log: log, tm: tm, stores: stores, seed: nil, clients: 0) }
        let tx = try tm.createTransaction(description: "churn setup")
        try stores[0].begin(tx).put(Array(metaKey.utf8), Array("churn-v1 \(seed) \(clients)".utf8))
        try await tx.commit()
        return ChurnWorkload(log: log, tm: tm, stores: stores, seed: seed, clients: clients)
    }

    /// How far `client` got: the larger `seq` of the two stores (0: nothing committed).
    func committedThrough(_ client: Int) throws -> Int {
        try stores.indices.map { s -> Int in
            guard let v = stores[s].get(Array(ChurnTransaction.seqKey(client).utf8)) else { return 0 }
            guard let n = Int(String(decoding: v, as: UTF8.self)), (1...Self.maxSeq).contains(n) else {
                throw LogError(.corrupt, "store \(s): client \(client)'s seq holds \(String(decoding: v, as: UTF8.self))")
            }
            return n
        }.max() ?? 0
    }

    struct RunStats { var committed = 0, twoStore = 0, oversizeRefused = 0, retries = 0, checkpoints = 0 }

    /// Runs the clients for `seconds`, calling `acked` with `<client> <n>` after each commit returned,
    /// and checkpoints every `checkpointEvery` seconds.
    func run(seconds: Double, checkpointEvery: Double = 0.25, acked: @escaping @Sendable (String) -> Void) async throws -> RunStats {
        guard let seed else { throw LogError(.invalidState, "the churn workload is not set up") }
        let deadline = Date().addingTimeInterval(seconds)
        let counters = ChurnCounters()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for c in 0..<clients {
                let first = try committedThrough(c) + 1
                group.addTask {
                    var model = ChurnModel.replay(seed: seed, client: c, through: first - 1)
                    var n = first
                    while Date() < deadline {
                        let t = ChurnTransaction.make(seed: seed, client: c, n: n)
                        if t.oversizeFirst {
                            try await refuseOversize(client: c)
                            counters.add(\.oversizeRefused)
                        }
                        do {
                            try await execute(t, model: model)
                        } catch let e as LogError where [.conflict, .aborted, .logFull].contains(e.code) {
                            // Refused as a whole (a full log vetoes): the same transaction again.
                            counters.add(\.retries)
                            try await Task.sleep(for: .milliseconds(5))
                            continue
                        }
                        model.apply(t)
                        acked("\(c) \(n)")
                        counters.add(\.committed)
                        if Set(t.writes.map(\.store)).count == 2 { counters.add(\.twoStore) }
                        n += 1
                    }
                }
            }
            group.addTask {
                while true {
                    let left = deadline.timeIntervalSinceNow
                    if left <= 0 { break }
                    try await Task.sleep(for: .milliseconds(Int(min(checkpointEvery, left) * 1000)))
                    if left < checkpointEvery { break }
                    try await Task.detached { for s in stores { try s.checkpoint() }; try tm.checkpoint() }.value
                    counters.add(\.checkpoints)
                }
            }
            try await group.waitForAll()
        }
        return counters.stats
    }

    /// One transaction: its writes in order; with `scans`, each store's keys of the client read back
    /// through the transaction's view and compared with the model plus the transaction's own writes.
    private func execute(_ t: ChurnTransaction, model: ChurnModel) async throws {
        let tx = try tm.createTransaction(description: "churn \(t.client) \(t.n)", timeout: .seconds(60))
        do {
            var views: [Int: KVTransaction] = [:]
            for w in t.writes {
                let v = try views[w.store] ?? stores[w.store].begin(tx)
                views[w.store] = v
                if let value = w.value { try v.put(Array(w.key.utf8), value.bytes) } else { try v.delete(Array(w.key.utf8)) }
            }
            if t.scans {
                var after = model
                after.apply(t)
                let p = ChurnTransaction.prefix(t.client)
                for (s, v) in views {
                    let seen = try v.scan(from: Array(p.utf8), to: Array(p.dropLast().utf8) + [UInt8(ascii: ";")])
                    let expected = after.stores[s].sorted { $0.key < $1.key }
                    guard seen.map({ String(decoding: $0.key, as: UTF8.self) }) == expected.map(\.key),
                        seen.map(\.value) == expected.map(\.value.bytes)
                    else { throw LogError(.corrupt, "client \(t.client) transaction \(t.n): its scan of store \(s) does not match its writes over what committed") }
                }
            }
        } catch {
            try? tx.rollback()
            throw error
        }
        try await tx.commit()
    }

    /// A transaction writing a little in store 1 and more than the log's largest record in store 0: it
    /// must fail (store 0 cannot log its prepare), and neither store may show its key.
    private func refuseOversize(client: Int) async throws {
        let key = Array(ChurnTransaction.neverKey(client).utf8)
        let tx = try tm.createTransaction(description: "churn oversize \(client)", timeout: .seconds(60))
        try stores[1].begin(tx).put(key, Array("never".utf8))
        try stores[0].begin(tx).put(key, [UInt8](repeating: 0x6f, count: log.maxRecordSize + 1))
        var committed = false
        do {
            try await tx.commit()
            committed = true
        } catch let e as LogError where e.code != .failed && e.code != .closed {}
        if committed || stores.contains(where: { $0.get(key) != nil }) {
            throw LogError(.corrupt, "client \(client): a write set over the largest record (\(log.maxRecordSize) bytes) \(committed ? "committed" : "left its key behind")")
        }
    }

    /// Clean shutdown: checkpoint the stores, then close.
    func close() throws {
        for s in stores { try s.checkpoint() }
        for s in stores { s.close() }
        try tm.close()
        try log.close()
    }
}

final class ChurnCounters: @unchecked Sendable {
    private let lock = NSLock()
    private var value = ChurnWorkload.RunStats()
    func add(_ field: WritableKeyPath<ChurnWorkload.RunStats, Int>) { lock.withLock { value[keyPath: field] += 1 } }
    var stats: ChurnWorkload.RunStats { lock.withLock { value } }
}
