import ArgumentParser

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bench", abstract: "Whole-system benchmarks.")
    func run() throws { print("bench: see subcommands") }
}
