// `txlog demo` (what `make demo` runs): the whole stack on an embedded default log. Bank transfers
// between accounts kept in two key-value stores, by concurrent clients, with two-phase commit; a child
// process is killed with SIGKILL midway; the log is reopened and recovered, and the invariants checked.

import ArgumentParser
import Foundation
import LogStore

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "A guided tour on a fresh log: bank transfers across two stores, a SIGKILL, recovery, checks (changes the filesystem).",
        discussion: """
            Example:
              txlog demo ./demo-log
            """)

    @Argument(help: "Directory for the demo (a previous demo's directory is replaced; anything else is refused).") var path = "demo-log"
    @Option(help: "Concurrent clients.") var clients = 16
    @Option(help: "Seconds the child runs before it is killed, and seconds of the measured phase.") var seconds = 3.0

    func validate() throws {
        guard (1...4096).contains(clients), seconds > 0, seconds <= 3600 else { throw ValidationError("--clients 1...4096, --seconds > 0 and at most 3600") }
    }

    /// What a demo leaves in its directory: only such a directory is replaced.
    static let demoEntries: Set<String> = ["bank", "acks.txt", "child-stderr.txt"]

    func run() async throws {
        // The directory is removed recursively: never one the demo did not make (a log, a home directory).
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            let entries = isDirectory.boolValue ? (try? FileManager.default.contentsOfDirectory(atPath: path)) : nil
            // Every demo writes child-stderr.txt before its child makes `bank`: a directory holding only a `bank`
            // (a workload run with `workload run DIR/bank`) or an `acks.txt` is someone else's, and was deleted.
            guard let entries, Set(entries).isSubset(of: Self.demoEntries), entries.isEmpty || entries.contains("child-stderr.txt") else {
                FileHandle.standardError.write(Data(
                    "txlog: invalid-argument: \(escaped(path)) exists and is not a previous demo's directory; refusing to replace it (give a new directory)\n".utf8))
                throw ToolExit.usage
            }
            try FileManager.default.removeItem(atPath: path)
        }
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        let bankDir = path + "/bank"
        let acks = path + "/acks.txt"
        print("""
            TxLog demo: a bank on TxLog. Accounts live in two key-value stores ("checking" and "savings"),
            each a durable resource manager with its own stream in ONE shared log. A transfer inside one store
            commits in a single phase; a transfer between stores is a two-phase commit whose prepare records
            and decision record share one group flush.

            """)

        // 1. A child process runs the workload and is killed midway.
        _ = FileManager.default.createFile(atPath: acks, contents: nil)
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        child.arguments = ["workload", "run", bankDir, "--clients", "\(clients)", "--seconds", "3600"]
        child.standardOutput = FileHandle(forWritingAtPath: acks)
        let childErrors = path + "/child-stderr.txt"
        _ = FileManager.default.createFile(atPath: childErrors, contents: nil)
        child.standardError = FileHandle(forWritingAtPath: childErrors)
        try child.run()
        try await Task.sleep(for: .seconds(seconds))
        kill(child.processIdentifier, SIGKILL)
        child.waitUntilExit()
        // The tour is about a crash: a child that stopped on its own (it failed) is reported, not toured.
        guard child.terminationReason == .uncaughtSignal, child.terminationStatus == SIGKILL else {
            let why = ((try? String(contentsOfFile: childErrors, encoding: .utf8)) ?? "").split(separator: "\n").prefix(3).joined(separator: "; ")
            FileHandle.standardError.write(Data("txlog demo: the workload child stopped before it was killed (status \(child.terminationStatus)): \(why)\n".utf8))
            throw ExitCode(1)
        }
        let acked = ((try? String(contentsOfFile: acks, encoding: .utf8)) ?? "").split(separator: "\n").count
        print("1. A child process ran \(clients) concurrent clients making transfers for \(seconds) s, printing each")
        print("   acknowledged (durable) transfer; then it was killed with SIGKILL. It had acknowledged \(acked) transfers.")

        // 2. Reopen: log recovery, TM recovery, store recovery.
        // The child created the bank (unless it was killed before it could: then there is nothing to recover).
        let bank = try await BankWorkload.openOrCreate(bankDir)
        let report = bank.log.recoveryReport
        let tmStats = bank.tm.lastRecovery
        print(String(format: "2. Reopened and recovered in %.1f ms: the log dropped %@; the TM replayed %d records after its",
                     bank.recoverySeconds * 1000, report.tornTail == nil ? "no torn tail" : "a torn tail", tmStats.recordsScanned))
        print("   checkpoint and owed \(tmStats.committing) commits / \(tmStats.aborting) rollbacks to the stores; each store loaded its")
        print("   snapshot, replayed its stream, and rolled back what it had prepared without a decision (presumed abort).")

        // 3. Check the invariants.
        let text = (try? String(contentsOfFile: acks, encoding: .utf8)) ?? ""
        var lines = text.split(separator: "\n").map(String.init)
        if !text.hasSuffix("\n"), !lines.isEmpty { lines.removeLast() }
        let verdict = bank.check(acknowledgedLines: lines)
        if verdict.ok {
            print("3. Checked: all \(verdict.acknowledged) acknowledged transfers are present, no transfer is half-visible,")
            print("   and the total balance is conserved (\(verdict.total)).")
        } else {
            print("3. VIOLATION:")
            for p in verdict.problems.prefix(10) { print("   \(p)") }
        }

        // 4. A measured phase on the recovered bank.
        let stats = try await bank.run(clients: clients, seconds: seconds) { _ in }
        print(String(format: "4. Then %d clients ran for %.1f s in this process: %.0f transfers/s (%d%% across stores, two-phase),",
                     clients, stats.seconds, stats.perSecond, stats.committed == 0 ? 0 : stats.crossStore * 100 / stats.committed))
        print(String(format: "   %.1f commits per fdatasync (group commit), %d conflicts retried, %d checkpoints taken meanwhile.",
                     stats.perSync, stats.conflicts, stats.checkpoints))
        try bank.close()

        print("5. txlog info \(BankWorkload.logPath(bankDir)):")
        try InfoCommand.parse([BankWorkload.logPath(bankDir)]).run()
        if !verdict.ok { throw ExitCode(1) }
    }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func add(_ k: Int) { lock.lock(); n += k; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return n }
}
