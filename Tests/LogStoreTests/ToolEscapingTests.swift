import Foundation
import LogStore
import Testing
import TxLogTestSupport

/// Strings read from disk (stream names, file names in the log directory) may hold any character: txlog's
/// text output escapes control characters so they cannot forge lines or reach the terminal, and its JSON
/// escapes them as JSON requires.
@Suite("txlog escaping", .serialized)
struct ToolEscapingTests {
    typealias H = HostileToolLog

    /// Stream names may hold any character but NUL: printed raw, a name with a newline forged output lines
    /// and one with ESC sent escape sequences to the DBA's terminal.
    @Test("text output escapes control characters in stream names; JSON escapes them as JSON requires")
    func controlCharactersInNames() async throws {
        let scratch = try H.scratch()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let log = try H.makeLog(in: scratch)
        for args in [["streams", log], ["stats", log], ["map", log], ["dump", log, "--stream", "3"]] {
            let e = try await H.run(args, scratch)
            H.noTrap(e, args)
            #expect(e.status == 0, "\(args): \(e.status) \(e.stderr)")
            H.expectNoControlCharacters(e.stdout, "\(args)")
        }
        // The SVG too: XML 1.0 cannot hold these characters at all, not even as character references.
        let svg = scratch + "/map.svg"
        #expect(try await H.run(["map", log, "--svg", svg], scratch).status == 0)
        H.expectNoControlCharacters(try String(contentsOfFile: svg, encoding: .utf8), "map --svg")
        let streams = try await H.run(["streams", log], scratch)
        #expect(streams.stdout.contains("evil\\nforged 1:4096:0\\u{1B}[2J"), "\(streams.stdout)")

        // JSON: every control character escaped (RFC 8259), and the name round-trips exactly.
        for args in [["streams", log, "--json"], ["info", log, "--json"], ["stats", log, "--json"], ["dump", log, "--json", "--stream", "3"]] {
            let e = try await H.run(args, scratch)
            #expect(e.status == 0, "\(args): \(e.status) \(e.stderr)")
            let raw = e.stdout.unicodeScalars.filter { $0.value < 0x20 && $0 != "\n" && $0 != " " }
            #expect(raw.isEmpty, "\(args): unescaped control characters in JSON \(raw.map { String($0.value, radix: 16) })")
            for line in args.contains("dump") ? e.stdout.split(separator: "\n").map(String.init) : [e.stdout] {
                #expect((try? JSONSerialization.jsonObject(with: Data(line.utf8))) != nil, "\(args): not JSON: \(line.prefix(200))")
            }
            #expect(e.stdout.contains("\\u001b[2J") || e.stdout.contains("\\u001B[2J"), "\(args)")
        }
        let names = (try JSONSerialization.jsonObject(with: Data(try await H.run(["streams", log, "--json"], scratch).stdout.utf8)) as? [[String: Any]])?
            .compactMap { $0["name"] as? String } ?? []
        #expect(names.contains(H.evilName))

        // An unknown stream asked for on the command line is echoed escaped too, in one line.
        let unknown = try await H.run(["dump", log, "--stream", "no\nsuch\u{1B}[2J"], scratch)
        #expect(unknown.status == 64 && unknown.stderr.split(separator: "\n").count == 1, "\(unknown.stderr)")
        H.expectNoControlCharacters(unknown.stderr, "dump --stream error")
    }

    /// A file in the log directory whose name holds a newline and ESC: verify listed it raw as a note.
    @Test("verify: stray file names are escaped in text output")
    func strayFileNames() async throws {
        let scratch = try H.scratch()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let log = try H.makeLog(in: scratch)
        #expect(FileManager.default.createFile(atPath: log + "/x\nok: the log is clean\u{1B}[2J", contents: Data("junk".utf8)))
        let e = try await H.run(["verify", log], scratch)
        #expect(e.status == 0, "\(e.stderr)")
        H.expectNoControlCharacters(e.stdout, "verify")
        #expect(e.stdout.split(separator: "\n").filter { $0.hasPrefix("ok: the log is clean") }.count == 1, "\(e.stdout)")
        let j = try await H.run(["verify", log, "--json"], scratch)
        let notes = (try? JSONSerialization.jsonObject(with: Data(j.stdout.utf8)) as? [String: Any])?["notes"] as? [String]
        #expect(notes?.contains { $0.contains("x\nok: the log is clean\u{1B}[2J") } == true, "\(j.stdout)")
    }

    /// What the caller typed came back raw: `create` and `tm list` echoed the log's path and `tm resolve`
    /// the actor (`--actor`, or $USER), so a newline in them forged an output line and an ESC reached
    /// the terminal, where `info` and `map` print the path escaped.
    @Test("create, tm list and tm resolve: the caller's path and actor are escaped in text output")
    func callerStrings() async throws {
        let scratch = try H.scratch()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let evilPath = scratch + "/lo\nforged 1:4096:0\u{1B}[2Jg"
        let created = try await H.run(["create", evilPath, "--container-size", "512K"], scratch)
        #expect(created.status == 0, "\(created.stderr)")
        H.expectNoControlCharacters(created.stdout, "create")
        let listed = try await H.run(["tm", "list", evilPath], scratch)
        #expect(listed.status == 0 && listed.stdout.hasPrefix("no transaction managers in"), "\(listed.stdout)")
        H.expectNoControlCharacters(listed.stdout, "tm list")

        // The golden-output fixture log has a transaction in doubt: resolve it on a copy.
        let work = try await ToolGolden.workingCopy()
        defer { try? FileManager.default.removeItem(at: work) }
        let log = work.appendingPathComponent(ToolGolden.logName).path
        let resolved = try await H.run(["tm", "resolve", log, "7e000000-0000-4000-8000-0000000000f4", "commit", "--actor", H.evilName], scratch)
        #expect(resolved.status == 0 && resolved.stdout.hasPrefix("resolved "), "\(resolved.stdout) \(resolved.stderr)")
        H.expectNoControlCharacters(resolved.stdout, "tm resolve")
        let json = try await H.run(["tm", "resolve", log, "7e000000-0000-4000-8000-0000000000f4", "commit", "--actor", H.evilName, "--json"], scratch)
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        #expect(object?["actor"] as? String == H.evilName, "JSON keeps the exact actor: \(json.stdout)")
    }
}
