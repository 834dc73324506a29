import ArgumentParser
import Foundation
import LogStore

/// Exit codes shared by all subcommands: a stable table (docs/tools/txlog.md, "Exit codes"; the root
/// command's help). 1 is only ever damage or a failed check, so a script can tell damage from an error.
enum ToolExit {
    static let corruption = ExitCode(1)
    /// Any failure to open the log other than damage; the message's `LogError` code says which.
    static let cannotOpen = ExitCode(2)
    /// After the log opened: a stream, transaction manager, transaction or container asked for is not there.
    static let notFound = ExitCode(3)
    /// After the log opened: a system call failed (`io`), or the log is in its failed state (`failed`).
    static let io = ExitCode(4)
    static let logFull = ExitCode(5)
    /// The log or file is read-only, or another process holds it for writing (`read-only`, `locked`).
    static let readOnly = ExitCode(6)
    /// Something was written by a format version this tool does not know (`unsupported-version`).
    static let unsupportedVersion = ExitCode(7)
    /// Any other error: the log refused the request in its state (`invalid-state`, `already-exists`, ...), or an
    /// error that is not a `LogError`.
    static let otherError = ExitCode(8)
    static let usage = ExitCode(64)

    /// The exit code for an error with `code`: damage is 1 and a bad argument 64 whenever they happen; any
    /// other failure while opening is 2, as it always was, and after opening gets its own code.
    static func forCode(_ code: LogError.Code, opening: Bool) -> ExitCode {
        switch code {
        case .corrupt: return corruption
        case .invalidArgument: return usage
        case _ where opening: return cannotOpen
        case .notFound: return notFound
        case .io, .failed: return io
        case .logFull: return logFull
        case .readOnly, .locked: return readOnly
        case .unsupportedVersion: return unsupportedVersion
        case .closed, .notOnline, .invalidState, .alreadyExists, .aborted, .terminated, .conflict: return otherError
        }
    }
}

/// Prints a one-line error and exits with the matching code (``ToolExit/forCode(_:opening:)``); never a
/// stack trace.
func fail(_ error: any Error, opening: Bool = false) -> ExitCode {
    if let e = error as? LogError {
        FileHandle.standardError.write(Data("txlog: \(escaped(e.description))\n".utf8))
        return ToolExit.forCode(e.code, opening: opening)
    }
    FileHandle.standardError.write(Data("txlog: \(escaped("\(error)"))\n".utf8))
    return opening ? ToolExit.cannotOpen : ToolExit.otherError
}

/// Writes `text` to `path` whole or not at all (a temporary file beside it, renamed over it). A failure is
/// an `io` error naming the path with the system's reason: Foundation's `write(toFile:atomically:)` said
/// only "The operation could not be completed. (NSCocoaErrorDomain error 512.)" on Linux.
func writeWhole(_ text: String, to path: String) throws {
    let temporary = path + ".tmp-\(getpid())"
    func failure(_ call: String) -> LogError {
        let e = errno
        unlink(temporary)
        return LogError(.io, "cannot write \(path): \(call) failed: \(String(cString: strerror(e)))", path: path, errno: e)
    }
    let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw failure("open") }
    let bytes = Array(text.utf8)
    var done = 0
    while done < bytes.count {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, bytes.count - done) }
        if n < 0, errno == EINTR { continue }
        guard n > 0 else {
            let e = failure("write")
            close(fd)
            throw e
        }
        done += n
    }
    guard close(fd) == 0 else { throw failure("close") }
    guard rename(temporary, path) == 0 else { throw failure("rename") }
}

/// Opens a log read-only for inspection, turning failures into a clear message and exit code 2.
func openForReading(_ path: String, mode: RecoveryMode = .tolerateTornTail) throws -> LogStore {
    do {
        var options = LogOpenOptions(readOnly: true, recovery: mode)
        options.readCacheBytes = 32 << 20
        return try LogStore.open(at: path, options: options)
    } catch {
        throw fail(error, opening: true)
    }
}

/// Opens a log for a command that changes it; a failure to open (locked, not a log, missing container,
/// I/O) is a clear message and exit code 2, as for the read commands.
func openForWriting(_ path: String) throws -> LogStore {
    do { return try LogStore.open(at: path) } catch { throw fail(error, opening: true) }
}

