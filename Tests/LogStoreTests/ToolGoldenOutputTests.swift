// Golden outputs of every read command of the built `txlog`, text and JSON, on a committed fixture log
// (Fixtures/tool-log, written by the hidden `txlog fixture-log`; what it holds: tools/txlog/FixtureLogCommand.swift).
//
// Each case copies the log to a fresh directory, runs txlog there with the relative path `tool-log`, and
// compares stdout byte for byte with Fixtures/tool-output/<case>; it also checks the exit code, that stderr is
// empty, that JSON parses, and that the log's files are unchanged. Only `recovery.durationNanos` of
// `tm transactions --json` is normalized (see ToolGolden.normalize). Because the log's bytes are committed,
// these tests also pin the on-disk format: a reader change that misreads old logs shows up here.
//
//     TXLOG_UPDATE_FIXTURES=1 swift test --filter ToolGoldenOutputTests    # rewrite the expected outputs
//     TXLOG_UPDATE_TOOL_LOG=1 swift test --filter ToolGoldenOutputTests    # new fixture log, then the outputs
//
// Review the rewritten files like code (docs/TESTING.md).

import Foundation
import Testing
import TxLogTestSupport

/// One command line and the golden file its stdout must equal.
struct GoldenCase: Sendable, CustomTestStringConvertible {
    enum JSON: Sendable { case document, lines }
    /// The golden file (in Fixtures/tool-output).
    var file: String
    /// Arguments; `LOG` stands for the copy of the fixture log.
    var arguments: [String]
    var status: Int32 = 0
    var json: JSON?
    /// A file the command writes (relative to its working directory) that must equal the golden file of that name.
    var writes: String?

    var testDescription: String { "txlog " + arguments.joined(separator: " ") }

    static let log = "LOG"
    static func text(_ file: String, _ arguments: String...) -> GoldenCase { GoldenCase(file: file, arguments: arguments) }
    static func json(_ file: String, _ arguments: String...) -> GoldenCase { GoldenCase(file: file, arguments: arguments + ["--json"], json: .document) }

    /// Every read command, in text and JSON. The LSNs of the range cases are records of the fixture log:
    /// after regenerating it (TXLOG_UPDATE_TOOL_LOG=1) check that they still are (see dump.txt).
    static let all: [GoldenCase] = [
        text("info.txt", "info", log), json("info.json", "info", log),
        text("containers.txt", "containers", "list", log), json("containers.json", "containers", "list", log),
        text("streams.txt", "streams", log), json("streams.json", "streams", log),
        text("policy.txt", "policy", "show", log), json("policy.json", "policy", "show", log),
        text("dump.txt", "dump", log),
        GoldenCase(file: "dump.jsonl", arguments: ["dump", log, "--json"], json: .lines),
        text("dump-stream-orders.txt", "dump", log, "--stream", "orders"),
        text("dump-stream-default-hex.txt", "dump", log, "--stream", "default", "--hex"),
        text("dump-stream-ktm.txt", "dump", log, "--stream", "ktm"),
        GoldenCase(file: "dump-stream-ktm.jsonl", arguments: ["dump", log, "--stream", "ktm", "--json"], json: .lines),
        text("dump-type-restart.txt", "dump", log, "--type", "restart"),
        text("dump-range.txt", "dump", log, "--from", "2:7168:0", "--to", "2:7680:3"),  // a two-phase commit, then a one-phase one
        text("dump-range-hex.txt", "dump", log, "--from", "1:522240:1", "--to", "2:4096:0", "--hex"),  // across the container switch
        text("dump-limit.txt", "dump", log, "--stream", "1", "--limit", "3"),
        text("dump-xid.txt", "dump", log, "--xid", "7e000000-0000-4000-8000-0000000000f1"),  // across the TM's and the store's streams
        GoldenCase(file: "dump-kind-checkpoint.jsonl", arguments: ["dump", log, "--kind", "checkpoint", "--json"], json: .lines),
        text("dump-stats.txt", "dump", log, "--stats"), json("dump-stats.json", "dump", log, "--stats"),
        text("verify.txt", "verify", log), json("verify.json", "verify", log),
        text("verify-keep-going.txt", "verify", log, "--keep-going"),
        text("stats.txt", "stats", log), json("stats.json", "stats", log),
        GoldenCase(file: "map.txt", arguments: ["map", log, "--svg", "map.svg"], writes: "map.svg"),
        text("map-width-16.txt", "map", log, "--width", "16"),
        text("tm-list.txt", "tm", "list", log), json("tm-list.json", "tm", "list", log),
        text("tm-transactions.txt", "tm", "transactions", log), json("tm-transactions.json", "tm", "transactions", log),
        text("tm-audit.txt", "tm", "audit", log), json("tm-audit.json", "tm", "audit", log),
    ]
}

