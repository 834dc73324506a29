import ArgumentParser
import Foundation
import LogStore

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "A guided tour on a fresh log: group commit, a crash, recovery, verification (changes the filesystem).",
        discussion: "Example: txlog demo ./demo-log")

    @Argument(help: "Directory for the demo log (replaced if it exists).") var path = "demo-log"
    @Option(help: "Concurrent writers in the group-commit phase.") var writers = 16
    @Option(help: "Seconds per phase.") var seconds = 2.0

    func run() throws {
        try? FileManager.default.removeItem(atPath: path)
        var options = LogCreateOptions()
        options.containerSize = 4 << 20
        options.containerCount = 4
        options.blockSize = 64 << 10
        let log: LogStore
        do { log = try LogStore.create(at: path, options: options) } catch { throw fail(error) }
        print("1. Created a log at \(path): 4 containers × 4 MiB, lz4 blocks, CRC32C everywhere.")

        // Phase 1: concurrent committers share fsyncs.
        let committed = Counter()
        let stop = Date().addingTimeInterval(seconds)
        let group = DispatchGroup()
        let run = UInt32.random(in: 1..<(1 << 24)) << 8
        for i in 0..<writers {
            let w = run | UInt32(i & 0xFF)
            group.enter()
            Thread {
                defer { group.leave() }
                var seq: UInt64 = 0
                while Date() < stop {
                    let payload = StressPayload.make(writer: w, sequence: seq, length: 128)
                    guard let lsn = try? appendRetrying(log, payload), (try? log.flush(upTo: lsn)) != nil else { return }
                    seq += 1
                    committed.add(1)
                }
            }.start()
        }
        group.wait()
        let stats = log.info().statistics
        let commits = committed.value
        print("2. \(writers) writers appended and flushed 128-byte records for \(seconds) s:")
        print("   \(commits) durable commits, \(Int(Double(commits) / seconds)) commits/s, \(stats.syncs) fdatasyncs,",
              String(format: "%.1f commits per fdatasync (group commit).", Double(commits) / Double(max(1, stats.syncs))))
        do { try log.close() } catch { throw fail(error) }

        // Phase 2: a child process appends until it is killed with SIGKILL.
        let acks = path + "/acks.txt"
        _ = FileManager.default.createFile(atPath: acks, contents: nil)
        let child = Process()
        child.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL
        if !FileManager.default.isExecutableFile(atPath: child.executableURL!.path) {
            child.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        }
        child.arguments = ["stress", "run", path, "--writers", "8", "--record-size", "200"]
        child.standardOutput = FileHandle(forWritingAtPath: acks)
        try child.run()
        Thread.sleep(forTimeInterval: seconds / 2)
        kill(child.processIdentifier, SIGKILL)
        child.waitUntilExit()
        let ackCount = ((try? String(contentsOfFile: acks, encoding: .utf8)) ?? "").split(separator: "\n").count
        print("3. A child process appended with 8 writers and was killed with SIGKILL after \(seconds / 2) s;")
        print("   it had acknowledged \(ackCount) durable records.")

        // Phase 3: reopen (recovery) and check every acknowledged record.
        let start = Date()
        let reopened: LogStore
        do { reopened = try LogStore.open(at: path) } catch { throw fail(error, opening: true) }
        let recoveryMs = Date().timeIntervalSince(start) * 1000
        let report = reopened.recoveryReport
        print(String(format: "4. Reopened in %.1f ms: scanned %d blocks from the base file's scan start; ", recoveryMs, report.blocksScanned)
              + (report.tornTail.map { "dropped a torn tail at \($0)." } ?? "no torn tail."))
        do { try reopened.close() } catch { throw fail(error) }
        let check = try StressCommand.Check.parse([path, "--acks", acks])
        print("5. Checking every acknowledged record is present and intact:")
        print("   ", terminator: "")
        try check.run()
        print("6. txlog info:")
        try InfoCommand.parse([path]).run()
    }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func add(_ k: Int) { lock.lock(); n += k; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return n }
}
