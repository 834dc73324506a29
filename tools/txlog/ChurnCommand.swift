// `txlog workload churn|churn-check`: the churn workload (ChurnWorkload.swift) as a crash-test harness.

import ArgumentParser
import Foundation
import LogStore

extension WorkloadCommand {
    struct Churn: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run deterministic puts, deletes and large write sets over two stores; print one flushed line per acknowledged commit: <client> <n> (changes the directory).")
        @Argument(help: "The workload directory (created if it does not exist).") var path: String
        @Option(help: "Concurrent clients, each on keys of its own (when creating).") var clients = 4
        @Option(help: "Seconds to run.") var seconds = 10.0
        @Option(help: "Seed of the transactions (when creating; default random).") var seed: UInt64?
        @Option(help: "Seconds between checkpoints of the stores and the TM (rare ones leave the log to the stores' tail-pinned checkpoints, and to log-full).")
        var checkpointEvery = 0.25

        func validate() throws {
            guard (1...64).contains(clients), seconds > 0, checkpointEvery >= 0.01 else {
                throw ValidationError("--clients 1...64, --seconds > 0, --checkpoint-every 0.01 or more")
            }
        }

        func run() async throws {
            try refuseLogAsWorkloadDirectory(path)
            let w: ChurnWorkload
            do {
                w = try await ChurnWorkload.open(path, seed: seed ?? UInt64.random(in: 0...UInt64(UInt32.max)), clients: clients, create: true)
            } catch { throw fail(error, opening: true) }
            let out = LineWriter()
            let stats: ChurnWorkload.RunStats
            do { stats = try await w.run(seconds: seconds, checkpointEvery: checkpointEvery) { out.write($0) } } catch { throw fail(error) }
            try w.close()
            FileHandle.standardError.write(Data(
                "churn: \(stats.committed) transactions (\(stats.twoStore) across both stores), \(stats.oversizeRefused) oversize write sets refused, \(stats.retries) retried, \(stats.checkpoints) checkpoints\n".utf8))
        }
    }

    struct ChurnCheck: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "churn-check",
            abstract: "Recover and compare both stores exactly with the churn model: every acknowledged transaction present, nothing of an unacknowledged one half-present, deleted keys absent, scans, gets and counts agreeing. Exits 1 on a violation (changes the log: recovery writes).")
        @Argument(help: "The workload directory.") var path: String
        @Option(help: "The acknowledgements printed by `workload churn`.") var acks: String
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let complete = try readWorkloadAcknowledgements(acks, workload: path)
            var v = ChurnWorkload.Verdict()
            if FileManager.default.fileExists(atPath: ChurnWorkload.logPath(path) + "/txlog.base") {
                let w: ChurnWorkload
                do { w = try await ChurnWorkload.open(path, seed: 0, clients: 1, create: false) } catch { throw fail(error, opening: true) }
                v = w.check(acknowledgedLines: complete)
                try w.close()
            } else if !complete.isEmpty {
                // Killed before it created its log: nothing can have been acknowledged.
                v.acknowledged = complete.count
                v.problems.append("no log in \(path), yet \(complete.count) transactions were acknowledged")
            }
            if json {
                printJSON(["ok": v.ok, "acknowledged": v.acknowledged, "transactions": v.transactions, "present": v.present, "absent": v.absent,
                           "problems": Array(v.problems.prefix(50))])
            } else if v.ok {
                print("OK: \(v.acknowledged) acknowledged, \(v.transactions) transactions replayed and matched, \(v.present) keys present and \(v.absent) absent as the model says")
            } else {
                print("VIOLATION: \(v.problems.count) problem(s)")
                for p in v.problems.prefix(20) { print("  \(p)") }
            }
            if !v.ok { throw ExitCode(1) }
        }
    }
}
