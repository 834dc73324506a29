import Foundation
import LogStore
import Testing
import TxLogTestSupport

/// docs/tools/txlog.md, "Clear": an error is one line on stderr, `txlog: <code>: <what>`, where `<code>` is
/// the stable `LogError` code, so a script can match it. Usage errors were ArgumentParser's "Error: …",
/// the usage and a hint on three or more lines (with the value as typed, control characters too); the
/// tool's own lines for an unknown `--stream`, a `--count` past the format's limit and damage found by
/// `stats` and `map` had no code; `map --svg` said "The operation could not be completed.
/// (NSCocoaErrorDomain error 512.)".
@Suite("txlog error lines", .serialized)
struct ToolErrorLineTests {
    typealias H = HostileToolLog

    static func expectErrorLine(
        _ e: TxlogProcess.Ended, _ args: [String], status: Int32, code: LogError.Code, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        H.noTrap(e, args, sourceLocation: sourceLocation)
        #expect(e.status == status, "\(args): status \(e.status), \(e.stderr)", sourceLocation: sourceLocation)
        let lines = e.stderr.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 2 && lines[1].isEmpty, "\(args): not one line: \(e.stderr)", sourceLocation: sourceLocation)
        #expect(e.stderr.hasPrefix("txlog: \(code.rawValue): "), "\(args): \(e.stderr)", sourceLocation: sourceLocation)
        #expect(!e.stderr.contains("NSCocoaErrorDomain"), "\(args): \(e.stderr)", sourceLocation: sourceLocation)
        H.expectNoControlCharacters(e.stderr, "\(args)", sourceLocation: sourceLocation)
    }

    @Test("usage errors: one line, txlog: invalid-argument: …, exit 64, the value escaped")
    func usageErrors() async throws {
        let scratch = try H.scratch()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let log = try H.makeLog(in: scratch)
        let cases: [[String]] = [
            ["dump", log, "--xid", "nope"], ["dump", log, "--xid", "a\nforged\u{1B}[2J"], ["dump", log, "--kind", "no\u{1B}[2Jsuch"],
            ["dump", log, "--interval", "0", "--follow"], ["dump", log, "--jsn"], ["dump"], ["map", log, "--width", "7"],
            ["create", scratch + "/new", "--codec", "zlib:10"], ["nosuchcommand"], ["tm", "resolve", log, "nope", "commit"],
            ["dump", log, "--stream", "nosuch"], ["containers", "add", log, "--count", "5000"], ["demo", log],
            ["bench", "kv", "--clients", "0", "--dir", scratch, "--seconds", "0.1"],
        ]
        for args in cases {
            let e = try await H.run(args, scratch)
            Self.expectErrorLine(e, args, status: 64, code: .invalidArgument)
        }
        let hint = try await H.run(["dump", log, "--xid", "nope"], scratch)
        #expect(hint.stderr.hasSuffix("(see txlog dump --help)\n"), "\(hint.stderr)")
        // A usage error found by the command's run(), not the parser: the hint still names the command.
        let late = try await H.run(["bench", "kv", "--clients", "0", "--dir", scratch, "--seconds", "0.1"], scratch)
        #expect(late.stderr.hasSuffix("(see txlog bench kv --help)\n"), "\(late.stderr)")
        // Help is still help: on stdout, exit 0.
        let help = try await H.run(["dump", "--help"], scratch)
        #expect(help.status == 0 && help.stdout.hasPrefix("OVERVIEW:") && help.stderr.isEmpty)
    }

    @Test("damage found by stats and map, and an SVG that cannot be written: txlog: <code>: … in one line")
    func toolErrors() async throws {
        let scratch = try H.scratch()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let log = try H.makeLog(in: scratch)
        let svg = ["map", log, "--svg", scratch]  // a directory
        let e = try await H.run(svg, scratch)
        Self.expectErrorLine(e, svg, status: 4, code: .io)
        #expect(e.stderr.contains("Is a directory") && e.stderr.contains("path \(scratch)"), "\(e.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch).filter { $0.contains(".tmp-") }.isEmpty)

        // A damaged block in the middle of the log.
        let container = log + "/container-000000"
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: container))
        try handle.seek(toOffset: 4096 + 200)
        try handle.write(contentsOf: Data([0xFF, 0xFF, 0xFF, 0xFF]))
        try handle.close()
        for args in [["stats", log], ["map", log]] {
            let r = try await H.run(args, scratch)
            Self.expectErrorLine(r, args, status: 1, code: .corrupt)
        }
    }
}
