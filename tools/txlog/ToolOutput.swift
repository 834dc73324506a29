import Foundation
import LogStore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A progress bar on stderr, drawn only when stderr is a terminal and the work is large (more than
/// `threshold` bytes), so piped or redirected runs print nothing extra. `TXLOG_NO_PROGRESS=1` turns it off.
final class ProgressBar {
    static let threshold: UInt64 = 4 << 20
    private let enabled: Bool
    private let label: String
    private var shown = -1
    private var drew = false

    init(_ label: String, workBytes: UInt64) {
        self.label = label
        enabled = isatty(2) != 0 && workBytes > ProgressBar.threshold && ProcessInfo.processInfo.environment["TXLOG_NO_PROGRESS"] == nil
    }

    func update(_ fraction: Double) {
        guard enabled else { return }
        let percent = Int((min(1, max(0, fraction)) * 100).rounded(.down))
        guard percent != shown else { return }
        shown = percent
        drew = true
        let width = 30
        let filled = percent * width / 100
        let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
        FileHandle.standardError.write(Data("\r\u{1B}[K\(label) \(bar) \(percent)%".utf8))
    }

    /// Erases the bar.
    func finish() {
        guard drew else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
        drew = false
    }
}

/// Bytes of container data a full scan reads (for deciding whether a progress bar is worth it).
func scanWork(_ info: LogInfo) -> UInt64 {
    UInt64(info.containers.filter { $0.state != .inactive }.count) * info.containerSize
}

/// JSON for one problem: kind, message, lsn, container, offset, path (null when not known).
func problemJSON(_ p: ScanProblem) -> [String: Any] {
    [
        "kind": p.kind.rawValue, "message": p.message, "lsn": p.lsn.map { $0.description as Any } ?? NSNull(),
        "container": p.container.map { $0 as Any } ?? NSNull(), "offset": p.offset.map { $0 as Any } ?? NSNull(),
        "path": p.path.map { $0 as Any } ?? NSNull(),
    ]
}

/// The damage a block walk found, in words for `stats` and `map`: damaged blocks (`what` is what became of
/// them), then the problems of the base file (a damaged slot, a wrong size) and of container headers, which
/// are no block. A damaged slot of a
/// log that opens on the other one was reported as "1 damaged block(s) skipped" (and `damagedBlocks: 1`),
/// sending the reader after a block that was not there.
func damageSummary(_ problems: [ScanProblem], blocks what: String) -> String {
    let blocks = problems.filter { $0.kind == .block }.count
    let base = problems.filter { $0.kind == .base }.count
    let headers = problems.count - blocks - base
    var parts: [String] = []
    if blocks > 0 { parts.append("\(blocks) damaged block(s), \(what)") }
    if base > 0 { parts.append("\(base) problem(s) in the base file") }
    if headers > 0 { parts.append("\(headers) damaged container header(s)") }
    return parts.joined(separator: "; ")
}

/// A problem from an error that stopped the log from opening.
func problem(from e: LogError) -> ScanProblem {
    let kind: ScanProblem.Kind
    if e.lsn != nil { kind = .block } else if e.container != nil { kind = .container } else { kind = .base }
    return ScanProblem(kind: kind, message: e.message, lsn: e.lsn, container: e.container, offset: e.offset, path: e.path)
}

/// The fields with which every JSON output names a stream (docs/tools/txlog.md, "JSON output"): `streamID`,
/// its number (null when the log has no stream of that name), and `streamName`, its name ("" for the
/// default stream). Older fields (`stream`: the id in `dump`, the name in the `tm` commands) stay as they were.
func streamFields(id: UInt16?, name: String) -> [String: Any] {
    ["streamID": id.map { Int($0) as Any } ?? NSNull(), "streamName": name]
}

/// ``streamFields(id:name:)`` for a stream known by name; `ids` maps names to ids (``streamIDs(_:)``).
func streamFields(name: String, ids: [String: UInt16]) -> [String: Any] { streamFields(id: ids[name], name: name) }

/// Each stream's id by name.
func streamIDs(_ log: LogStore) -> [String: UInt16] {
    Dictionary(log.streams().map { ($0.name, $0.id) }, uniquingKeysWith: { a, _ in a })
}

/// Rounds for JSON, so ratios read 2.5123 rather than 2.512345678901.
func rounded(_ x: Double, _ places: Double = 4) -> Double {
    let f = pow(10, places)
    return (x * f).rounded() / f
}

/// True when stdout is a terminal. Read commands print timings only then, so their piped or redirected
/// output depends on the log alone (the golden-output tests compare it byte for byte).
var stdoutIsTerminal: Bool { isatty(1) != 0 }

/// True when stdout is a terminal and colour is not turned off (`NO_COLOR`).
var useColour: Bool { stdoutIsTerminal && ProcessInfo.processInfo.environment["NO_COLOR"] == nil }

/// The name to show for a stream: "(default)" for stream 0's empty name; escaped for text output.
func streamLabel(_ id: UInt16, _ names: [UInt16: String]) -> String {
    let n = names[id] ?? "?"
    return n.isEmpty ? "(default)" : escaped(n)
}

/// `s` for text output, when it comes from disk or from a caller (a stream name, a description, a file name
/// in the log directory, an error message): control characters, line and paragraph separators and
/// bidirectional-text controls become escapes (`\n`, `\t`, `\u{1B}`) and a backslash is doubled. A stream
/// name may hold any character but NUL; printed raw, a newline in it forged output lines (and a tab
/// columns), and an ESC reached the DBA's terminal as an escape sequence. JSON output needs none of this:
/// `JSONSerialization` escapes U+0000–U+001F as JSON requires.
func escaped(_ s: String) -> String {
    guard s.unicodeScalars.contains(where: needsEscape) else { return s }
    var out = ""
    for u in s.unicodeScalars {
        switch u {
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case _ where needsEscape(u): out += "\\u{" + String(u.value, radix: 16, uppercase: true) + "}"
        default: out.unicodeScalars.append(u)
        }
    }
    return out
}

private func needsEscape(_ u: Unicode.Scalar) -> Bool {
    switch u.properties.generalCategory {
    case .control, .lineSeparator, .paragraphSeparator: return true
    default:
        // U+061C, U+200E/F, U+202A–E, U+2066–9: bidirectional controls reorder what the terminal shows.
        return u == "\\" || u.value == 0x061C || (0x200E...0x200F).contains(u.value) || (0x202A...0x202E).contains(u.value)
            || (0x2066...0x2069).contains(u.value)
    }
}

/// Pads `s` with spaces to `width` characters (on the left with `right`).
func pad(_ s: String, _ width: Int, right: Bool = false) -> String {
    let fill = String(repeating: " ", count: max(0, width - s.count))
    return right ? fill + s : s + fill
}
