// Smoke tests of `txlog bench` options that the figures in docs/PERFORMANCE.md rely on: each runs the
// built binary for a fraction of a second and checks the shape of its JSON, not its speed (figures are
// never asserted in tests).

import Foundation
import Testing
import TxLogTestSupport

@Suite("txlog bench options")
struct BenchToolTests {
    /// Runs `txlog bench <arguments> --json` in a scratch directory and returns the rows of `section`.
    static func rows(_ arguments: [String], section: String, hangAfter: Double = 120) async throws -> [[String: Any]] {
        let scratch = LogTestKit.temporaryPath("bench-tool")
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { LogTestKit.remove(scratch) }
        let ended = try await TxlogProcess.run(["bench"] + arguments + ["--dir", scratch, "--json"], scratch: scratch, hangAfter: hangAfter)
        try #require(ended.status == 0, "txlog bench \(arguments) exited \(ended.status): \(ended.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(ended.stdout.utf8)) as? [String: Any]
        let results = (object?[section] as? [String: Any])?["results"] as? [[String: Any]]
        return try #require(results, "no \(section) results in \(ended.stdout.prefix(300))")
    }

    /// ``rows(_:section:hangAfter:)`` with `--seconds window`, run again with a window ten times longer
    /// (up to 10 s) while `enough` does not hold of the rows. A bench counts only the operations that
    /// start and end inside its window: on a loaded machine a window of 0.3 s can hold none (the writers
    /// not scheduled, one fdatasync taking longer), and a check that something was measured failed. An idle
    /// machine runs it once, as before.
    static func rows(
        _ arguments: [String], seconds window: Double, section: String, until enough: ([[String: Any]]) -> Bool
    ) async throws -> [[String: Any]] {
        var window = window
        while true {
            let rows = try await rows(arguments + ["--seconds", "\(window)"], section: section, hangAfter: 120 + 20 * window)
            if enough(rows) || window >= 10 { return rows }
            window = min(10, window * 10)
        }
    }

    /// True if every row (but the summary rows) counted at least one of `key`.
    static func counted(_ key: String, in rows: [[String: Any]]) -> Bool {
        rows.allSatisfy { $0["mode"] as? String == "median" || ($0[key] as? Int ?? 0) > 0 }
    }

    @Test("bench commit --api async: writers are tasks awaiting the async flush", .hangGuard)
    func commitAsync() async throws {
        let rows = try await Self.rows(["commit", "--api", "async", "--writers", "1,4"], seconds: 0.3, section: "commit") {
            Self.counted("commits", in: $0) && Self.counted("fdatasyncs", in: $0)
        }
        #expect(rows.map { $0["writers"] as? Int } == [1, 4])
        for row in rows {
            #expect(row["api"] as? String == "async")
            #expect((row["commits"] as? Int ?? 0) > 0, "\(row)")
            #expect((row["fdatasyncs"] as? Int ?? 0) > 0, "every commit was flushed: \(row)")
        }
    }

    @Test("bench 2pc --rounds alternates the modes and reports the median ratio and memory growth", .hangGuard)
    func twoPhaseRounds() async throws {
        let rows = try await Self.rows(["2pc", "--clients", "4", "--rounds", "2"], seconds: 0.3, section: "2pc") { Self.counted("commits", in: $0) }
        #expect(rows.map { $0["mode"] as? String } == ["1pc", "2pc", "1pc", "2pc", "median"])
        for row in rows where row["mode"] as? String != "median" {
            #expect((row["commits"] as? Int ?? 0) > 0, "\(row)")
            #expect(row["residentGrowthBytesPerCommit"] is Double, "\(row)")
        }
        let median = try #require(rows.last)
        let ratios = try #require(median["ratios"] as? [Double])
        #expect(ratios.count == 2)
        let reported = try #require(median["ratioToSinglePhase"] as? Double)
        #expect(abs(reported - (ratios[0] + ratios[1]) / 2) < 1e-9, "the median of two rounds is their mean")
    }

    @Test("bench 2pc --max-dirty-kib below four blocks keeps the hint set: every commit step hops, and is counted", .hangGuard)
    func twoPhaseHintSetHops() async throws {
        // A 128 KiB dirty limit is under the hint's margin (four 64 KiB blocks): the hint stays set.
        let rows = try await Self.rows(["2pc", "--clients", "4", "--modes", "2pc", "--max-dirty-kib", "128"], seconds: 0.3, section: "2pc") {
            Self.counted("commits", in: $0)
        }
        let row = try #require(rows.first)
        let commits = try #require(row["commits"] as? Int)
        #expect(commits > 0, "\(row)")
        // Four steps per two-phase commit. A commit in flight at either end of the window (at most one per
        // client at each end) is not counted but may have hopped within it.
        let steps = try #require(row["offPoolSteps"] as? Int)
        #expect(steps >= 4 * commits - 2 * 4 * 4 && steps <= 4 * commits + 2 * 4 * 4, "\(row)")
        #expect(row["offPoolStepsPerCommit"] is Double, "\(row)")
        #expect(row["offPoolThreadsStarted"] is Int, "\(row)")
    }

