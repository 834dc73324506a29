// `txlog dump --follow` (a child process) on a log whose writer crashed before the last blocks the dump
// printed reached the disk (the dump read them from the page cache: here, the log's files are put back
// as they were before those blocks), and whose next writer recovered less than the dump had read.

import Foundation
import LogStore
import Testing
import TxLogTestSupport

#if canImport(Glibc)
import Glibc
#endif

@Suite("txlog dump --follow after a new writer recovered less than the dump read")
struct DumpFollowHistoryTests {
    typealias Child = DumpToolTests.Child

    /// The dump's LSN column.
    static func lsns(_ child: Child) -> [String] { child.lines.map { $0.split(separator: "\t").first.map(String.init) ?? "" } }

    /// A log (512 KiB containers, still open) and a scratch directory for the dump's output, removed after `body`.
    static func withLog(_ tag: String, _ body: (_ dir: String, _ scratch: String, _ log: LogStore) async throws -> Void) async throws {
        let dir = LogTestKit.temporaryPath(tag)
        let scratch = LogTestKit.temporaryPath(tag + "-scratch")
        defer {
            LogTestKit.remove(dir)
            LogTestKit.remove(scratch)
        }
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        let log = try LogStore.create(at: dir, options: LogTestKit.options(containerSize: 512 * 1024, containerCount: 4, blockSize: 4096, codec: .none))
        try await body(dir, scratch, log)
    }

    /// With the dump stopped (SIGSTOP) once it printed `lines` lines: the writer `log` crashes (its files are put
    /// back as `crashed` holds them) and a new writer opens the log and runs `newWriter`; then the dump goes on.
    /// Returns the dump's exit status.
    static func crash(
        _ log: LogStore, at dir: String, to crashed: [String: Data], after lines: Int, of child: Child,
        newWriter: (LogStore) async throws -> Void
    ) async throws -> Int32 {
        try await child.wait(until: { child.lines.count >= lines })
        kill(child.process.processIdentifier, SIGSTOP)
        try await child.waitUntilStopped()
        try log.close()
        try ReadOnlyRefreshHistoryTests.restoreInPlace(crashed, in: dir)
        let next = try LogStore.open(at: dir)
        try await newWriter(next)
        try await next.flush()
        kill(child.process.processIdentifier, SIGCONT)
        // A dump that follows on for ever is killed after 60 s.
        let status = try await child.exit()
        try next.close()
        return status
    }

    /// Thirty records, the image of the log as a crash would leave it after the first five, and the dump following it.
    static func thirtyRecords(_ dir: String, _ scratch: String, _ log: LogStore) async throws -> ([LSN], [String: Data], Child) {
        var lsns: [LSN] = []
        for i in 0..<5 { lsns.append(try log.append(LogTestKit.textPayload(i, length: 300))) }
        try await log.flush()
        let crashed = try ReadOnlyRefreshHistoryTests.image(of: dir)
        for i in 5..<30 { lsns.append(try log.append(LogTestKit.textPayload(i, length: 300))) }
        try await log.flush()
        return (lsns, crashed, try Child(["dump", dir, "--follow", "--interval", "0.01"], scratch: scratch))
    }

    /// The dump opened the log again when its refresh said so and went on after the last LSN it had read,
    /// printing the new writer's records from the middle, as the rest of the ones it printed before.
    @Test("--follow after a new writer wrote over records the dump printed: stops (exit 2), never prints the new ones as their sequel")
    func wroteOver() async throws {
        try await Self.withLog("dump-follow-lost") { dir, scratch, log in
            let (_, crashed, child) = try await Self.thirtyRecords(dir, scratch, log)
            let status = try await Self.crash(log, at: dir, to: crashed, after: 30, of: child) { next in
                for i in 0..<40 { _ = try next.append(LogTestKit.textPayload(1000 + i, length: 300)) }
            }
            #expect(status == 2, "\(child.stderr)")
            #expect(child.stderr.contains("invalid-state"), "\(child.stderr)")
            #expect(child.lines.count == 30, "printed after the history changed: \(child.lines.dropFirst(30).prefix(3))")
        }
    }

    /// The new writer wrote nothing (yet): the dump checked the last record it printed only once the log
    /// opened again reached it, so it followed on for ever, printing nothing, although those records were
    /// gone.
    @Test("--follow after a new writer recovered less than it printed and writes nothing: stops at once (exit 2)")
    func idleNewWriter() async throws {
        try await Self.withLog("dump-follow-lost-idle") { dir, scratch, log in
            let (lsns, crashed, child) = try await Self.thirtyRecords(dir, scratch, log)
            let status = try await Self.crash(log, at: dir, to: crashed, after: 30, of: child) { next in
                #expect(next.lastLSN == lsns[4], "it recovers the first five records")
            }
            #expect(status == 2, "\(child.stderr)")
            #expect(child.stderr.contains("invalid-state: \(dir) no longer holds the record at \(lsns[29])"), "\(child.stderr)")
            #expect(child.stderr.contains("recovered it only to \(lsns[4])"), "\(child.stderr)")
            #expect(Self.lsns(child) == lsns.map(\.description))
        }
    }

    /// `--stream`: the dump had read to the log's end (records of another stream after its stream's last
    /// one). The new writer recovered less than that, not less than the stream's last record, and wrote
    /// the stream's next records below the LSN the dump had reached: the dump went on after that LSN and
    /// skipped them.
    @Test("--follow --stream after a new writer recovered less: prints the stream's records it wrote below the LSN the dump had reached")
    func streamRecordsBelowTheDumpsEnd() async throws {
        try await Self.withLog("dump-follow-lost-stream") { dir, scratch, log in
            var wanted: [LSN] = []
            let stream = try log.createStream("s")
            for i in 0..<5 { wanted.append(try stream.append(LogTestKit.textPayload(i, length: 300))) }
            for i in 0..<10 { _ = try log.append(LogTestKit.textPayload(100 + i, length: 300)) }
            try await log.flush()
            let crashed = try ReadOnlyRefreshHistoryTests.image(of: dir)
            for i in 10..<20 { _ = try log.append(LogTestKit.textPayload(100 + i, length: 300)) }
            try await log.flush()
            let reached = log.lastLSN
            let child = try Child(["dump", dir, "--follow", "--stream", "s", "--interval", "0.01", "--limit", "9"], scratch: scratch)
            // The output is flushed after each read: five lines, and that read went on to the log's end.
            let status = try await Self.crash(log, at: dir, to: crashed, after: 5, of: child) { next in
                let stream = try next.openStream("s")
                for i in 0..<3 { wanted.append(try stream.append(LogTestKit.textPayload(1000 + i, length: 300))) }
                #expect(wanted[7] < reached, "the new records are below the LSN the dump had reached")
                for i in 0..<20 { _ = try next.append(LogTestKit.textPayload(2000 + i, length: 300)) }
                wanted.append(try stream.append(LogTestKit.textPayload(1003, length: 300)))
                #expect(wanted[8] > reached)
            }
            // Before the fix it printed only the last one, and followed on for ever.
            #expect(status == 0, "\(child.stderr)")
            #expect(Self.lsns(child) == wanted.map(\.description))
        }
    }
}
