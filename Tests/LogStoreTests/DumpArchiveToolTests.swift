// `txlog dump` of a log whose archive tail keeps records below its base (readable since the fifteenth
// review): the plain dump and `--stats` start at the oldest record the log holds and mark those below the
// base, and `--follow`'s message names the archive tail when that is what it fell behind.

import Foundation
import LogStore
import Testing
import TxLogTestSupport

#if canImport(Glibc)
import Glibc
#endif

@Suite("txlog dump: records an archive tail keeps below the base")
struct DumpArchiveToolTests {
    /// A closed log whose log-wide archive tail is its first record, with the base moved to the last: 25
    /// records, 24 of them below the base and kept for archiving.
    static func archivedLog(_ tag: String) async throws -> (dir: String, all: [LSN], base: LSN) {
        let (dir, log, kept) = try await DumpToolTests.followLog(tag, records: 5)
        defer { try? log.close() }
        do {
            try log.setArchiveTail(try #require(kept.first))
            let more = try await Self.appendAndPassBase(log, try log.createStream("other"))
            let end = try #require(more.last)
            #expect(log.baseLSN == end && log.oldestReadableLSN == kept.first)
            return (dir, kept + more, end)
        } catch {
            LogTestKit.remove(dir)
            throw error
        }
    }

    /// `pg_waldump` shows every record still on disk: the dump began at the base, so the 24 records an
    /// archive tail keeps below it (readable through `read`, the chains and cursors) were not shown at all.
    @Test("dump and dump --stats start at the lowest archive tail below the base and mark the records below the base")
    func dumpStartsAtOldestReadable() async throws {
        let (dir, all, base) = try await Self.archivedLog("dump-archived")
        defer { LogTestKit.remove(dir) }
        let json = try await DumpToolTests.run(["dump", dir, "--json"], scratch: dir)
        #expect(json.status == 0, "\(json.err)")
        let records = DumpToolTests.lines(json)
        #expect(records.map { $0["lsn"] as? String } == all.map(\.description))
        #expect(records.map { $0["belowBase"] as? Bool ?? false } == all.map { $0 < base })

        let text = try await DumpToolTests.run(["dump", dir], scratch: dir)
        let lines = text.out.split(separator: "\n")
        #expect(text.status == 0 && lines.count == all.count, "\(text.out)\(text.err)")
        #expect(lines.filter { $0.hasSuffix("\t[below the base: kept for archiving]") }.count == all.count - 1)
        #expect(lines.last.map { !$0.contains("[below the base") } ?? false)

        let stats = try await DumpToolTests.run(["dump", dir, "--stats", "--json"], scratch: dir)
        #expect(stats.status == 0, "\(stats.err)")
        #expect(stats.object["records"] as? Int == all.count && stats.object["belowBase"] as? Int == all.count - 1)
        #expect(stats.object["baseLSN"] as? String == base.description && stats.object["firstLSN"] as? String == all.first?.description)
        let statsText = try await DumpToolTests.run(["dump", dir, "--stats"], scratch: dir)
        #expect(statsText.out.contains("below base   \(all.count - 1) records below the log's base \(base)"), "\(statsText.out)")

        // `--stream` starts at the log's archive tail too (below both streams' bases); `--from` below the
        // base still works.
        let other = try await DumpToolTests.run(["dump", dir, "--stream", "other", "--json"], scratch: dir)
        #expect(DumpToolTests.lines(other).map { $0["lsn"] as? String } == all[5...].map(\.description))
        let first = try await DumpToolTests.run(["dump", dir, "--stream", "default", "--json"], scratch: dir)
        #expect(DumpToolTests.lines(first).map { $0["lsn"] as? String } == all[..<5].map(\.description))
        let from = try await DumpToolTests.run(["dump", dir, "--from", all[3].description, "--limit", "1"], scratch: dir)
        #expect(from.status == 0 && from.out.hasPrefix("\(all[3])\t"), "\(from.out)\(from.err)")
    }

    /// Appends 20 durable records to `other` and moves its base and the log's to the last: the records
    /// before it are kept only by an archive tail, if one is set. Returns their LSNs.
    static func appendAndPassBase(_ log: LogStore, _ other: LogStream) async throws -> [LSN] {
        var more: [LSN] = []
        for i in 0..<20 { more.append(try other.append(LogTestKit.textPayload(100 + i, length: 300))) }
        try await log.flush()
        let end = try #require(more.last)
        try other.advanceBase(to: end)
        try log.advanceBase(to: end)
        return more
    }

    /// A live log of five records whose archive tail is the first, a stream `other` to write on, and a
    /// `dump LOG arguments` child stopped (SIGSTOP, every thread) once it printed the five.
    static func stoppedFollower(
        _ tag: String, _ arguments: [String]
    ) async throws -> (dir: String, log: LogStore, lsns: [LSN], other: LogStream, child: DumpToolTests.Child) {
        let (dir, log, lsns) = try await DumpToolTests.followLog(tag, records: 5)
        do {
            try log.setArchiveTail(try #require(lsns.first))
            let other = try log.createStream("other")
            let child = try DumpToolTests.Child(["dump", dir] + arguments, scratch: dir)
            try await child.wait(until: { child.lines.count >= 5 })
            kill(child.process.processIdentifier, SIGSTOP)
            try await child.waitUntilStopped()
            return (dir, log, lsns, other, child)
        } catch {
            try? log.close()
            LogTestKit.remove(dir)
            throw error
        }
    }

    /// A stream's own archive tail below its base: `dump --stream` started at the stream's base, so its
    /// records kept for archiving were not shown, and `map` marked (and named in its legend) only the log's
    /// archive tail, `A archive tail null` beside the container kept pending archive for the stream's.
    @Test("a stream's archive tail: dump --stream starts there, and map marks it and names it in the legend")
    func streamArchiveTail() async throws {
        let (dir, log, _) = try await DumpToolTests.followLog("dump-stream-archived", records: 5)
        defer { LogTestKit.remove(dir) }
        let archived = try log.createStream("archived")
        var lsns: [LSN] = []
        for i in 0..<150 { lsns.append(try archived.append(LogTestKit.textPayload(i, length: 3000))) }
        try await log.flush()
        try archived.setArchiveTail(lsns[2])
        let last = try #require(lsns.last)
        try archived.advanceBase(to: last)
        try log.advanceBase(to: last)
        #expect(log.info().containers.contains { $0.state == .pendingArchive })
        try log.close()

        let dump = try await DumpToolTests.run(["dump", dir, "--stream", "archived", "--json"], scratch: dir)
        #expect(dump.status == 0, "\(dump.err)")
        #expect(DumpToolTests.lines(dump).map { $0["lsn"] as? String } == lsns[2...].map(\.description))
        let map = try await DumpToolTests.run(["map", dir, "--width", "32"], scratch: dir)
        #expect(map.status == 0, "\(map.err)")
        #expect(map.out.contains("A archive tail \(lsns[2])"), "\(map.out)")
        let markers = map.out.split(separator: "\n").filter { $0.allSatisfy { " ABRE".contains($0) } && $0.contains("A") }
        #expect(markers.count == 1, "\(map.out)")
        // `info` says where the records kept for archiving begin (its `archive` line is the log's tail only).
        let info = try await DumpToolTests.run(["info", dir, "--json"], scratch: dir)
        #expect(info.object["oldestReadableLSN"] as? String == lsns[2].description, "\(info.out)")
        let text = try await DumpToolTests.run(["info", dir], scratch: dir)
        #expect(text.out.contains("\nkept from  \(lsns[2]) (records below the base kept for an archive tail)\n"), "\(text.out)")
    }

    /// The dump fell behind a writer whose archive tail (below the base) set the limit of what it keeps:
    /// the message said the base had moved past the dump, naming the base, not the tail that decided it.
    @Test("--follow behind an archive tail that moved on names the archive tail, not the base (exit 3)")
    func followLostNamesArchiveTail() async throws {
        let (dir, log, lsns, other, child) = try await Self.stoppedFollower("dump-follow-archive-lost", ["--follow", "--interval", "0.01"])
        defer { LogTestKit.remove(dir) }
        let last = try #require(lsns.last)
        // The writer recycles on, its archive tail following one step behind the base.
        try await onOwnThread {
            var previous = LSN.null
            for i in 0..<1500 {
                let lsn = try other.append(LogTestKit.textPayload(i, length: 2000))
                if i % 50 == 49 {
                    try log.flush()
                    if previous != .null { try log.setArchiveTail(previous) }
                    try other.advanceBase(to: lsn)
                    try log.advanceBase(to: lsn)
                    previous = lsn
                }
            }
            try log.flush()
        }
        let (floor, base) = (log.oldestReadableLSN, log.baseLSN)
        #expect(floor > last && floor < base)
        kill(child.process.processIdentifier, SIGCONT)
        #expect(try await child.exit() == 3, "\(child.stderr)")
        #expect(child.stderr.contains("cannot go on after \(last): the lowest archive tail moved to \(floor) (the log's base is \(base))"), "\(child.stderr)")
        try log.close()
    }
}
