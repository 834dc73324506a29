import ArgumentParser
import Foundation
import LogStore

/// Exit codes shared by all subcommands (documented in the root command's help).
enum ToolExit {
    static let corruption = ExitCode(1)
    static let cannotOpen = ExitCode(2)
    static let usage = ExitCode(64)
}

/// Prints a one-line error and exits with the matching code; never a stack trace.
func fail(_ error: any Error, opening: Bool = false) -> ExitCode {
    if let e = error as? LogError {
        FileHandle.standardError.write(Data("txlog: \(e)\n".utf8))
        if e.code == .corrupt { return ToolExit.corruption }
        if e.code == .invalidArgument { return ToolExit.usage }
        return opening ? ToolExit.cannotOpen : ExitCode(1)
    }
    FileHandle.standardError.write(Data("txlog: \(error)\n".utf8))
    return ExitCode(1)
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
func printJSON(_ value: Any) {
    if let data = try? JSONSerialization.data(withJSONObject: value, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]) {
        FileHandle.standardOutput.write(data)
        FileHandle.standardOutput.write(Data("\n".utf8))
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
