// `make docs-check`: every public symbol of the given modules has a `///` doc comment. Reads the symbol
// graphs of `swift package dump-symbol-graph` (in GRAPHS) and prints one line per public symbol of a
// module's own sources that has none, then fails. A symbol that implements a documented protocol
// requirement (`description` of CustomStringConvertible, a FileIO method) has DocC inherit that
// documentation (the graph gives it a `sourceOrigin`) and is not listed.
//
// Usage: swift tools/doc-coverage.swift GRAPHS MODULE...

import Foundation

let arguments = CommandLine.arguments.dropFirst()
guard let graphs = arguments.first, arguments.count >= 2 else {
    FileHandle.standardError.write(Data("usage: swift tools/doc-coverage.swift GRAPHS MODULE...\n".utf8))
    exit(64)
}
var missing: [String] = []
for module in arguments.dropFirst() {
    let files = ((try? FileManager.default.contentsOfDirectory(atPath: graphs)) ?? [])
        .filter { $0 == "\(module).symbols.json" || $0.hasPrefix("\(module)@") && $0.hasSuffix(".symbols.json") }
    guard !files.isEmpty else {
        FileHandle.standardError.write(Data("doc-coverage: no symbol graph of \(module) in \(graphs)\n".utf8))
        exit(2)
    }
    for file in files {
        guard let data = FileManager.default.contents(atPath: graphs + "/" + file),
            let graph = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let symbols = graph["symbols"] as? [[String: Any]]
        else {
            FileHandle.standardError.write(Data("doc-coverage: cannot read \(graphs)/\(file)\n".utf8))
            exit(2)
        }
        for symbol in symbols {
            guard let access = symbol["accessLevel"] as? String, access == "public" || access == "open" else { continue }
            guard symbol["docComment"] == nil, symbol["sourceOrigin"] == nil else { continue }
            let location = symbol["location"] as? [String: Any]
            let uri = (location?["uri"] as? String ?? "").replacingOccurrences(of: "file://", with: "")
            guard uri.contains("/Sources/\(module)/") else { continue }  // an extension of another module's type
            let line = ((location?["position"] as? [String: Any])?["line"] as? Int).map { $0 + 1 } ?? 0
            let path = (symbol["pathComponents"] as? [String] ?? []).joined(separator: ".")
            let relative = uri.range(of: "/Sources/").map { "Sources/" + uri[$0.upperBound...] } ?? uri
            missing.append("\(relative):\(line): \(path) has no /// doc comment")
        }
    }
}
for line in Set(missing).sorted() { print(line) }
if !missing.isEmpty {
    print("doc-coverage: \(Set(missing).count) public symbol(s) without a doc comment")
    exit(1)
}
print("doc-coverage: every public symbol of \(arguments.dropFirst().joined(separator: ", ")) has a doc comment")
