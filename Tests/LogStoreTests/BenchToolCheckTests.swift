// `txlog bench` refuses bad option values with one usage line (exit 64) instead of ignoring or trapping
// on them, prints JSON that parses on every path, finishes the measurements whose small option values it
// got wrong, and removes what it wrote when SIGINT ends it. Run as BenchToolTests runs the built binary:
// a fraction of a second each, shapes and exit codes only, never speeds.

import Foundation
import Testing
import TxLogTestSupport

@Suite("txlog bench checks and cleanup")
struct BenchToolCheckTests {
    /// Runs `txlog bench <arguments> --dir <scratch>/d` and returns how it ended.
    static func bench(_ arguments: [String], _ tag: String) async throws -> TxlogProcess.Ended {
        try await benchMakingDir(arguments, tag).ended
    }

    /// As ``bench(_:_:)``, and whether the run made the `--dir` it was given.
    static func benchMakingDir(_ arguments: [String], _ tag: String) async throws -> (ended: TxlogProcess.Ended, madeDir: Bool) {
        let scratch = LogTestKit.temporaryPath(tag)
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { LogTestKit.remove(scratch) }
        let ended = try await TxlogProcess.run(["bench"] + arguments + ["--dir", scratch + "/d"], scratch: scratch, hangAfter: 120)
        return (ended, FileManager.default.fileExists(atPath: scratch + "/d"))
    }

    /// A list value that does not parse was dropped: `--writers 1,x` ran one writer count, `--codecs
    /// lz4,zstd` lz4 alone, `--clients 2,` two clients, and the run exited 0 as if asked for that.
    @Test(
        "a bad value in a comma-separated bench option is a usage error naming the option",
        arguments: [
            ["commit", "--writers", "1,x"], ["commit", "--writers", "1,0"], ["append", "--codecs", "none", "--sizes", "64,big"],
            ["append", "--sizes", "64", "--codecs", "lz4,zstd"], ["compress", "--mib", "1", "--codecs", "lz4,"],
            ["2pc", "--clients", "2,abc"], ["kv", "--keys", "0", "--clients", "1,-4"],
        ])
    func badListValue(_ arguments: [String]) async throws {
        // The bad option is the last one given.
        let option = arguments[arguments.count - 2]
        let (ended, madeDir) = try await Self.benchMakingDir(arguments + ["--seconds", "0.1", "--json"], "bench-check-list")
        #expect(ended.status == 64, "\(arguments): \(ended.status): \(ended.stderr)")
        #expect(!madeDir, "a refused run made the --dir it was given")
        #expect(ended.stderr.hasPrefix("txlog: invalid-argument: \(option):"), "\(ended.stderr)")
        #expect(ended.stderr.split(separator: "\n").count == 1, "one line: \(ended.stderr)")
        #expect(ended.stdout.isEmpty, "no results for a refused run: \(ended.stdout.prefix(200))")
    }

    /// `bench streams --mib` was not checked: the largest Int trapped sizing the containers (and a negative
    /// count measured empty logs). `bench kv --checkpoint-clients -1` trapped on a reversed range after the
    /// whole recovery measurement.
    @Test(
        "out-of-range bench counts are usage errors, never a trap",
        arguments: [
            ["streams", "--mib", "9223372036854775807"], ["streams", "--mib=-3"],
            ["kv", "--clients", "1", "--keys", "10", "--checkpoint-clients=-1"],
            ["scan", "--mib", "8", "--record-size", "\((4 << 20) + 1)"],
        ])
    func outOfRange(_ arguments: [String]) async throws {
        let ended = try await Self.bench(arguments + ["--seconds", "0.1"], "bench-check-range")
        #expect(ended.status == 64, "\(arguments): \(ended.status): \(ended.stderr)")
        #expect(ended.stderr.hasPrefix("txlog: invalid-argument:"), "\(ended.stderr)")
    }

    /// With fewer than 100 keys, the transactions after the checkpoint added keys (they wrote keys 0...99),
    /// and the recovery's count check failed the bench: "recovered 100 keys, expected 10".
    @Test("bench kv with fewer keys than its after-checkpoint transactions recovers exactly those keys")
    func kvFewKeys() async throws {
        let ended = try await Self.bench(
            ["kv", "--clients", "1", "--keys", "10", "--checkpoint-clients", "1", "--seconds", "0.1", "--json"], "bench-check-kv")
        try #require(ended.status == 0, "\(ended.status): \(ended.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(ended.stdout.utf8)) as? [String: Any]
        let rows = try #require((object?["kv"] as? [String: Any])?["results"] as? [[String: Any]])
        #expect(rows.contains { $0["measurement"] as? String == "recovery" && $0["keys"] as? Int == 10 }, "\(rows)")
    }

