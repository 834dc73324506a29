import ArgumentParser
import LogStore

struct StreamsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "streams", abstract: "List a log's streams with their LSNs (read-only).",
        discussion: """
            Example:
              txlog streams LOG --json
            """)

    @Argument(help: "The log directory.") var path: String
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let streams = try openForReading(path).streams()
        if json {
            printJSON(streams.map(streamJSON))
            return
        }
        print("id\tname\tbase\tlast\trestart\tarchive tail")
        for s in streams {
            print("\(s.id)\t\(s.name.isEmpty ? "(default)" : escaped(s.name))\t\(s.baseLSN)\t\(s.lastLSN)\t\(s.restartLSN)\t\(s.archiveTail)")
        }
    }
}

func streamJSON(_ s: StreamInfo) -> [String: Any] {
    [
        "id": s.id, "name": s.name, "baseLSN": s.baseLSN.description, "lastLSN": s.lastLSN.description,
        "restartLSN": s.restartLSN.description, "archiveTail": s.archiveTail.description,
        "reservedBytes": s.reservedBytes, "reservedRecords": s.reservedRecords,
    ]
}

struct PolicyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy", abstract: "Show or set the space policy.", subcommands: [Show.self, Set.self], defaultSubcommand: Show.self)

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the policy (read-only).",
            discussion: """
                Example:
                  txlog policy show LOG --json
                """)
        @Argument(help: "The log directory.") var path: String
        @Flag(help: "Print JSON.") var json = false
        func run() throws {
            let p = try openForReading(path).policy
            if json {
                printJSON(policyJSON(p))
            } else {
                for (k, v) in policyJSON(p).sorted(by: { $0.key < $1.key }) { print("\(k)\t\(v)") }
            }
        }
    }

    struct Set: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change the policy (changes the log).",
            discussion: """
                Example:
                  txlog policy set LOG --auto-grow true --max-containers 16
                """)
        @Argument(help: "The log directory.") var path: String
        @Option(help: "Fewest containers (auto-shrink floor).") var minContainers: UInt32?
        @Option(help: "Most containers growth may reach.") var maxContainers: UInt32?
        @Option(help: "Containers added per growth step.") var growthIncrement: UInt32?
        @Option(help: "Grow automatically when full: true or false.") var autoGrow: Bool?
        @Option(help: "Shrink when more than this percentage is free (0: never).") var autoShrink: UInt8?
        @Option(help: "Largest total size growth may reach: bytes, or with K, M or G as for create (0: no limit).") var maxSize: ByteCount?
        @Option(help: "File name prefix for new containers.") var containerPrefix: String?

        /// With no option it opened the log for writing and rewrote the base file with the same policy.
        func validate() throws {
            let given: [Any?] = [minContainers, maxContainers, growthIncrement, autoGrow, autoShrink, maxSize, containerPrefix]
            guard given.contains(where: { $0 != nil }) else { throw ValidationError("nothing to set: give at least one option (txlog policy show prints the policy)") }
        }
        func run() throws {
            let log = try openForWriting(path)
            do {
                var p = log.policy
                if let minContainers { p.minContainers = minContainers }
                if let maxContainers { p.maxContainers = maxContainers }
                if let growthIncrement { p.growthIncrement = growthIncrement }
                if let autoGrow { p.autoGrow = autoGrow }
                if let autoShrink { p.autoShrinkPercent = autoShrink }
                if let maxSize { p.maxSizeBytes = maxSize.value }
                if let containerPrefix { p.containerPrefix = containerPrefix }
                try log.setPolicy(p)
                try log.close()
                print("policy updated")
            } catch { throw fail(error) }
        }
    }
}

func policyJSON(_ p: LogPolicy) -> [String: Any] {
    [
        "minContainers": p.minContainers, "maxContainers": p.maxContainers, "growthIncrement": p.growthIncrement,
        "autoGrow": p.autoGrow, "autoShrinkPercent": p.autoShrinkPercent, "maxSizeBytes": p.maxSizeBytes,
        "containerPrefix": p.containerPrefix,
    ]
}