    @Test("bench append on a log smaller than its warm-up: the run stops at a full log, as --container-mib says", .hangGuard)
    func appendOnASmallLog() async throws {
        // 2,000 warm-up records of 64 KiB are 128 MiB; this log holds 32 MiB. The warm-up used to fill it,
        // and the bench failed with log-full instead of measuring.
        let rows = try await Self.rows(
            ["append", "--container-mib", "8", "--containers", "4", "--sizes", "65536", "--codecs", "none"], seconds: 0.2,
            section: "append") { rows in rows.allSatisfy { ($0["recordsPerSecond"] as? Double ?? 0) > 0 } }
        #expect(rows.count == 1)
        #expect((rows.first?["recordsPerSecond"] as? Double ?? 0) > 0, "\(rows)")
    }

    @Test("bench 2pc --modes 2pc runs one mode; an unknown mode is a usage error")
    func twoPhaseModes() async throws {
        let rows = try await Self.rows(["2pc", "--clients", "2", "--modes", "2pc", "--seconds", "0.2"], section: "2pc")
        #expect(rows.map { $0["mode"] as? String } == ["2pc"])
        #expect(rows.first?["ratioToSinglePhase"] == nil, "no ratio without a single-phase run")
        let scratch = LogTestKit.temporaryPath("bench-tool-usage")
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { LogTestKit.remove(scratch) }
        let ended = try await TxlogProcess.run(["bench", "2pc", "--modes", "3pc", "--dir", scratch], scratch: scratch, hangAfter: 60)
        #expect(ended.status == 64, "\(ended.status): \(ended.stderr)")
        #expect(ended.stderr.contains("--modes"))
    }

    /// An `--input` file that does not exist (or holds nothing) is a bad option value: exit 64 with its
    /// name, as the exit-code table says. It was a plain error, exit 1, which the table keeps for damage.
    @Test("bench compress --input of a missing or empty file is a usage error (64), not the corruption code")
    func compressMissingInput() async throws {
        let scratch = LogTestKit.temporaryPath("bench-tool-input")
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { LogTestKit.remove(scratch) }
        let missing = scratch + "/no-such-wal"
        let ended = try await TxlogProcess.run(["bench", "compress", "--input", missing, "--dir", scratch], scratch: scratch, hangAfter: 60)
        #expect(ended.status == 64, "\(ended.status): \(ended.stderr)")
        #expect(ended.stderr.contains("no-such-wal"), "\(ended.stderr)")
        let empty = scratch + "/empty-wal"
        _ = FileManager.default.createFile(atPath: empty, contents: Data())
        let none = try await TxlogProcess.run(["bench", "compress", "--input", empty, "--dir", scratch], scratch: scratch, hangAfter: 60)
        #expect(none.status == 64, "\(none.status): \(none.stderr)")
    }

    /// A `--dir` that cannot be created (here: below a regular file) is a bad option value, exit 64 with one
    /// line; it was exit 1, the corruption code, with a Foundation error dump.
    @Test("bench --dir that cannot be created is a usage error (64), not the corruption code")
    func benchDirectoryCannotBeCreated() async throws {
        let scratch = LogTestKit.temporaryPath("bench-tool-dir")
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { LogTestKit.remove(scratch) }
        let file = scratch + "/a-file"
        _ = FileManager.default.createFile(atPath: file, contents: Data("x".utf8))
        for bench in [["compress", "--mib", "1"], ["append", "--sizes", "100", "--codecs", "none"]] {
            let ended = try await TxlogProcess.run(["bench"] + bench + ["--seconds", "0.1", "--dir", file + "/sub"], scratch: scratch, hangAfter: 60)
            #expect(ended.status == 64, "\(bench): \(ended.status): \(ended.stderr)")
            #expect(ended.stderr.contains("--dir: cannot create the bench directory"), "\(ended.stderr)")
        }
    }

    /// A `LogError` that stops a bench gets its code's exit code from the table in `txlog --help` (here a
    /// container count the log refuses: invalid-argument, 64). Every such error exited 1, the code the
    /// table keeps for damage; errors met by the bench's writers (I/O, log full) were also wrapped in a
    /// string and lost their code.
    @Test("a LogError that stops a bench exits with its code from the table, not the corruption code")
    func logErrorExitCode() async throws {
        let scratch = LogTestKit.temporaryPath("bench-tool-logerror")
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { LogTestKit.remove(scratch) }
        let ended = try await TxlogProcess.run(
            ["bench", "append", "--containers", "2000", "--sizes", "100", "--codecs", "none", "--seconds", "0.1", "--dir", scratch],
            scratch: scratch, hangAfter: 60)
        #expect(ended.status == 64, "\(ended.status): \(ended.stderr)")
        #expect(ended.stderr.hasPrefix("txlog: invalid-argument"), "\(ended.stderr)")
    }
}