    /// The read-only open was timed after the clean close, whose base file has the scan start at the end:
    /// it scanned no block, so its time said nothing about a log of that size.
    @Test("bench scan times the read-only open on the crashed log: it scans every block the recovery scans")
    func scanReadOnlyAfterCrash() async throws {
        let ended = try await Self.bench(["scan", "--mib", "2", "--seconds", "0.1", "--json"], "bench-check-scan-ro")
        try #require(ended.status == 0, "\(ended.status): \(ended.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(ended.stdout.utf8)) as? [String: Any]
        let rows = try #require((object?["scan"] as? [String: Any])?["results"] as? [[String: Any]])
        func blocks(_ operation: String) -> Int? {
            rows.first { ($0["operation"] as? String)?.hasPrefix(operation) == true }?["blocksScanned"] as? Int
        }
        let recovery = try #require(blocks("open after crash"), "\(rows)")
        #expect(recovery > 0)
        #expect(blocks("open read-only") == recovery, "\(rows)")
        #expect(blocks("open after clean close") == 0, "\(rows)")
    }

    /// A measuring window shorter than one commit gives the one-writer run no commit, and the speed-up over
    /// it was 0/0: JSONSerialization refused the NaN and `--json` printed nothing at all, exit 0.
    @Test("bench commit --json parses when the one-writer run measured no commit")
    func commitJSONWithoutCommits() async throws {
        for _ in 0..<3 {
            let ended = try await Self.bench(["commit", "--writers", "1,2", "--seconds", "0.000001", "--json"], "bench-check-json")
            try #require(ended.status == 0, "\(ended.status): \(ended.stderr)")
            let object = try JSONSerialization.jsonObject(with: Data(ended.stdout.utf8)) as? [String: Any]
            let rows = try #require((object?["commit"] as? [String: Any])?["results"] as? [[String: Any]], "\(ended.stdout.prefix(300))")
            #expect(rows.map { $0["writers"] as? Int } == [1, 2])
            for row in rows where (rows.first?["commits"] as? Int) == 0 {
                #expect(row["speedupVsOneWriter"] == nil, "no speed-up over a run without commits: \(row)")
            }
        }
    }

    /// SIGINT left the bench's files: its temporary directory (zero-filled containers) under $TMPDIR, or
    /// the bench log it was writing in a --dir given. The directory's deinit never runs when a signal ends
    /// the process.
    @Test("SIGINT during a bench removes its temporary directory, or its logs in --dir, and ends by the signal", arguments: [false, true])
    func interrupted(givenDir: Bool) async throws {
        let scratch = LogTestKit.temporaryPath("bench-check-sigint")
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { LogTestKit.remove(scratch) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try TxlogProcess.binary())
        // A 2 MiB log: quick to create even under load. The bench would go on for an hour: it is still running
        // when the signal comes, however long a loaded machine takes to see its log.
        p.arguments = ["bench", "append", "--container-mib", "1", "--containers", "2", "--sizes", "64", "--codecs", "none", "--seconds", "3600"]
            + (givenDir ? ["--dir", scratch + "/d"] : [])
        var environment = ProcessInfo.processInfo.environment
        environment["TMPDIR"] = scratch
        p.environment = environment
        let errors = scratch + "/stderr"
        _ = FileManager.default.createFile(atPath: errors, contents: nil)
        let errorHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: errors))
        defer { try? errorHandle.close() }
        p.standardOutput = FileHandle.nullDevice
        p.standardError = errorHandle
        try p.run()
        let root = givenDir ? scratch + "/d" : scratch + "/txlog-bench-\(p.processIdentifier)"
        // Polled on a thread of its own: on the cooperative pool, under the full suite's load, the polls
        // could be so far apart that the bench (then a minute long) ended before one saw its log.
        let (started, ended) = await onOwnThread { () -> (Bool, Bool) in
            var started = false
            for _ in 0..<6000 where p.isRunning && !started {
                started = FileManager.default.fileExists(atPath: root + "/append-log")
                if !started { usleep(50_000) }
            }
            if p.isRunning { kill(p.processIdentifier, SIGINT) }
            var ended = false
            for _ in 0..<6000 where !ended {
                ended = !p.isRunning
                if !ended { usleep(50_000) }
            }
            if !ended { kill(p.processIdentifier, SIGKILL) }
            return (started, ended)
        }
        let stderr = (try? String(contentsOfFile: errors, encoding: .utf8)) ?? ""
        #expect(started, "the bench never made its log: \(stderr)")
        try #require(ended, "txlog did not end after SIGINT: \(stderr)")
        #expect(p.terminationReason == .uncaughtSignal && p.terminationStatus == SIGINT, "\(p.terminationReason) \(p.terminationStatus): \(stderr)")
        #expect(!FileManager.default.fileExists(atPath: root + "/append-log"), "the bench log is left")
        if !givenDir { #expect(!FileManager.default.fileExists(atPath: root), "the temporary directory is left") }
    }
}
