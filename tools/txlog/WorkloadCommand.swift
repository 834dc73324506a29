// `txlog workload run|check`: the bank workload as a crash-test harness for outside test drivers.

import ArgumentParser
import Foundation
import LogStore

struct WorkloadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "workload",
        abstract: "A crash-test workload: bank transfers between two stores, with two-phase commit (changes the directory).",
        discussion: """
            Kill `run` at any moment; `check` then checks what it acknowledged.

            Examples:
              txlog workload run ./bank --clients 16 --seconds 10 > acks.txt
              txlog workload check ./bank --acks acks.txt
            """,
        subcommands: [Run.self, Check.self, Churn.self, ChurnCheck.self])

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run transfers; print one flushed line per acknowledged commit: <tx id> <store>:<account> <store>:<account> <amount> (changes the directory).")
        @Argument(help: "The workload directory (created and funded if it does not exist).") var path: String
        @Option(help: "Concurrent clients.") var clients = 8
        @Option(help: "Seconds to run.") var seconds = 10.0
        @Option(help: "Accounts per store when creating.") var accounts = 1000

        func validate() throws {
            guard (1...4096).contains(clients), seconds > 0, (2...100_000).contains(accounts) else {
                throw ValidationError("--clients 1...4096, --seconds > 0, --accounts 2...100000")
            }
        }

        func run() async throws {
            try refuseLogAsWorkloadDirectory(path)
            let bank: BankWorkload
            do { bank = try await BankWorkload.openOrCreate(path, accountsPerStore: accounts) } catch { throw fail(error, opening: true) }
            let out = LineWriter()
            // A one-line error and the exit code of its `LogError` (a bank whose stored data no transfer can
            // use is `corrupt`, exit 1), as the other commands give.
            let stats: BankWorkload.RunStats
            do { stats = try await bank.run(clients: clients, seconds: seconds) { out.write($0) } } catch { throw fail(error) }
            try bank.close()
            FileHandle.standardError.write(Data(String(
                format: "workload: %d transfers (%d across stores), %d conflicts retried, %.0f/s, %.1f commits per fdatasync\n",
                stats.committed, stats.crossStore, stats.conflicts, stats.perSecond, stats.perSync).utf8))
        }
    }

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Recover and check: every acknowledged transfer present, none half-visible, balance conserved. Exits 1 on a violation (changes the log: recovery writes).")
        @Argument(help: "The workload directory.") var path: String
        @Option(help: "The acknowledgements printed by `workload run`.") var acks: String
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let complete = try readWorkloadAcknowledgements(acks, workload: path)
            // A run killed before it created its log leaves the directory and nothing in it: nothing was
            // acknowledged, so nothing can be missing; any acknowledgement means the bank was lost.
            guard FileManager.default.fileExists(atPath: BankWorkload.logPath(path) + "/txlog.base") else {
                if json {
                    printJSON(["ok": complete.isEmpty, "acknowledged": complete.count, "markers": 0, "total": 0, "expectedTotal": 0,
                               "recoverySeconds": 0, "problems": complete.isEmpty ? [] : ["no bank in \(path), yet \(complete.count) transfers were acknowledged"]])
                } else if complete.isEmpty {
                    print("OK: no bank in \(path) yet (its run stopped before creating it), and nothing was acknowledged")
                } else {
                    print("VIOLATION: no bank in \(path), yet \(complete.count) transfers were acknowledged")
                }
                if !complete.isEmpty { throw ExitCode(1) }
                return
            }
            let bank: BankWorkload
            do { bank = try await BankWorkload.openOrCreate(path, create: false) } catch { throw fail(error, opening: true) }
            let v = bank.check(acknowledgedLines: complete)
            try bank.close()
            if json {
                printJSON(["ok": v.ok, "acknowledged": v.acknowledged, "markers": v.markers, "total": v.total, "expectedTotal": v.expectedTotal,
                           "recoverySeconds": bank.recoverySeconds, "problems": v.problems])
            } else if v.ok {
                print(String(format: "OK: %d acknowledged transfers all present, no transfer half-visible, balance %d conserved (recovery %.1f ms)",
                             v.acknowledged, v.total, bank.recoverySeconds * 1000))
            } else {
                print("VIOLATION: \(v.problems.count) problem(s)")
                for p in v.problems.prefix(20) { print("  \(p)") }
            }
            if !v.ok { throw ExitCode(1) }
        }
    }
}
