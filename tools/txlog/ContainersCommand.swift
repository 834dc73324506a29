import ArgumentParser
import Foundation
import LogStore

struct ContainersCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "containers", abstract: "List, add or remove containers.",
        subcommands: [List.self, Add.self, Remove.self], defaultSubcommand: List.self)

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List containers (read-only).",
            discussion: """
                Example:
                  txlog containers list LOG
                """)
        @Argument(help: "The log directory.") var path: String
        @Flag(help: "Print JSON.") var json = false
        func run() throws {
            let info = try openForReading(path).info()
            if json {
                printJSON(info.containers.map { ["physicalID": $0.physicalID, "logicalID": $0.logicalID, "state": $0.state.description, "path": $0.path] as [String: Any] })
                return
            }
            for c in info.containers { print("\(c.physicalID)\t\(c.state)\t\(c.logicalID)\t\(escaped(c.path))") }
        }
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add containers (changes the log).",
            discussion: """
                Example:
                  txlog containers add LOG --count 2
                """)
        @Argument(help: "The log directory.") var path: String
        @Option(help: "How many to add (at least 1).") var count = 1
        func validate() throws {
            guard count >= 1 else { throw ValidationError("--count must be at least 1") }
        }
        func run() throws {
            let log = try openForWriting(path)
            // Checked before adding any: the format's limit used to stop the loop midway, after it had
            // added (and written in full) every container up to it, with exit 64.
            let existing = log.info().containers.count
            guard count <= Format.maxContainerCount - existing else {
                FileHandle.standardError.write(Data(
                    "txlog: invalid-argument: --count \(count): the log has \(existing) containers and holds at most \(Format.maxContainerCount); nothing added\n".utf8))
                throw ToolExit.usage
            }
            do {
                for _ in 0..<count { print("added container \(try log.addContainer())") }
                try log.close()
            } catch { throw fail(error) }
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove an inactive container (changes the log).",
            discussion: """
                Example:
                  txlog containers remove LOG 3
                """)
        @Argument(help: "The log directory.") var path: String
        @Argument(help: "Physical container id.") var id: UInt32
        func run() throws {
            let log = try openForWriting(path)
            do {
                try log.removeContainer(id)
                // A container holding records is only marked: it is deleted once every base has passed it.
                let pending = log.info().containers.first { $0.physicalID == id }.map { $0.state == .pendingDelete } ?? false
                try log.close()
                print(pending ? "container \(id) holds records: pending delete, removed once the log's base passes it" : "removed container \(id)")
            } catch var e as LogError where e.code == .invalidArgument {
                // The id names a container the log will not remove in its state (the one being written, or
                // one of the last two): a refusal (exit 8), not a usage error (64), since a later call may
                // succeed.
                e.code = .invalidState
                throw fail(e)
            } catch { throw fail(error) }
        }
    }
}
