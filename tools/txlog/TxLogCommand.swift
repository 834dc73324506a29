import ArgumentParser

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
}
