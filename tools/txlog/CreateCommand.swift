import ArgumentParser
import LogStore

struct CreateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Create a new log (changes the filesystem).",
        discussion: """
            Example:
              txlog create /var/lib/app/log --container-size 64M --containers 4 --codec lz4
            """)

    @Argument(help: "Directory for the log (created if missing; must not hold a log).") var path: String
    @Option(help: "Container size: a multiple of 512K up to 4G.") var containerSize = ByteCount(argument: "64M")!
    @Option(help: "Number of containers (at least 2).") var containers = 2
    @Option(help: "Block size: a multiple of 512 from 1K to 16M.") var blockSize = ByteCount(argument: "64K")!
    @Option(help: "Default codec: none, lz4, zlib or zlib:1..9.") var codec: Codec = .lz4

    func run() throws {
        var options = LogCreateOptions()
        options.containerSize = containerSize.value
        options.containerCount = containers
        options.blockSize = Int(clamping: blockSize.value)  // one beyond Int is out of range: create says so
        options.codec = codec
        do {
            let log = try LogStore.create(at: path, options: options)
            let info = log.info()
            try log.close()
            print("created log \(info.logID) at \(escaped(path)): \(containers) × \(formatBytes(containerSize.value)), codec \(codec)")
        } catch {
            throw fail(error)
        }
    }
}
