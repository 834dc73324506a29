// Keeps ReadmeExampleTests in step with the documents it runs: every code line of README.md's Swift examples
// and of docs/KV.md's first one must be in ReadmeExampleTests.swift, in the documents' order, either as code
// or after a `// README: ` (`// KV.md: `) marker on the line that replaces it. Before, the test was a copy
// kept by hand: the README's examples went on with `log` after `try log.close()` (they would throw
// `closed`) while the copy used the reopened log, and KV.md's last two lines were in no test at all.

import Foundation
import Testing

@Suite struct DocExampleSyncTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    @Test func readmeExamplesAreTheOnesTested() throws {
        let blocks = try Self.swiftBlocks(Self.read("README.md"))
        #expect(blocks.count == 3, "README.md's Swift examples: \(blocks.count)")
        try Self.expectInTest(blocks.flatMap { $0 }, marker: "README: ", document: "README.md")
    }

    @Test func kvGuideExampleIsTheOneTested() throws {
        let first = try #require(try Self.swiftBlocks(Self.read("docs/KV.md")).first)
        try Self.expectInTest(first, marker: "KV.md: ", document: "docs/KV.md")
    }

    /// Every code line of `lines`, in order, is a code line of ReadmeExampleTests.swift or follows `marker` in
    /// its comment, each after the one matched before (an import anywhere).
    static func expectInTest(_ lines: [String], marker: String, document: String) throws {
        let test = try read("Tests/TransactionalKVTests/ReadmeExampleTests.swift").split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let candidates: [Set<String>] = test.map { line in
            let (code, comment) = split(line)
            var matches: Set<String> = [normalized(code)]
            if let r = comment.range(of: marker) { matches.insert(normalized(String(comment[r.upperBound...]))) }
            return matches
        }
        var next = 0
        for line in lines {
            let code = normalized(split(line).code)
            guard !code.isEmpty else { continue }
            // The imports are the file's, at its top, whichever block of the document names them.
            if code.hasPrefix("import ") {
                #expect(candidates.contains { $0.contains(code) }, "\(document): `\(code)` is not in ReadmeExampleTests.swift")
                continue
            }
            guard let at = candidates[next...].firstIndex(where: { $0.contains(code) }) else {
                Issue.record("\(document): `\(code)` is not in ReadmeExampleTests.swift after line \(next) (as code, or after `// \(marker)`)")
                continue
            }
            next = at + 1
        }
    }

    /// The ```swift blocks of a Markdown text, each as its lines.
    static func swiftBlocks(_ text: String) throws -> [[String]] {
        var blocks: [[String]] = []
        var current: [String]?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            if current == nil {
                if line.trimmingCharacters(in: .whitespaces) == "```swift" { current = [] }
            } else if line.trimmingCharacters(in: .whitespaces) == "```" {
                blocks.append(current ?? [])
                current = nil
            } else {
                current?.append(line)
            }
        }
        return blocks
    }

    /// A line's code and its `//` comment (the text after the marker), a `//` inside a string literal being code.
    static func split(_ line: String) -> (code: String, comment: String) {
        var inString = false
        var previous: Character = " "
        var index = line.startIndex
        while index < line.endIndex {
            let c = line[index]
            if c == "\"" && previous != "\\" { inString.toggle() }
            if !inString, c == "/", previous == "/" {
                let start = line.index(before: index)
                return (String(line[..<start]), String(line[line.index(after: index)...]))
            }
            previous = c
            index = line.index(after: index)
        }
        return (line, "")
    }

    /// Runs of blanks made one space, ends trimmed: the documents align their comments.
    static func normalized(_ code: String) -> String {
        code.split(whereSeparator: { $0 == " " || $0 == "\t" }).joined(separator: " ")
    }

    static func read(_ relative: String) throws -> String {
        try String(contentsOfFile: root + "/" + relative, encoding: .utf8)
    }
}
