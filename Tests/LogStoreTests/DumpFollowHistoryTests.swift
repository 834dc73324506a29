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

    static func create(_ dir: String) throws -> LogStore {
        try LogStore.create(at: dir, options: LogTestKit.options(containerSize: 512 * 1024, containerCount: 4, blockSize: 4096, codec: .none))
    }

    /// The dump's LSN column.
    static func lsns(_ child: Child) -> [String] { child.lines.map { $0.split(separator: "\t").first.map(String.init) ?? "" } }

    /// The new writer wrote nothing (yet): the dump checked the last record it printed only once the log
    /// opened again reached it, so it followed on for ever, printing nothing, although those records were
    /// gone.
    @Test("--follow after a new writer recovered less than it printed and writes nothing: stops at once (exit 2)")
    func idleNewWriter() async throws {
        let dir = LogTestKit.temporaryPath("dump-follow-lost-idle")
        let scratch = LogTestKit.temporaryPath("dump-follow-lost-idle-scratch")
        defer {
            LogTestKit.remove(dir)
            LogTestKit.remove(scratch)
        }
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        var log = try Self.create(dir)
        var lsns: [LSN] = []
        for i in 0..<5 { lsns.append(try log.append(LogTestKit.textPayload(i, length: 300))) }
        try await log.flush()
        let crashed = try ReadOnlyRefreshHistoryTests.image(of: dir)
        for i in 5..<30 { lsns.append(try log.append(LogTestKit.textPayload(i, length: 300))) }
        try await log.flush()
        let child = try Child(["dump", dir, "--follow", "--interval", "0.01"], scratch: scratch)
        try await child.wait(until: { child.lines.count >= 30 })
        kill(child.process.processIdentifier, SIGSTOP)
        try await child.waitUntilStopped()
        try log.close()
        try ReadOnlyRefreshHistoryTests.restoreInPlace(crashed, in: dir)
        log = try LogStore.open(at: dir)  // recovers the first five records; writes nothing
        #expect(log.lastLSN == lsns[4])
        kill(child.process.processIdentifier, SIGCONT)
        // Before the fix it followed on for ever: `exit()` kills it after 60 s.
        let status = try await child.exit()
        try log.close()
        #expect(status == 2, "\(child.stderr)")
        #expect(child.stderr.contains("invalid-state: \(dir) no longer holds the record at \(lsns[29])"), "\(child.stderr)")
        #expect(child.stderr.contains("recovered it only to \(lsns[4])"), "\(child.stderr)")
        #expect(Self.lsns(child) == lsns.map(\.description))
    }

    /// `--stream`: the dump had read to the log's end (records of another stream after its stream's last
    /// one). The new writer recovered less than that, not less than the stream's last record, and wrote
    /// the stream's next records below the LSN the dump had reached: the dump went on after that LSN and
    /// skipped them.
    @Test("--follow --stream after a new writer recovered less: prints the stream's records it wrote below the LSN the dump had reached")
    func streamRecordsBelowTheDumpsEnd() async throws {
        let dir = LogTestKit.temporaryPath("dump-follow-lost-stream")
        let scratch = LogTestKit.temporaryPath("dump-follow-lost-stream-scratch")
        defer {
            LogTestKit.remove(dir)
            LogTestKit.remove(scratch)
        }
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        var log = try Self.create(dir)
        var stream = try log.createStream("s")
        var wanted: [LSN] = []
        for i in 0..<5 { wanted.append(try stream.append(LogTestKit.textPayload(i, length: 300))) }
        for i in 0..<10 { _ = try log.append(LogTestKit.textPayload(100 + i, length: 300)) }
        try await log.flush()
        let crashed = try ReadOnlyRefreshHistoryTests.image(of: dir)
        for i in 10..<20 { _ = try log.append(LogTestKit.textPayload(100 + i, length: 300)) }
        try await log.flush()
        let reached = log.lastLSN
        let child = try Child(["dump", dir, "--follow", "--stream", "s", "--interval", "0.01", "--limit", "9"], scratch: scratch)
        // The output is flushed after each read: five lines, and that read went on to the log's end.
        try await child.wait(until: { child.lines.count >= 5 })
        kill(child.process.processIdentifier, SIGSTOP)
        try await child.waitUntilStopped()
        try log.close()
        try ReadOnlyRefreshHistoryTests.restoreInPlace(crashed, in: dir)
        log = try LogStore.open(at: dir)
        stream = try log.openStream("s")
        for i in 0..<3 { wanted.append(try stream.append(LogTestKit.textPayload(1000 + i, length: 300))) }
        #expect(wanted[7] < reached, "the new records are below the LSN the dump had reached")
        for i in 0..<20 { _ = try log.append(LogTestKit.textPayload(2000 + i, length: 300)) }
        wanted.append(try stream.append(LogTestKit.textPayload(1003, length: 300)))
        #expect(wanted[8] > reached)
        try await log.flush()
        kill(child.process.processIdentifier, SIGCONT)
        // Before the fix it printed only the last one, and followed on for ever (killed after 60 s).
        let status = try await child.exit()
        try log.close()
        #expect(status == 0, "\(child.stderr)")
        #expect(Self.lsns(child) == wanted.map(\.description))
    }
}
