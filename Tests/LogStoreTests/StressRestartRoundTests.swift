import Foundation
import LogStore
import Testing
import TxLogTestSupport

/// `txlog stress-restart` numbers its rounds from the round in the log's latest restart area: a round
/// number at the ends of `Int` (in the log, or from `--rounds`) is an error, never a trap.
@Suite("stress-restart: round numbers at the ends of Int", .serialized)
struct StressRestartRoundTests {
    /// A log with streams `work` and `ckpt`, whose ckpt restart areas say `rounds`, in order, in the form
    /// `stress-restart run` writes.
    static func log(in scratch: String, rounds: [Int]) throws -> String {
        let dir = scratch + "/log"
        var options = LogCreateOptions()
        options.containerSize = 512 << 10
        options.blockSize = 1024
        let log = try LogStore.create(at: dir, options: options)
        _ = try log.createStream("work")
        let ckpt = try log.createStream("ckpt")
        for r in rounds { _ = try ckpt.writeRestartArea(Array("restart round=\(r) base=0".utf8)) }
        try log.close()
        return dir
    }

    static func scratch() throws -> String {
        let dir = NSTemporaryDirectory() + "txlog-rounds-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    static func expect(_ e: TxlogProcess.Ended, status: Int32, saying: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(
            e.status == status && !e.killed && !e.stderr.contains("Fatal error") && (e.stdout + e.stderr).contains(saying),
            "status \(e.status): \(e.stdout.suffix(300)) \(e.stderr.prefix(400))", sourceLocation: sourceLocation)
    }

    /// `run` after a restart area of round Int.max trapped computing the next round: `corrupt`, exit 1.
    @Test("run after a restart area of round Int.max: corrupt, exit 1")
    func runAfterTheLastRound() async throws {
        let scratch = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let log = try Self.log(in: scratch, rounds: [Int.max])
        let e = try await TxlogProcess.run(["stress-restart", "run", log, "--rounds", "1"], scratch: scratch, hangAfter: 60)
        Self.expect(e, status: 1, saying: "no round can follow")
    }

    /// `--rounds Int.max` after round 5 trapped computing the range's end: a usage error, exit 64, and
    /// nothing is written.
    @Test("run with --rounds past Int.max: exit 64")
    func roundsPastIntMax() async throws {
        let scratch = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let log = try Self.log(in: scratch, rounds: [5])
        let e = try await TxlogProcess.run(["stress-restart", "run", log, "--rounds", "\(Int.max)"], scratch: scratch, hangAfter: 60)
        Self.expect(e, status: 64, saying: "past \(Int.max)")
        #expect(!e.stdout.contains("begin"), "\(e.stdout.prefix(200))")
    }

    /// `check` walking back from a restart area of round Int.min trapped computing the round before it:
    /// the chain breaks there (a violation, exit 1).
    @Test("check with a restart area of round Int.min after another: the chain breaks, exit 1")
    func checkBelowTheFirstRound() async throws {
        let scratch = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let log = try Self.log(in: scratch, rounds: [3, Int.min])
        let acks = scratch + "/acks"
        try "".write(toFile: acks, atomically: true, encoding: .utf8)
        let e = try await TxlogProcess.run(["stress-restart", "check", log, "--acks", acks], scratch: scratch, hangAfter: 60)
        Self.expect(e, status: 1, saying: "restart chain breaks")
    }
}
