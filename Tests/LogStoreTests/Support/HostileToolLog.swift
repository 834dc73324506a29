import Foundation
import LogStore
import Testing
import TxLogTestSupport

/// Shared by ToolExitCodeTests and ToolEscapingTests: a log with streams that are not what a subcommand
/// expects, and one whose name holds control characters.
enum HostileToolLog {
    static func scratch() throws -> String {
        let dir = NSTemporaryDirectory() + "txlog-hostile-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// A stream name that, printed raw, would forge a line and send terminal escape sequences.
    static let evilName = "evil\nforged 1:4096:0\u{1B}[2J\u{1B}]0;title\u{07}\r\u{7F}\u{9B}31m\tx"

    /// A log with streams "orders" (a restart area that is not a TM checkpoint), "plain" (no restart area)
    /// and `evilName`, each with a few records.
    static func makeLog(in scratch: String) throws -> String {
        let dir = scratch + "/log"
        var options = LogCreateOptions()
        options.containerSize = 512 << 10
        options.blockSize = 1024
        let log = try LogStore.create(at: dir, options: options)
        let orders = try log.createStream("orders")
        let plain = try log.createStream("plain")
        let evil = try log.createStream(evilName)
        for i in 0..<5 {
            _ = try orders.append(Array("order \(i)".utf8))
            _ = try plain.append(Array("plain \(i)".utf8))
            _ = try evil.append(Array("evil \(i)".utf8))
        }
        _ = try orders.writeRestartArea(Array("orders checkpoint: not a TM's".utf8))
        _ = try evil.writeRestartArea(Array("evil checkpoint".utf8))
        try log.flush()
        try log.close()
        return dir
    }

    static func run(_ args: [String], _ scratch: String) async throws -> TxlogProcess.Ended {
        try await TxlogProcess.run(args, scratch: scratch, hangAfter: 60)
    }

    static func noTrap(_ e: TxlogProcess.Ended, _ args: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(!e.killed && !e.stderr.contains("Fatal error") && !e.stderr.contains("Backtrace"), "\(args): \(e.stderr.prefix(400))",
                sourceLocation: sourceLocation)
    }

    /// Text output holds no control character but the line ends and the tab separators.
    static func expectNoControlCharacters(_ text: String, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let bad = text.unicodeScalars.filter { ($0.value < 0x20 && $0 != "\n" && $0 != "\t") || (0x7F...0x9F).contains($0.value) }
        #expect(bad.isEmpty, "\(what): raw control characters \(bad.map { String($0.value, radix: 16) })", sourceLocation: sourceLocation)
        #expect(!text.contains("\nforged"), "\(what): a stream name forged a line", sourceLocation: sourceLocation)
    }

}