/// Writes a JSON value (built from dictionaries, arrays, strings and numbers) with sorted keys and unescaped
/// slashes (paths read as written: `"tool-log/container-000000"`, not `"tool-log\/container-000000"`).
/// A number that is not finite is written as null: JSONSerialization refuses NaN and infinity, and the
/// whole document was left out then (nothing on stdout, exit 0), e.g. a bench's speed-up over a run that
/// measured no commit.
func printJSON(_ value: Any) {
    do {
        let data = try JSONSerialization.data(withJSONObject: finiteJSON(value), options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        FileHandle.standardOutput.write(data)
        FileHandle.standardOutput.write(Data("\n".utf8))
    } catch {
        FileHandle.standardError.write(Data("txlog: cannot write the JSON output: \(escaped("\(error)"))\n".utf8))
    }
}

/// `value` with every non-finite Double (in dictionaries and arrays, at any depth) replaced by null.
func finiteJSON(_ value: Any) -> Any {
    switch value {
    case let number as Double: return number.isFinite ? number : NSNull()
    case let object as [String: Any]: return object.mapValues(finiteJSON)
    case let array as [Any]: return array.map(finiteJSON)
    default: return value
    }
}

extension Codec: ExpressibleByArgument {
    public init?(argument: String) { self.init(parsing: argument) }
}

extension LSN: ExpressibleByArgument {
    public init?(argument: String) { self.init(argument) }
}

/// Byte counts like 512K, 64M, 1G or plain numbers.
struct ByteCount: ExpressibleByArgument {
    var value: UInt64

    /// How `--help` shows a default: `64M`, not the struct's debug form.
    var defaultValueDescription: String {
        for (unit, shift) in [("G", 30), ("M", 20), ("K", 10)] where value >= 1 << shift && value % (1 << shift) == 0 {
            return "\(value >> shift)\(unit)"
        }
        return "\(value)"
    }
    init?(argument: String) {
        let units: [Character: UInt64] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30]
        var text = argument.uppercased()
        if text.hasSuffix("IB") { text.removeLast(2) } else if text.hasSuffix("B") { text.removeLast() }
        if let last = text.last, let unit = units[last] {
            // A count too large for 64 bits is not a size (it would trap): a usage error.
            guard let n = UInt64(text.dropLast()), case let (v, overflow) = n.multipliedReportingOverflow(by: unit), !overflow else { return nil }
            value = v
        } else {
            guard let n = UInt64(text) else { return nil }
            value = n
        }
    }
}

func formatBytes(_ n: UInt64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var v = Double(n)
    var i = 0
    while v >= 1024, i < units.count - 1 {
        v /= 1024
        i += 1
    }
    return i == 0 ? "\(n) B" : String(format: "%.1f %@", v, units[i])
}

/// The text of an acknowledgements file (`--acks` of the `check` commands). A file that cannot be read
/// is exit 2 with its name: reading it as empty would let a check pass without looking at anything.
func readAcknowledgements(_ path: String) throws -> String {
    do { return try String(contentsOfFile: path, encoding: .utf8) } catch {
        throw fail(LogError(.notFound, "cannot read the acknowledgements file \(path): \(error.localizedDescription)"), opening: true)
    }
}

/// Refuses a workload directory (`workload run`, `workload churn`) that is itself a log: the workload's log
/// goes in `DIR/log` and its stores in `DIR/data`, which were created inside the log's directory, beside its
/// containers (stray files to `verify`), when an operator gave a log's path. A usage error, nothing created.
func refuseLogAsWorkloadDirectory(_ dir: String) throws {
    guard FileManager.default.fileExists(atPath: dir + "/txlog.base") else { return }
    FileHandle.standardError.write(Data(
        "txlog: invalid-argument: \(escaped(dir)) is a log, not a workload directory (the workload's log goes in DIR/log): give another directory\n".utf8))
    throw ToolExit.usage
}

/// The acknowledgements of a `workload` check: the complete lines of `path` (a line cut short by the kill
/// is not an acknowledgement: only newline-terminated lines count). A workload directory `dir` that does
/// not exist is exit 2 (`notFound`).
func readWorkloadAcknowledgements(_ path: String, workload dir: String) throws -> [String] {
    let text = try readAcknowledgements(path)
    let lines = text.split(separator: "\n", omittingEmptySubsequences: true)
    let complete = text.hasSuffix("\n") ? lines.map(String.init) : lines.dropLast().map(String.init)
    guard FileManager.default.fileExists(atPath: dir) else {
        throw fail(LogError(.notFound, "no workload directory \(dir)"), opening: true)
    }
    return complete
}
