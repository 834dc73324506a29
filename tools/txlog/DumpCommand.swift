import ArgumentParser
import Foundation
import LogStore

struct DumpCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dump", abstract: "Print records (read-only).",
        discussion: "Example: txlog dump LOG --from 1:4096:0 --limit 20 --hex")

    @Argument(help: "The log directory.") var path: String
    @Option(help: "First LSN (default: the base of the log).") var from: LSN?
    @Option(help: "Stop after this LSN.") var to: LSN?
    @Option(help: "At most this many records.") var limit: Int?
    @Flag(help: "Show record data in hexadecimal.") var hex = false
    @Flag(help: "Print one JSON object per line.") var json = false

    func run() throws {
        let log = try openForReading(path)
        do {
            var cursor = try log.records(from: from ?? .null)
            var n = 0
            while let r = try cursor.next() {
                if let to, r.lsn > to { break }
                if let limit, n >= limit { break }
                n += 1
                let preview = hex ? r.data.prefix(64).map { String(format: "%02x", $0) }.joined() : printable(r.data.prefix(64))
                if json {
                    let object: [String: Any] = [
                        "lsn": r.lsn.description, "type": "\(r.type)", "stream": r.stream, "previous": r.previous.description,
                        "undoNext": r.undoNext.description, "length": r.data.count,
                        "data": r.data.map { String(format: "%02x", $0) }.joined(),
                    ]
                    if let d = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) {
                        FileHandle.standardOutput.write(d + Data("\n".utf8))
                    }
                } else {
                    print("\(r.lsn)\t\(r.type)\tstream \(r.stream)\tprev \(r.previous)\tundo \(r.undoNext)\t\(r.data.count) B\t\(preview)")
                }
            }
        } catch {
            throw fail(error)
        }
    }

    private func printable<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        String(bytes.map { (0x20..<0x7f).contains($0) ? Character(UnicodeScalar($0)) : "." })
    }
}
