// `txlog workload` reads its accounts and its funded total from the stores' files: values no run of its
// own writes (a balance near Int.max, a total naming fewer than two accounts) are refused with an error
// and exit 1, never a trap.

import Foundation
import LogStore
import Testing
import TransactionManager
import TransactionalKV
import TxLogTestSupport

@Suite("workload: stored data it never wrote", .serialized)
struct WorkloadStoredDataTests {
    static let stores = [
        GUID("6b1c0a58-0000-4000-8000-000000000001")!, GUID("6b1c0a58-0000-4000-8000-000000000002")!,
    ]

    /// Opens the bank in `bank` in this process, puts `values` (key → text) into every store in one
    /// transaction, then closes it as `workload` does (checkpoints first).
    static func overwrite(_ bank: String, _ values: [String: String]) async throws {
        let log = try LogStore.open(at: bank + "/log")
        let tm = try TransactionManager.openOrCreate(log: log)
        try tm.recover()
        var stores: [KVStore] = []
        for id in Self.stores { stores.append(try KVStore.open(transactionManager: tm, id: id, directory: bank + "/data")) }
        let tx = try tm.createTransaction(description: "hostile values")
        for s in stores {
            let v = try s.begin(tx)
            for (k, value) in values { try v.put(Array(k.utf8), Array(value.utf8)) }
        }
        try await tx.commit()
        for s in stores { _ = try s.checkpoint() }
        for s in stores { s.close() }
        try tm.close()
        try log.close()
    }

    /// A scratch directory holding a bank `workload run` made (two accounts per store), then overwritten
    /// with `values`.
    static func bank(_ values: [String: String]) async throws -> (scratch: String, bank: String) {
        let scratch = NSTemporaryDirectory() + "txlog-workload-data-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        return try await removingOnThrow(scratch) {
            let bank = scratch + "/bank"
            let created = try await TxlogProcess.run(
                ["workload", "run", bank, "--clients", "1", "--seconds", "0.2", "--accounts", "2"], scratch: scratch, hangAfter: 120)
            #expect(created.status == 0, "\(created.stderr)")
            try await Self.overwrite(bank, values)
            return (scratch, bank)
        }
    }

    static func expectRefused(_ e: TxlogProcess.Ended, _ says: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(
            e.status == 1 && !e.killed && !e.stderr.contains("Fatal error") && (e.stdout + e.stderr).contains(says),
            "status \(e.status): \(e.stdout.suffix(300)) \(e.stderr.prefix(400))", sourceLocation: sourceLocation)
    }

    /// Two accounts per store, each holding Int.max: `run` trapped adding a transfer's amount to the
    /// destination's balance, and `check` trapped adding up the balances.
    @Test("balances near Int.max: run stops with corrupt, check reports a violation")
    func balancesNearIntMax() async throws {
        let (scratch, bank) = try await Self.bank(["acct:00000": "\(Int.max)", "acct:00001": "\(Int.max)"])
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        // The first transfer overflows and ends the run: the long window only keeps a loaded machine, which
        // may not start a transfer within a short one, from ending the run with none (exit 0).
        let run = try await TxlogProcess.run(["workload", "run", bank, "--clients", "1", "--seconds", "30"], scratch: scratch, hangAfter: 120)
        Self.expectRefused(run, "overflows")
        let acks = scratch + "/acks"
        try "".write(toFile: acks, atomically: true, encoding: .utf8)
        let check = try await TxlogProcess.run(["workload", "check", bank, "--acks", acks], scratch: scratch, hangAfter: 120)
        Self.expectRefused(check, "add up to more than")
    }

    /// The number of accounts is the stored total / 1000 / 2: a total of 1000 (no account) or a negative
    /// one made `run` pick an account from an empty or reversed range, a trap.
    @Test("a stored total naming fewer than two accounts per store: run stops with corrupt", arguments: ["1000", "-4000"])
    func totalNamingTooFewAccounts(_ total: String) async throws {
        let (scratch, bank) = try await Self.bank(["meta:total": total])
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let run = try await TxlogProcess.run(["workload", "run", bank, "--clients", "1", "--seconds", "1"], scratch: scratch, hangAfter: 120)
        Self.expectRefused(run, "fewer than 2")
    }
}
