// The churn crash loop: `txlog workload churn` (puts, deletes of present, missing and just-written keys,
// write sets over many of the log's 1 KiB blocks, refused oversize write sets, one- and two-store
// transactions, checkpoints) is killed with SIGKILL at random moments, and after each kill
// `txlog workload churn-check` must find both stores exactly as the model of the transactions they say
// committed, at least through every acknowledged one. A few kills by default (the long loop is
// `tools/killloop.sh churn`); TXLOG_LONG_TESTS=1 runs 40.

import Foundation
import LogStore
import Testing
import TransactionManager
import TransactionalKV
import TxLogTestSupport

@Suite(.serialized) struct ChurnCrashLoopTests {
    static var iterations: Int { ProcessInfo.processInfo.environment["TXLOG_LONG_TESTS"] == "1" ? 40 : 6 }

    @Test func killAtRandomMomentsThenCheckExactly() async throws {
        let dir = NSTemporaryDirectory() + "/txlog-kv-churnloop-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let work = dir + "/churn", acks = dir + "/acks.txt"
        try "".write(toFile: acks, atomically: true, encoding: .utf8)
        var rng = SystemRandomNumberGenerator()
        let seed = UInt64.random(in: 0...UInt64(UInt32.max), using: &rng)
        let loop = try await killLoop(
            iterations: Self.iterations, killAfter: 0.3...1.2, run: ["workload", "churn", work, "--clients", "4", "--seconds", "30", "--seed", "\(seed)"],
            scratch: dir, acks: acks, context: { "seed \(seed), iteration \($0), killed after \($1) s" }
        ) { try await TxlogProcess.run(["workload", "churn-check", work, "--acks", acks, "--json"], scratch: dir) }
        if loop.checkFailed { return }
        let (acked, killed) = (loop.acknowledged, loop.killed)
        let matched = Int(Self.field("transactions", in: loop.lastCheck?.stdout ?? "") ?? "") ?? 0
        #expect(killed >= Self.iterations / 2)
        #expect(acked > 0 && matched >= acked, "\(acked) acknowledged, \(matched) transactions matched")
        // The checker is not blind: a transaction acknowledged beyond what the stores hold is a loss.
        try appendCompleteLines(of: "0 \(matched + 1)\n", to: acks)
        let lost = try await TxlogProcess.run(["workload", "churn-check", work, "--acks", acks], scratch: dir)
        #expect(lost.status == 1 && lost.stdout.contains("acknowledged transaction \(matched + 1) lost"), "\(lost.stdout) \(lost.stderr)")
        print("churn crash loop: \(Self.iterations) iterations, \(killed) killed, \(acked) acknowledged, \(matched) transactions matched after the last kill")
    }

    /// The checker sees what the model does not allow: a key that only ever gets deleted, present in one
    /// store; and a committed write missing in one store (client 0's `seq` key, deleted where it is not the
    /// larger: the model still has it there; or, in its only store, the client's acknowledged work gone).
    @Test(arguments: ["resurrected", "lost"]) func checkerReportsWritesTheModelDoesNotAllow(_ damage: String) async throws {
        let dir = NSTemporaryDirectory() + "/txlog-kv-churncheck-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let work = dir + "/churn", acks = dir + "/acks.txt"
        let run = try await TxlogProcess.run(["workload", "churn", work, "--clients", "2", "--seconds", "1", "--seed", "11"], scratch: dir)
        try #require(run.status == 0, "\(run.stderr)")
        try #require(run.stdout.hasPrefix("0 ") || run.stdout.contains("\n0 "), "client 0 acknowledged nothing: \(run.stdout.prefix(200))")
        try appendCompleteLines(of: run.stdout, to: acks)
        let clean = try await TxlogProcess.run(["workload", "churn-check", work, "--acks", acks], scratch: dir)
        try #require(clean.status == 0, "\(clean.stdout) \(clean.stderr)")
        // Written as the workload's stores, through the library.
        let log = try LogStore.open(at: work + "/log")
        let tm = try TransactionManager.openOrCreate(log: log)
        try tm.recover()
        let ids = [GUID("6b1c0a58-0000-4000-8000-0000000000c1")!, GUID("6b1c0a58-0000-4000-8000-0000000000c2")!]
        let stores = try ids.map { try KVStore.open(transactionManager: tm, id: $0, directory: work + "/data") }
        let tx = try tm.createTransaction()
        if damage == "resurrected" {
            try stores[1].begin(tx).put(Array("c00:z01".utf8), Array("back".utf8))
        } else {
            let seq = Array("c00:seq".utf8)
            let n = stores.map { Int(String(decoding: $0.get(seq) ?? [], as: UTF8.self)) ?? 0 }
            try stores[n[1] > 0 && (n[0] == 0 || n[1] <= n[0]) ? 1 : 0].begin(tx).delete(seq)
        }
        try await tx.commit()
        for s in stores { s.close() }
        try tm.close()
        try log.close()
        let check = try await TxlogProcess.run(["workload", "churn-check", work, "--acks", acks], scratch: dir)
        let expected = damage == "resurrected" ? ["get c00:z01 gives 4 bytes"] : ["get c00:seq gives nothing", "client 0: acknowledged transaction"]
        #expect(check.status == 1 && check.stdout.contains("VIOLATION") && expected.contains(where: check.stdout.contains), "\(check.stdout) \(check.stderr)")
    }

    static func field(_ name: String, in json: String) -> String? {
        guard let r = json.range(of: "\"\(name)\" : ") else { return nil }
        return String(json[r.upperBound...].prefix { $0.isNumber })
    }
}
