import Foundation
import Testing
import TxLogTestSupport

/// Every subcommand's `--help` reads as paragraphs at any terminal width. ArgumentParser keeps the line
/// breaks of a `discussion` (or `abstract`) and wraps each line again to the terminal's width, so text with
/// hard breaks at ~105 columns rendered at 80 as alternating long and one-to-three-word lines.
@Suite("txlog --help layout", .serialized)
struct ToolHelpTests {
    /// `txlog ARGS` with `COLUMNS=columns` (ArgumentParser wraps help to it): exit status and stdout.
    static func run(_ args: [String], columns: Int) throws -> (status: Int32, out: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try TxlogProcess.binary())
        p.arguments = args
        var env = ProcessInfo.processInfo.environment
        env["COLUMNS"] = "\(columns)"
        p.environment = env
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// Every command path (`[]` for txlog itself, `["tm", "resolve"]`, …), hidden ones included, from the
    /// parser's own description of the command tree.
    static func commandPaths() throws -> [[String]] {
        let dump = try run(["--experimental-dump-help"], columns: 80)
        guard let root = try JSONSerialization.jsonObject(with: Data(dump.out.utf8)) as? [String: Any],
            let command = root["command"] as? [String: Any]
        else { throw TxlogProcess.Failure.notFound("--experimental-dump-help gave no command tree") }
        var paths: [[String]] = []
        func walk(_ command: [String: Any], _ path: [String]) {
            paths.append(path)
            for sub in command["subcommands"] as? [[String: Any]] ?? [] {
                guard let name = sub["commandName"] as? String, name != "help" else { continue }
                walk(sub, path + [name])
            }
        }
        walk(command, [])
        return paths
    }

    /// The layout problems of the overview (the text above `USAGE:`: abstract and discussion) as rendered
    /// at `columns`. A line is *indented* when it starts with a space (an example, a list entry, a table
    /// row); the others are paragraph lines, which the parser wraps. Three rules:
    /// - R1, a hard break inside a paragraph: a paragraph line followed by another paragraph line whose first
    ///   word would have fit after it (length + space + word + space ≤ columns), so the parser did not put
    ///   the break there.
    /// - R2, a cut indented line: an indented line followed by a paragraph line (the parser wraps an
    ///   indented line that is too long to column 0).
    /// - R3, an example inside a paragraph (`Example: txlog …`), which the parser cuts anywhere: examples go
    ///   on indented lines of their own.
    /// Option help (below `USAGE:`) is the parser's own layout and is not checked.
    static func layoutProblems(_ help: String, columns: Int) -> [String] {
        let lines = help.components(separatedBy: "\n")
        let overview = lines.prefix { !$0.hasPrefix("USAGE:") }
        var problems: [String] = []
        for (a, b) in zip(overview, overview.dropFirst()) where !a.isEmpty && !b.isEmpty {
            let (aIndented, bIndented) = (a.hasPrefix(" "), b.hasPrefix(" "))
            let word = b.split(separator: " ").first.map(String.init) ?? ""
            if !aIndented, !bIndented, a.count + 1 + word.count + 1 <= columns { problems.append("R1 hard break: \"\(a)\" / \"\(b)\"") }
            if aIndented, !bIndented { problems.append("R2 cut indented line: \"\(a)\" / \"\(b)\"") }
        }
        for line in overview where !line.hasPrefix(" ") && line.contains("Example: txlog") { problems.append("R3 example in a paragraph: \"\(line)\"") }
        return problems
    }

    @Test("the rules catch a hard break, a cut example line and an example in a paragraph, and pass clean text")
    func rules() {
        let ragged = "OVERVIEW: x\n\nPrints records in LSN order from the base of the log (or --from) to the end (or\n--to): one line each with\nLSN, type\n\nUSAGE: x\n"
        #expect(Self.layoutProblems(ragged, columns: 80).map { $0.prefix(2) } == ["R1"])
        let cutExample = "OVERVIEW: x\n\nExamples:\n  txlog a very long example that the parser cut at\nany moment\n\nUSAGE: x"
        #expect(Self.layoutProblems(cutExample, columns: 80).map { $0.prefix(2) } == ["R2"])
        let inParagraph = "OVERVIEW: Add containers (changes the log). Example: txlog containers add LOG\n--count 2\n\nUSAGE: x"
        #expect(Self.layoutProblems(inParagraph, columns: 80).map { $0.prefix(2) } == ["R3"])
        let clean = "OVERVIEW: Check the base file, every container header and every block\n(read-only).\n\nExamples:\n  txlog verify LOG\n\nUSAGE: x"
        #expect(Self.layoutProblems(clean, columns: 80).isEmpty)
    }

    /// Before, `dump`, `verify`, `stats`, `map`, `tm`, `tm transactions`, `tm audit`, `tm resolve`, `stress`,
    /// `stress-restart`, `bench` and `bench compress` had hard breaks in their paragraphs; `create`,
    /// `containers add`, `policy set` and `workload` cut their example commands.
    @Test("every subcommand's --help overview is whole paragraphs and uncut example lines, at 80 and 132 columns")
    func helpIsParagraphs() async throws {
        let found = try await onOwnThread { () throws -> [String] in
            let paths = try Self.commandPaths()
            var found: [String] = []
            if paths.count < 30 { found.append("only \(paths.count) commands found: \(paths)") }
            for columns in [80, 132] {
                for path in paths {
                    let r = try Self.run(path + ["--help"], columns: columns)
                    let name = (["txlog"] + path).joined(separator: " ")
                    if r.status != 0 || !r.out.contains("USAGE:") { found.append("\(name) --help: status \(r.status)") }
                    found += Self.layoutProblems(r.out, columns: columns).map { "\(name) --help at \(columns) columns: \($0)" }
                }
            }
            return found
        }
        #expect(found.isEmpty, "\(found.joined(separator: "\n"))")
    }
}
