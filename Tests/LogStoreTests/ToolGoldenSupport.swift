// Support for ToolGoldenOutputTests: where the fixture log and the golden outputs live, regenerating them,
// running txlog on a private copy of the log, normalizing the few inherently variable fields, and a short
// diff for failures.

import Foundation
import Testing
import TxLogTestSupport

enum ToolGolden {
    /// Tests/LogStoreTests/Fixtures (read from the source tree: the target excludes it from its bundle).
    static let fixtures = GoldenFixtures()
    /// The committed log: `txlog fixture-log` wrote it (tools/txlog/FixtureLogCommand.swift).
    static var logDirectory: URL { fixtures.sourceDirectory.appendingPathComponent("tool-log") }
    /// The expected outputs, one file per case.
    static var outputDirectory: URL { fixtures.sourceDirectory.appendingPathComponent("tool-output") }
    /// The name the log's copy has in each case's working directory, so outputs show this relative path.
    static let logName = "tool-log"

    /// TXLOG_UPDATE_TOOL_LOG=1: write a new fixture log with `txlog fixture-log`, then the golden outputs.
    static let regeneratingLog = ProcessInfo.processInfo.environment["TXLOG_UPDATE_TOOL_LOG"] == "1"
    /// TXLOG_UPDATE_FIXTURES=1 (or regenerating the log): rewrite the golden outputs from the committed log.
    static var updating: Bool { GoldenFixtures.updating || regeneratingLog }

    /// The fixture log, regenerated first (once per test process) when TXLOG_UPDATE_TOOL_LOG=1.
    static func fixtureLog() async throws -> URL {
        try await LogRegeneration.shared.once()
        return logDirectory
    }

    /// Every file of a directory by name, for checking that a read command wrote nothing.
    static func contents(_ dir: URL) throws -> [String: Data] {
        var out: [String: Data] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: dir.path) {
            out[name] = try Data(contentsOf: dir.appendingPathComponent(name))
        }
        return out
    }

    /// A fresh working directory holding a copy of the fixture log as `logName`.
    static func workingCopy() async throws -> URL {
        let source = try await fixtureLog()
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("txlog-golden-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: source, to: work.appendingPathComponent(logName))
        return work
    }

    /// The one field of a read command's output that depends on the run rather than the log: the replay
    /// time in `tm transactions --json` (`recovery.durationNanos`). Its value becomes 0. (The text form
    /// prints that time only on a terminal; everything else is a function of the log's bytes, and paths
    /// are relative because txlog runs in the working directory.)
    static func normalize(_ output: String) -> String {
        output.replacingOccurrences(of: #""durationNanos" : [0-9]+"#, with: #""durationNanos" : 0"#, options: .regularExpression)
    }

    /// The first line where `actual` differs from `expected`, with a little context, or nil when equal.
    static func difference(expected: String, actual: String) -> String? {
        guard expected != actual else { return nil }
        let e: [String] = expected.components(separatedBy: "\n")
        let a: [String] = actual.components(separatedBy: "\n")
        var i = 0
        while i < e.count, i < a.count, e[i] == a[i] { i += 1 }
        var out = "first difference at line \(i + 1) (expected \(e.count) lines, got \(a.count)):\n"
        for j in max(0, i - 2)..<i { out += "  " + e[j] + "\n" }
        let want: String = i < e.count ? e[i] : "(end of file)"
        let got: String = i < a.count ? a[i] : "(end of file)"
        out += "- " + want + "\n+ " + got + "\n"
        return out
    }

    /// Compares `actual` with the golden file `name` (or writes it in update mode).
    static func expectGolden(_ name: String, _ actual: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let url = outputDirectory.appendingPathComponent(name)
        if updating {
            try FileManager.default.createDirectory(at: outputDirectory, withIntermediateDirectories: true)
            try Data(actual.utf8).write(to: url)
            print("note: wrote Fixtures/tool-output/\(name) (\(actual.utf8.count) bytes)")
            return
        }
        let data = try #require(
            try? Data(contentsOf: url), "Fixtures/tool-output/\(name) is missing; run with TXLOG_UPDATE_FIXTURES=1", sourceLocation: sourceLocation)
        let expected = String(decoding: data, as: UTF8.self)
        if let diff = difference(expected: expected, actual: actual) {
            Issue.record("Fixtures/tool-output/\(name) does not match; if the change is intended, rerun with TXLOG_UPDATE_FIXTURES=1 and review the diff\n\(diff)",
                         sourceLocation: sourceLocation)
        }
    }
}

/// Regenerates the fixture log at most once per process (TXLOG_UPDATE_TOOL_LOG=1); every case waits for it.
actor LogRegeneration {
    static let shared = LogRegeneration()
    private var task: Task<Void, any Error>?

    func once() async throws {
        guard ToolGolden.regeneratingLog else { return }
        let t = task ?? Task { try await Self.regenerate() }
        task = t
        try await t.value
    }

    private static func regenerate() async throws {
        let target = ToolGolden.logDirectory
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("txlog-golden-gen-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let fresh = scratch.appendingPathComponent(ToolGolden.logName)
        let run = try await TxlogProcess.run(["fixture-log", fresh.path], scratch: scratch.path)
        try #require(run.status == 0, "txlog fixture-log failed: \(run.stderr)")
        try? FileManager.default.removeItem(at: target)
        try FileManager.default.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: fresh, to: target)
        print("note: wrote a new fixture log at \(target.path)")
    }
}
