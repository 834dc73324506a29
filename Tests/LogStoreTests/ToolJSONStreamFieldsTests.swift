// Every JSON output of txlog that names a stream does it the same way (docs/tools/txlog.md, "JSON output"):
// `streamID` (the number) and `streamName` (the name, "" for the default stream). `dump` gave the id as
// `stream`, the `tm` commands gave the name as `stream`, and `stats` gave `id` and `name`: a script had to
// know which command it read.

import Foundation
import Testing
import TxLogTestSupport

@Suite("txlog JSON names streams the same way in every command")
struct ToolJSONStreamFieldsTests {
    /// Runs txlog in `work` and parses stdout: one document, or (`lines`) one object per line.
    static func json(_ arguments: [String], in work: URL, lines: Bool = false) async throws -> Any {
        let run = try await TxlogProcess.run(arguments, scratch: work.path, currentDirectory: work.path, hangAfter: 60)
        try #require(run.status == 0, "txlog \(arguments) exited \(run.status): \(run.stderr)")
        if lines {
            return try run.stdout.split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) }
        }
        return try JSONSerialization.jsonObject(with: Data(run.stdout.utf8))
    }

    /// Every dictionary in `value`, at any depth.
    static func objects(_ value: Any) -> [[String: Any]] {
        if let d = value as? [String: Any] { return [d] + d.values.flatMap(objects) }
        if let a = value as? [Any] { return a.flatMap(objects) }
        return []
    }

    @Test("dump, dump --stats, stats, tm list, tm transactions and tm audit: streamID and streamName, agreeing with streams")
    func streamFields() async throws {
        let work = try await ToolGolden.workingCopy()
        defer { try? FileManager.default.removeItem(at: work) }
        let log = ToolGolden.logName
        let streams = try #require(try await Self.json(["streams", log, "--json"], in: work) as? [[String: Any]])
        var names: [Int: String] = [:]
        for s in streams { names[try #require(s["id"] as? Int)] = try #require(s["name"] as? String) }
        #expect(names.count == 6)

        let outputs: [(String, Any)] = [
            ("dump", try await Self.json(["dump", log, "--json"], in: work, lines: true)),
            ("dump --stats", try await Self.json(["dump", log, "--stats", "--json"], in: work)),
            ("stats", try await Self.json(["stats", log, "--json"], in: work)),
            ("tm list", try await Self.json(["tm", "list", log, "--json"], in: work)),
            ("tm transactions", try await Self.json(["tm", "transactions", log, "--json"], in: work)),
            ("tm audit", try await Self.json(["tm", "audit", log, "--json"], in: work)),
        ]
        for (command, output) in outputs {
            // An object that names a stream: one with a `stream` field, or a row of stats' `streams`.
            var rows = Self.objects(output).filter { $0["stream"] != nil }
            if command == "stats" || command == "dump --stats" { rows += (output as? [String: Any])?["streams"] as? [[String: Any]] ?? [] }
            if command == "dump --stats" { rows += (output as? [String: Any])?["kinds"] as? [[String: Any]] ?? [] }
            #expect(!rows.isEmpty, "\(command) names no stream")
            for row in rows {
                let id = row["streamID"] as? Int
                let name = row["streamName"] as? String
                #expect(id != nil && name != nil, "\(command): \(row.keys.sorted())")
                if let id, let name { #expect(names[id] == name, "\(command): stream \(id) is \(names[id] ?? "?"), not \(name)") }
            }
        }
    }
}
