// The bank workload behind `txlog workload` and `txlog demo`: accounts kept in two stores (two resource
// managers of one log), concurrent clients moving money between random accounts. A transfer within one
// store commits in a single phase; across stores it is a two-phase commit. Each transfer also writes a
// marker key `tx:<id>` in every store it touches, so a checker can prove every acknowledged transfer is
// present and no transfer is half-visible.

import Foundation
import LogStore
import TransactionManager
import TransactionalKV

struct BankWorkload {
    static let checkingID = GUID("6b1c0a58-0000-4000-8000-000000000001")!
    static let savingsID = GUID("6b1c0a58-0000-4000-8000-000000000002")!
    static let totalKey = Array("meta:total".utf8)
    static let initialBalance = 1000

    let log: LogStore
    let tm: TransactionManager
    let stores: [KVStore]
    let accountsPerStore: Int
    /// How long opening (log recovery, TM recovery, store recovery) took, in seconds.
    let recoverySeconds: Double

    static func logPath(_ dir: String) -> String { dir + "/log" }
    static func dataPath(_ dir: String) -> String { dir + "/data" }
    static func accountKey(_ i: Int) -> [UInt8] { Array("acct:\(String(format: "%05d", i))".utf8) }

    /// Opens the bank in `dir`, creating and funding it first if it does not exist. With `create` false
    /// (checking), a missing bank is `notFound` and an unfunded one is left as it is.
    static func openOrCreate(_ dir: String, accountsPerStore: Int = 1000, create: Bool = true) async throws -> BankWorkload {
        let fm = FileManager.default
        let exists = fm.fileExists(atPath: logPath(dir) + "/txlog.base")
        if !exists, !create { throw LogError(.notFound, "no workload in \(dir) (no log at \(logPath(dir)))") }
        if !exists { try fm.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        let start = Date()
        let log: LogStore
        if exists {
            log = try LogStore.open(at: logPath(dir))
        } else {
            var o = LogCreateOptions()
            o.containerSize = 8 << 20
            o.containerCount = 4
            o.blockSize = 64 << 10
            log = try LogStore.create(at: logPath(dir), options: o)
        }
        let tm = try TransactionManager.openOrCreate(log: log)
        try tm.recover()
        let checking = try KVStore.open(transactionManager: tm, id: checkingID, description: "checking", directory: dataPath(dir))
        let savings = try KVStore.open(transactionManager: tm, id: savingsID, description: "savings", directory: dataPath(dir))
        let recovery = Date().timeIntervalSince(start)
        var bank = BankWorkload(log: log, tm: tm, stores: [checking, savings], accountsPerStore: accountsPerStore, recoverySeconds: recovery)
        if checking.get(totalKey) == nil {
            if create { try await bank.fund() }
        } else if let t = checking.get(totalKey), let n = Int(String(decoding: t, as: UTF8.self)) {
            bank = BankWorkload(log: log, tm: tm, stores: bank.stores, accountsPerStore: n / initialBalance / 2, recoverySeconds: recovery)
        }
        return bank
    }

    private func fund() async throws {
        let tx = try tm.createTransaction(description: "open accounts")
        for s in stores {
            let v = try s.begin(tx)
            for i in 0..<accountsPerStore { try v.put(Self.accountKey(i), Array("\(Self.initialBalance)".utf8)) }
        }
        try stores[0].begin(tx).put(Self.totalKey, Array("\(accountsPerStore * 2 * Self.initialBalance)".utf8))
        try await tx.commit()
    }

    /// One transfer; returns its description when committed, nil when the source lacked funds.
    /// Throws `conflict` (retry) or anything else (stop).
    func transfer(from: (store: Int, account: Int), to: (store: Int, account: Int), amount: Int) async throws -> String? {
        let tx = try tm.createTransaction(description: "transfer", timeout: .seconds(30))
        let src = try stores[from.store].begin(tx)
        let dst = try stores[to.store].begin(tx)
        let fromKey = Self.accountKey(from.account), toKey = Self.accountKey(to.account)
        let fromBalance = Int(String(decoding: try src.get(fromKey) ?? [], as: UTF8.self)) ?? 0
        guard fromBalance >= amount, from != to else {
            try tx.rollback()
            return nil
        }
        let toBalance = Int(String(decoding: try dst.get(toKey) ?? [], as: UTF8.self)) ?? 0
        // The balance comes from the store's files: one near Int.max trapped adding the amount.
        let (newTo, overflow) = toBalance.addingReportingOverflow(amount)
        guard !overflow else {
            try tx.rollback()
            throw LogError(.corrupt, "store \(to.store) account \(to.account) holds \(toBalance): adding \(amount) overflows")
        }
        try src.put(fromKey, Array("\(fromBalance - amount)".utf8))
        // `from != to`: in one store the accounts differ.
        try (from.store == to.store ? src : dst).put(toKey, Array("\(newTo)".utf8))
        let line = "\(tx.id) \(from.store):\(from.account) \(to.store):\(to.account) \(amount)"
        let marker = Array("tx:\(tx.id)".utf8)
        try src.put(marker, Array(line.utf8))
        if from.store != to.store { try dst.put(marker, Array(line.utf8)) }
        try await tx.commit()
        return line
    }

    /// Runs `clients` transfer loops for `seconds`, calling `acked` with each committed transfer's line.
    /// Checkpoints the stores and the TM every `checkpointEvery` seconds meanwhile.
    func run(clients: Int, seconds: Double, checkpointEvery: Double = 1, acked: @escaping @Sendable (String) -> Void) async throws -> RunStats {
        // The count comes from the bank's stored total: fewer than 2 accounts made the random picks below
        // trap (an empty range), or left no two accounts to transfer between.
        guard accountsPerStore >= 2 else {
            throw LogError(.corrupt, "the bank's stored total describes \(accountsPerStore) accounts per store, fewer than 2")
        }
        let deadline = Date().addingTimeInterval(seconds)
        let syncs0 = log.info().statistics.syncs
        let started = Date()
        let stats = RunCounters()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<clients {
                group.addTask {
                    var rng = SystemRandomNumberGenerator()
                    while Date() < deadline {
                        let from = (Int.random(in: 0..<2, using: &rng), Int.random(in: 0..<accountsPerStore, using: &rng))
                        let to = (Int.random(in: 0..<2, using: &rng), Int.random(in: 0..<accountsPerStore, using: &rng))
                        do {
                            if let line = try await transfer(from: from, to: to, amount: Int.random(in: 1...50, using: &rng)) {
                                acked(line)
                                stats.add(committed: 1, crossStore: from.0 != to.0 ? 1 : 0)
                            }
                        } catch let e as LogError where e.code == .conflict || e.code == .aborted {
                            stats.add(conflicts: 1)
                        }
                    }
                }
            }
            group.addTask {
                while Date() < deadline {
                    try await Task.sleep(for: .milliseconds(Int(checkpointEvery * 1000)))
                    if Date() >= deadline { break }
                    try await Task.detached { for s in stores { try s.checkpoint() }; try tm.checkpoint() }.value
                    stats.add(checkpoints: 1)
                }
            }
            try await group.waitForAll()
        }
        let elapsed = Date().timeIntervalSince(started)
        return RunStats(
            committed: stats.committed, crossStore: stats.crossStore, conflicts: stats.conflicts, checkpoints: stats.checkpoints,
            seconds: elapsed, syncs: log.info().statistics.syncs - syncs0)
    }

