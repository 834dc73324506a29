import ArgumentParser
import Foundation

@main
struct TxLogCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "txlog",
        abstract: "Create, inspect and exercise TxLog transaction logs.",
        discussion: """
            Read commands (info, containers list, streams, policy show, dump, verify, stats, map, tm list, \
            tm transactions, tm audit) open the log read-only and work while another process writes it. \
            Commands that change a log say so in their help.

            Exit codes (stable; 3 to 8 only after the log opened):
              0   success
              1   corruption found (or a failed check)
              2   cannot open the log (not a log, missing container, I/O error, locked)
              3   not found (a stream, transaction or container)
              4   I/O error
              5   log full
              6   read-only or locked
              7   unsupported version
              8   any other error (refused in the log's state)
              64  usage error

            Manual: docs/tools/txlog.md.
            """,
        subcommands: [
            CreateCommand.self, InfoCommand.self, ContainersCommand.self, StreamsCommand.self, PolicyCommand.self, DumpCommand.self, VerifyCommand.self,
            StatsCommand.self, MapCommand.self, TMCommand.self,
            StressCommand.self, StressRestartCommand.self, WorkloadCommand.self, DemoCommand.self, BenchCommand.self, FixtureLogCommand.self,
        ]
    )

    /// ArgumentParser's `main` with txlog's errors (docs/tools/txlog.md, "Clear"): a usage error is one line,
    /// `txlog: invalid-argument: <what> (see txlog CMD --help)`, exit 64, where ArgumentParser printed
    /// "Error: …", the usage and a hint on three or more lines, with the value as typed (control characters
    /// too); and an error that leaves a command's `run()` without an exit code (the commands give theirs
    /// through `fail`) gets the table's code, never ArgumentParser's 1, which means damage here.
    static func main() async {
        var parsed: (any ParsableCommand.Type)?
        do {
            var command = try await asyncParseAsRoot(nil)
            parsed = type(of: command)
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            BenchCleanup.parkIfDying()
        } catch let code as ExitCode {
            BenchCleanup.parkIfDying()
            exit(withError: code)
        } catch {
            BenchCleanup.parkIfDying()
            switch exitCode(for: error) {
            case .success:
                exit(withError: error)  // --help, --version
            case ToolExit.usage:
                // A parse error's full message ends with "See 'txlog dump --help' for more information."; one
                // thrown by a command's run() names only txlog's: name that command.
                let full = fullMessage(for: error)
                let help =
                    parsed.flatMap { commandPath(to: $0) }.map { (["txlog"] + $0 + ["--help"]).joined(separator: " ") }
                    ?? full.range(of: "See '").flatMap { start in
                        full[start.upperBound...].firstIndex(of: "'").map { String(full[start.upperBound..<$0]) }
                    } ?? "txlog --help"
                FileHandle.standardError.write(Data("txlog: invalid-argument: \(escaped(message(for: error))) (see \(escaped(help)))\n".utf8))
                exit(withError: ToolExit.usage)
            default:
                exit(withError: fail(error))
            }
        }
    }
}

/// The subcommand names leading from `root` to `target` (`["bench", "kv"]`), nil when it is not below it.
/// A command without a `commandName` is named after its type, as ArgumentParser does (`List` is `list`).
func commandPath(to target: any ParsableCommand.Type, from root: any ParsableCommand.Type = TxLogCommand.self) -> [String]? {
    if target == root { return [] }
    for sub in root.configuration.subcommands {
        if let rest = commandPath(to: target, from: sub) {
            return [sub.configuration.commandName ?? String(describing: sub).lowercased()] + rest
        }
    }
    return nil
}
