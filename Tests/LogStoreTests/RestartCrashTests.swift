import Foundation
import Testing
@testable import LogStore

/// Restart-area atomicity: a child process writes restart areas and is killed at its Nth write or sync,
/// before or after the call, for every N across several rounds of the protocol (append, flush, base-file
/// write). After each crash the latest restart area must be intact, be the acknowledged one or the one
/// being written, carry exactly its own base (never a blend), and chain back in order.
@Suite("Restart areas under SIGKILL at every step", .serialized)
struct RestartCrashTests {
    static var txlog: String { TxlogProcess.path }

    /// Runs txlog to its end (the shared runner, ``TxlogProcess/run(_:scratch:killAfter:currentDirectory:hangAfter:)``);
    /// with `acks`, appends its output to that file. Returns its exit status and its other output.
    @discardableResult
    static func run(_ args: [String], scratch: String, acks: String? = nil) async throws -> (Int32, String) {
        let ended = try await TxlogProcess.run(args, scratch: scratch)
        guard let acks else { return (ended.status, ended.stdout + ended.stderr) }
        try appendCompleteLines(of: ended.stdout, to: acks)
        return (ended.status, ended.stderr)
    }

    @Test("kill before and after every write and sync of three restart rounds", arguments: [false, true])
    func sweep(after: Bool) async throws {
        #expect(FileManager.default.isExecutableFile(atPath: Self.txlog), "build txlog first (make test does): \(Self.txlog)")
        let dir = NSTemporaryDirectory() + "txlog-restart-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let acks = dir + ".acks"
        defer { try? FileManager.default.removeItem(atPath: acks) }
        _ = FileManager.default.createFile(atPath: acks, contents: nil)
        let scratch = dir + ".out"
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        try await Self.run(["create", dir, "--container-size", "512K", "--containers", "3", "--block-size", "4K"], scratch: scratch)
        // Learn how many writes and syncs three rounds take, then crash at each of them.
        var kills = 0
        var n = 1
        while n <= 60 {
            let (status, _) = try await Self.run(
                ["stress-restart", "run", dir, "--rounds", "3", "--records", "40", "--kill-at", "\(n)"] + (after ? ["--after"] : []),
                scratch: scratch, acks: acks)
            let (checkStatus, output) = try await Self.run(["stress-restart", "check", dir, "--acks", acks], scratch: scratch)
            #expect(checkStatus == 0, "kill at step \(n) (after: \(after)): \(output)")
            if status == 137 { kills += 1 } else {
                #expect(status == 0, "the workload failed without being killed at step \(n)")
                break
            }
            n += 1
        }
        #expect(kills >= 10, "the sweep should cross many steps; it crossed \(kills)")
    }
}