    struct RunStats {
        var committed, crossStore, conflicts, checkpoints: Int
        var seconds: Double
        var syncs: UInt64
        var perSecond: Double { Double(committed) / max(seconds, 1e-9) }
        var perSync: Double { Double(committed) / Double(max(syncs, 1)) }
    }

    /// What `workload check` verifies.
    struct Verdict {
        var problems: [String] = []
        var acknowledged = 0
        var markers = 0
        var total = 0
        var expectedTotal = 0
        var ok: Bool { problems.isEmpty }
    }

    /// Checks the invariants against the acknowledged transfer lines.
    func check(acknowledgedLines: [String]) -> Verdict {
        var v = Verdict()
        // Funding is one transaction: a bank killed before it committed has no accounts and no total.
        let funded = stores[0].get(Self.totalKey)
        v.expectedTotal = funded == nil ? 0 : Int(String(decoding: funded ?? [], as: UTF8.self)) ?? -1
        var overflowed = false
        summing: for (si, s) in stores.enumerated() {
            for (key, value) in s.scan(from: Array("acct:".utf8), to: Array("acct;".utf8)) {
                guard let n = Int(String(decoding: value, as: UTF8.self)), n >= 0 else {
                    v.problems.append("store \(si) account \(String(decoding: key, as: UTF8.self)) has a bad balance")
                    continue
                }
                // Balances come from the stores' files: a sum past Int.max trapped.
                let (sum, overflow) = v.total.addingReportingOverflow(n)
                guard !overflow else {
                    v.problems.append("balance not conserved: the balances (up to store \(si)) add up to more than \(Int.max)")
                    overflowed = true
                    break summing
                }
                v.total = sum
            }
        }
        if !overflowed, v.total != v.expectedTotal { v.problems.append("balance not conserved: total \(v.total), expected \(v.expectedTotal)") }
        // Every marker of a cross-store transfer must be in both stores (no half-visible transfer).
        var markers: [Set<String>] = []
        for s in stores {
            markers.append(Set(s.scan(from: Array("tx:".utf8), to: Array("tx;".utf8)).map { String(decoding: $0.value, as: UTF8.self) }))
        }
        v.markers = markers[0].count + markers[1].count
        for line in markers[0].union(markers[1]) {
            let parts = line.split(separator: " ")
            guard parts.count == 4 else { v.problems.append("unreadable marker \(line)"); continue }
            // Store numbers index `markers`: one outside 0...1 is unreadable, never an index (it trapped).
            let stores = Set([parts[1].split(separator: ":").first, parts[2].split(separator: ":").first].compactMap { $0.flatMap { Int($0) } })
            guard stores.allSatisfy(markers.indices.contains) else { v.problems.append("unreadable marker \(line)"); continue }
            for si in stores where !markers[si].contains(line) { v.problems.append("transfer half-visible: \(line) missing in store \(si)") }
        }
        for line in acknowledgedLines where !line.isEmpty {
            v.acknowledged += 1
            let parts = line.split(separator: " ")
            // The line comes from the caller's file: a store number outside 0...1 (say -1) trapped as an index.
            guard parts.count == 4, let fromStore = parts[1].split(separator: ":").first.flatMap({ Int($0) }), markers.indices.contains(fromStore) else {
                v.problems.append("unreadable acknowledgement: \(line)")
                continue
            }
            if !markers[fromStore].contains(line) { v.problems.append("acknowledged transfer lost: \(line)") }
        }
        return v
    }

    /// Clean shutdown: checkpoint the stores (so the next open replays little), then close.
    func close() throws {
        for s in stores { try s.checkpoint() }
        for s in stores { s.close() }
        try tm.close()
        try log.close()
    }
}

final class RunCounters: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var committed = 0, crossStore = 0, conflicts = 0, checkpoints = 0
    func add(committed c: Int = 0, crossStore x: Int = 0, conflicts k: Int = 0, checkpoints p: Int = 0) {
        lock.withLock {
            committed += c
            crossStore += x
            conflicts += k
            checkpoints += p
        }
    }
}

/// Writes lines to stdout, each flushed at once (an acknowledgement must be out before the next one).
final class LineWriter: @unchecked Sendable {
    private let lock = NSLock()
    func write(_ line: String) {
        let bytes = Array((line + "\n").utf8)
        lock.withLock {
            var done = 0
            while done < bytes.count {
                let n = bytes[done...].withUnsafeBytes { Glibc.write(1, $0.baseAddress, $0.count) }
                if n <= 0 { return }
                done += n
            }
        }
    }
}