@Suite("txlog golden outputs")
struct ToolGoldenOutputTests {
    @Test("read command output equals its golden file", arguments: GoldenCase.all)
    func golden(_ c: GoldenCase) async throws {
        let work = try await ToolGolden.workingCopy()
        defer { try? FileManager.default.removeItem(at: work) }
        let copy = work.appendingPathComponent(ToolGolden.logName)
        let before = try ToolGolden.contents(copy)
        #expect(before == (try ToolGolden.contents(try await ToolGolden.fixtureLog())), "the copy differs from the fixture")

        let arguments = c.arguments.map { $0 == GoldenCase.log ? ToolGolden.logName : $0 }
        let run = try await TxlogProcess.run(arguments, scratch: work.path, currentDirectory: work.path)
        #expect(run.status == c.status, "exit status \(run.status), stderr: \(run.stderr)")
        #expect(run.stderr.isEmpty, "stderr: \(run.stderr)")
        let out = ToolGolden.normalize(run.stdout)
        try ToolGolden.expectGolden(c.file, out)
        if let written = c.writes {
            let data = try #require(try? Data(contentsOf: work.appendingPathComponent(written)), "\(written) was not written")
            try ToolGolden.expectGolden(written, String(decoding: data, as: UTF8.self))
        }
        switch c.json {
        case .document?:
            #expect((try? JSONSerialization.jsonObject(with: Data(out.utf8))) != nil, "not JSON: \(out.prefix(200))")
        case .lines?:
            let lines = out.split(separator: "\n")
            #expect(!lines.isEmpty)
            for (i, line) in lines.enumerated() {
                #expect((try? JSONSerialization.jsonObject(with: Data(line.utf8))) is [String: Any], "line \(i + 1) is not a JSON object: \(line.prefix(200))")
            }
        case nil: break
        }
        #expect(try ToolGolden.contents(copy) == before, "a read command changed the log's files")
    }

    /// The generator still runs and still writes what the golden files describe (not byte for byte: the log id
    /// and the forced record's time are new on every run).
    @Test("txlog fixture-log writes a clean log with the documented transactions")
    func generator() async throws {
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("txlog-golden-gen-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: work) }
        let made = try await TxlogProcess.run(["fixture-log", ToolGolden.logName], scratch: work.path, currentDirectory: work.path)
        try #require(made.status == 0, "\(made.stderr)")
        let verify = try await TxlogProcess.run(["verify", ToolGolden.logName], scratch: work.path, currentDirectory: work.path)
        #expect(verify.status == 0 && verify.stdout.contains("ok: the log is clean"), "\(verify.stdout)\(verify.stderr)")
        let again = try await TxlogProcess.run(["fixture-log", ToolGolden.logName], scratch: work.path, currentDirectory: work.path)
        #expect(again.status == 64, "it refuses an existing directory")
        #expect(again.stderr.hasPrefix("txlog: invalid-argument: ") && again.stderr.contains("already exists"), "\(again.stderr)")

        // The same records at the same LSNs as the committed log: dump agrees but for the forced record's time.
        guard !ToolGolden.updating else { return }
        let dump = try await TxlogProcess.run(["dump", ToolGolden.logName], scratch: work.path, currentDirectory: work.path)
        let expected = try String(contentsOf: ToolGolden.outputDirectory.appendingPathComponent("dump.txt"), encoding: .utf8)
        func timeless(_ s: String) -> String { s.replacingOccurrences(of: #" at [0-9]+s "#, with: " at Ts ", options: .regularExpression) }
        if let diff = ToolGolden.difference(expected: timeless(expected), actual: timeless(dump.stdout)) {
            Issue.record("txlog fixture-log no longer writes the committed log's records; regenerate with TXLOG_UPDATE_TOOL_LOG=1 if intended\n\(diff)")
        }
    }
}
