// The crash loop of the storage library: `txlog workload run` is killed with SIGKILL at random moments,
// and after each kill `txlog workload check` must find every acknowledged transfer, no half-visible
// transfer, and the balance conserved. 30 iterations by default; TXLOG_LONG_TESTS=1 runs 300.

import Foundation
import Testing
import TxLogTestSupport

@Suite(.serialized) struct WorkloadCrashLoopTests {
    static var iterations: Int { ProcessInfo.processInfo.environment["TXLOG_LONG_TESTS"] == "1" ? 300 : 30 }

    @Test func killAtRandomMomentsThenCheck() async throws {
        let dir = NSTemporaryDirectory() + "/txlog-kv-crashloop-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let bank = dir + "/bank"
        let acks = dir + "/acks.txt"
        // Kill anywhere from opening/recovery to mid-run (the first run also creates and funds the bank).
        let loop = try await killLoop(
            iterations: Self.iterations, killAfter: 0.05...0.9, run: ["workload", "run", bank, "--clients", "8", "--seconds", "30", "--accounts", "50"],
            scratch: dir, acks: acks, context: { "iteration \($0) (killed after \($1) s)" }
        ) { try await Self.checkAfterKill(bank: bank, acks: acks, scratch: dir) }
        #expect(loop.killed >= Self.iterations / 2)
        #expect(loop.acknowledged > 0)
        print("workload crash loop: \(Self.iterations) iterations, \(loop.killed) killed, \(loop.acknowledged) acknowledged transfers checked")
    }

    /// The check after a kill. A run killed before it created the bank directory (a slow start under load)
    /// acknowledged nothing, and `workload check` refuses a directory that does not exist (status 2): there
    /// is nothing to check then, so it passes. Once anything was acknowledged the bank must exist.
    /// A run killed after it created the bank but before its first acknowledgement left no acks file
    /// (`appendCompleteLines` writes none for no line): the check then gets an empty one, and must find the
    /// bank consistent with nothing acknowledged.
    static func checkAfterKill(bank: String, acks: String, scratch: String) async throws -> TxlogProcess.Ended {
        let acknowledged = (try? FileManager.default.attributesOfItem(atPath: acks)[.size] as? Int) ?? 0
        if acknowledged == 0, !FileManager.default.fileExists(atPath: bank) {
            return TxlogProcess.Ended(status: 0, killed: false, stdout: "no bank yet, nothing acknowledged", stderr: "")
        }
        if !FileManager.default.fileExists(atPath: acks) { try "".write(toFile: acks, atomically: true, encoding: .utf8) }
        return try await TxlogProcess.run(["workload", "check", bank, "--acks", acks, "--json"], scratch: scratch)
    }

    /// Before, a run killed before it had created the bank failed the loop's first check with "no workload
    /// directory" (`make test-long` under load, and `tools/killloop.sh kv`).
    @Test func killedBeforeTheBankExistedChecksNothing() async throws {
        let dir = NSTemporaryDirectory() + "/txlog-kv-nobank-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let acks = dir + "/acks.txt"
        try "".write(toFile: acks, atomically: true, encoding: .utf8)
        let check = try await Self.checkAfterKill(bank: dir + "/bank", acks: acks, scratch: dir)
        #expect(check.status == 0, "\(check.stdout) \(check.stderr)")
        // Something acknowledged and no bank: that is a loss, and the check reports it.
        try "t 0:00001 1:00002 5\n".write(toFile: acks, atomically: true, encoding: .utf8)
        #expect(try await Self.checkAfterKill(bank: dir + "/bank", acks: acks, scratch: dir).status != 0)
    }

    /// The same for `tools/killloop.sh kv`: a txlog whose `workload run` never gets as far as the bank (it
    /// sleeps until the kill) must not fail the loop.
    @Test func killLoopScriptAcceptsARunKilledBeforeTheBankExisted() async throws {
        let dir = NSTemporaryDirectory() + "/txlog-kv-nobank-loop-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let wrapper = dir + "/txlog"
        try """
            #!/bin/sh
            if [ "$1" = workload ] && [ "$2" = run ]; then exec sleep 60; fi
            exec '\(try TxlogProcess.binary())' "$@"

            """.write(toFile: wrapper, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: wrapper)
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("tools/killloop.sh").path
        let (status, output) = try await onOwnThread { () throws -> (Int32, String) in
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/bash")
            p.arguments = [script, "kv"]
            p.environment = ProcessInfo.processInfo.environment.merging(
                ["TXLOG": wrapper, "ITERATIONS": "2", "SEED": "1", "KILLLOOP_DIR": dir + "/loop"]) { $1 }
            let pipe = Pipe()
            p.standardOutput = pipe
            p.standardError = pipe
            try p.run()
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            return (p.terminationStatus, String(decoding: data, as: UTF8.self))
        }
        #expect(status == 0, "\(output)")
    }

    /// `workload check` checks only a bank that exists: before, a mistyped directory or acknowledgements
    /// file made it create and fund a new bank and print OK. `demo` validates its options (a child that
    /// stopped on its own was toured as if killed).
    @Test func checkAndDemoReportHonestly() async throws {
        let dir = NSTemporaryDirectory() + "/txlog-kv-honest-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let empty = dir + "/empty-acks", some = dir + "/acks"
        try "".write(toFile: empty, atomically: true, encoding: .utf8)
        try "t 0:00001 1:00002 5\n".write(toFile: some, atomically: true, encoding: .utf8)
        let missing = try await TxlogProcess.run(["workload", "check", dir + "/nope", "--acks", empty], scratch: dir)
        #expect(missing.status == 2 && missing.stderr.contains("no workload directory"), "\(missing.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/nope"), "check created a bank")
        let noAcks = try await TxlogProcess.run(["workload", "check", dir, "--acks", dir + "/no-acks"], scratch: dir)
        #expect(noAcks.status == 2, "\(noAcks.stderr)")
        let bare = dir + "/bank"
        try FileManager.default.createDirectory(atPath: bare, withIntermediateDirectories: true)
        #expect(try await TxlogProcess.run(["workload", "check", bare, "--acks", empty], scratch: dir).status == 0)
        let lost = try await TxlogProcess.run(["workload", "check", bare, "--acks", some], scratch: dir)
        #expect(lost.status == 1 && lost.stdout.contains("VIOLATION"), "\(lost.stdout)")
        #expect(!FileManager.default.fileExists(atPath: bare + "/log"), "check created a log")
        #expect(try await TxlogProcess.run(["demo", dir + "/demo", "--clients", "0"], scratch: dir).status == 64)
    }
}
