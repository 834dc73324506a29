// `txlog dump` beyond the golden outputs: decoded records and their filters (`--xid`, `--kind`), a record
// that should decode and does not, `--stats` against `txlog stats`, and `--follow` on a live log (a writer
// in this process, the dump in a child): new records as they are written, SIGTERM, `--until-idle`, and a
// writer that recycles the records the dump was to resume from.

import Foundation
import LogStore
import Testing
import TxLogTestSupport

#if canImport(Glibc)
import Glibc
#endif

@Suite("txlog dump: decoding, filters, stats, follow")
struct DumpToolTests {
    /// The fixture log's two-phase commit (docs/tools/txlog.md, dump): prepared in the key-value store's
    /// stream and in the ledger RM's, decided in the TM's.
    static let transfer = "7e000000-0000-4000-8000-0000000000f1"

    /// Runs txlog to completion without blocking a thread of the cooperative pool.
    static func run(_ arguments: [String], scratch: String) async throws -> ToolTests.Run {
        let e = try await TxlogProcess.run(arguments, scratch: scratch, hangAfter: 60)
        return ToolTests.Run(status: e.status, out: e.stdout, err: e.stderr)
    }

    static func lines(_ run: ToolTests.Run) -> [[String: Any]] {
        run.out.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    @Test("--xid selects the records of one transaction across the TM's and the store's streams; --kind by decoded kind")
    func xidAndKind() async throws {
        let work = try await ToolGolden.workingCopy()
        defer { try? FileManager.default.removeItem(at: work) }
        let log = work.appendingPathComponent(ToolGolden.logName).path
        let all = Self.lines(try await Self.run(["dump", log, "--json"], scratch: work.path))
        #expect(all.count == 38)
        let wanted = all.filter { $0["transaction"] as? String == Self.transfer }
        #expect(wanted.count == 4, "prepare and commit in the store's stream, outcome and end in the TM's")

        let xid = try await Self.run(["dump", log, "--xid", Self.transfer, "--json"], scratch: work.path)
        #expect(xid.status == 0, "\(xid.err)")
        let selected = Self.lines(xid)
        #expect(selected.map { $0["lsn"] as? String } == wanted.map { $0["lsn"] as? String })
        #expect(selected.compactMap { $0["kind"] as? String } == ["kv:prepare", "tm:outcome", "kv:commit", "tm:end"])
        #expect(Set(selected.compactMap { $0["streamName"] as? String }) == ["ktm", "rm-7e000000-0000-4000-8000-0000000000a1"])
        #expect((selected.first?["kvRecord"] as? [String: Any])?["writes"] as? Int == 2)

        let outcomes = Self.lines(try await Self.run(["dump", log, "--kind", "tm:outcome", "--json"], scratch: work.path))
        #expect(outcomes.count == all.filter { $0["kind"] as? String == "tm:outcome" }.count && !outcomes.isEmpty)
        // A bare kind is either family's: "checkpoint" is the TM's checkpoints and the store's.
        let checkpoints = Self.lines(try await Self.run(["dump", log, "--kind", "checkpoint", "--json"], scratch: work.path))
        #expect(Set(checkpoints.compactMap { $0["kind"] as? String }) == ["tm:checkpoint", "kv:checkpoint"])
        let raw = Self.lines(try await Self.run(["dump", log, "--kind", "raw", "--json"], scratch: work.path))
        #expect(raw.count == all.filter { $0["kind"] is NSNull }.count && !raw.isEmpty)
        #expect(raw.allSatisfy { $0["tm"] == nil && $0["kv"] == nil })

        let text = try await Self.run(["dump", log, "--xid", Self.transfer], scratch: work.path)
        #expect(text.out.split(separator: "\n").count == 4 && text.out.contains("tm: outcome tx \(Self.transfer) committed"))
        let bad = try await Self.run(["dump", log, "--kind", "tm:nonsense"], scratch: work.path)
        #expect(bad.status == 64, "\(bad.err)")
        let badXid = try await Self.run(["dump", log, "--xid", "not-a-uuid"], scratch: work.path)
        #expect(badXid.status == 64, "\(badXid.err)")
    }

    @Test("--stats counts the selected records per stream and kind, and agrees with txlog stats over the whole log")
    func stats() async throws {
        let work = try await ToolGolden.workingCopy()
        defer { try? FileManager.default.removeItem(at: work) }
        let log = work.appendingPathComponent(ToolGolden.logName).path
        let all = Self.lines(try await Self.run(["dump", log, "--json"], scratch: work.path))
        let run = try await Self.run(["dump", log, "--stats", "--json"], scratch: work.path)
        #expect(run.status == 0, "\(run.err)")
        let s = run.object
        #expect(s["records"] as? Int == all.count)
        #expect(s["dataBytes"] as? Int == all.reduce(0) { $0 + ($1["length"] as? Int ?? 0) })
        #expect(s["firstLSN"] as? String == all.first?["lsn"] as? String && s["lastLSN"] as? String == all.last?["lsn"] as? String)
        let kinds = try #require(s["kinds"] as? [[String: Any]])
        #expect(kinds.reduce(0) { $0 + ($1["records"] as? Int ?? 0) } == all.count)
        let outcome = kinds.first { $0["kind"] as? String == "tm:outcome" }
        #expect(outcome?["streamName"] as? String == "ktm" && outcome?["records"] as? Int == 1)
        // The records per stream are what `txlog stats` counts from the blocks, except the default stream's:
        // stats walks whole containers, also the blocks below the log's base, which hold 40 of them.
        let whole = (try await Self.run(["stats", log, "--json"], scratch: work.path).object["streams"] as? [[String: Any]] ?? [])
            .filter { $0["streamID"] as? Int != 0 }
        let dumped = (s["streams"] as? [[String: Any]] ?? []).filter { $0["streamID"] as? Int != 0 }
        #expect(dumped.count == 5)
        #expect(dumped.map { [$0["streamID"] as? Int, $0["records"] as? Int, $0["dataBytes"] as? Int] }
            == whole.map { [$0["streamID"] as? Int, $0["records"] as? Int, $0["dataBytes"] as? Int] })
        // Filters apply: one transaction's records.
        let one = try await Self.run(["dump", log, "--stats", "--json", "--xid", Self.transfer], scratch: work.path).object
        #expect(one["records"] as? Int == 4)
        let text = try await Self.run(["dump", log, "--stats"], scratch: work.path)
        #expect(text.status == 0 && text.out.hasPrefix("records      38,") && text.out.contains("\ttm:outcome\t1 records"), "\(text.out)")
        #expect(try await Self.run(["dump", log, "--stats", "--hex"], scratch: work.path).status == 64)
    }

    /// A record in a TM's stream with the TM record magic that does not decode (cut short), and one in a
    /// store's stream: each is printed raw with a note, and the dump goes on to the records after them.
    @Test("a record that should decode and does not is printed raw with a note; the dump goes on (exit 0)")
    func undecodableRecords() async throws {
        let fixture = try await ToolGolden.fixtureLog()
        let source = try LogStore.open(at: fixture.path, options: LogOpenOptions(readOnly: true))
        let tmRecord = try source.read(try #require(LSN("2:7168:2"))).data  // tm: outcome
        let kvRecord = try source.read(try #require(LSN("2:7168:0"))).data  // kv prepare
        try source.close()

        let dir = LogTestKit.temporaryPath("dump-undecodable")
        defer { LogTestKit.remove(dir) }
        let log = try LogStore.create(at: dir, options: LogTestKit.options(containerSize: 512 * 1024, containerCount: 2, blockSize: 4096, codec: .none))
        let ktm = try log.createStream("ktm")
        let rm = try log.createStream("rm-7e000000-0000-4000-8000-0000000000a1")
        try ktm.append(Array(tmRecord.prefix(tmRecord.count - 9)))
        try rm.append(Array(kvRecord.prefix(30)))
        try ktm.append(tmRecord)
        try rm.append(kvRecord)
        try ktm.append(Array("not a TM record at all".utf8))
        try await log.flush()
        try log.close()

        let run = try await Self.run(["dump", dir, "--json"], scratch: dir)
        #expect(run.status == 0, "\(run.err)")
        let records = Self.lines(run)
        #expect(records.count == 5)
        #expect(records.map { $0["kind"] as? String } == [nil, nil, "tm:outcome", "kv:prepare", nil])
        #expect((records[0]["note"] as? String)?.hasPrefix("not decodable as a TM record: corrupt:") == true, "\(records[0])")
        #expect((records[1]["note"] as? String)?.hasPrefix("not decodable as a key-value record: corrupt:") == true, "\(records[1])")
        #expect(records[4]["note"] == nil, "data without the magic is another program's: raw, no note")
        let text = try await Self.run(["dump", dir], scratch: dir)
        let lines = text.out.split(separator: "\n")
        #expect(text.status == 0 && lines.count == 5)
        #expect(lines.first?.contains("\t[not decodable as a TM record: corrupt:") == true, "\(text.out)")
        let stats = try await Self.run(["dump", dir, "--stats", "--json"], scratch: dir).object
        #expect(stats["undecodable"] as? Int == 2)
    }

    // MARK: --follow

    /// A txlog child whose stdout and stderr go to files, so the test can watch its output while it runs
    /// and send it signals.
    final class Child: @unchecked Sendable {
        let process = Process()
        let out: String
        let err: String

        init(_ arguments: [String], scratch: String) throws {
            out = scratch + "/follow-\(UUID().uuidString).out"
            err = out + ".err"
            _ = FileManager.default.createFile(atPath: out, contents: nil)
            _ = FileManager.default.createFile(atPath: err, contents: nil)
            process.executableURL = URL(fileURLWithPath: try TxlogProcess.binary())
            process.arguments = arguments
            process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
            process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: err))
            process.standardInput = FileHandle.nullDevice
            try process.run()
        }

        var stdout: String { (try? String(contentsOfFile: out, encoding: .utf8)) ?? "" }
        var stderr: String { (try? String(contentsOfFile: err, encoding: .utf8)) ?? "" }
        var lines: [Substring] { stdout.split(separator: "\n") }

        /// Waits until `condition` holds or the child exits; a child still running after `seconds` is
        /// killed (a hang fails the test instead of stalling the run).
        func wait(until condition: @escaping () -> Bool = { false }, seconds: Double = 60) async throws {
            let deadline = Date().addingTimeInterval(seconds)
            while process.isRunning, !condition() {
                if Date() > deadline {
                    kill(process.processIdentifier, SIGKILL)
                    Issue.record("txlog \(process.arguments ?? []) still ran after \(seconds) s; stderr: \(stderr)")
                    break
                }
                try await Task.sleep(for: .milliseconds(10))
            }
        }

        /// Waits until every thread of the child is stopped (state `T` in /proc), after a SIGSTOP.
        func waitUntilStopped(seconds: Double = 60) async throws {
            let pid = process.processIdentifier
            let deadline = Date().addingTimeInterval(seconds)
            func allStopped() -> Bool {
                guard let tasks = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task") else { return false }
                return tasks.allSatisfy { task in
                    // The state follows the command name's closing parenthesis: "pid (comm) S ...".
                    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/stat", encoding: .utf8),
                        let close = stat.lastIndex(of: ")")
                    else { return false }
                    let state = stat[stat.index(after: close)...].drop(while: { $0 == " " }).first
                    return state == "T" || state == "t"
                }
            }
            while !allStopped() {
                guard process.isRunning, Date() < deadline else {
                    Issue.record("txlog \(process.arguments ?? []) did not stop after SIGSTOP")
                    return
                }
                try await Task.sleep(for: .milliseconds(5))
            }
        }

        func exit() async throws -> Int32 {
            try await wait()
            process.waitUntilExit()
            return process.terminationStatus
        }
    }

    /// A log of 512 KiB containers, still open (the live writer), holding `records` durable records.
    static func followLog(_ tag: String, containers: Int = 4, records: Int) async throws -> (String, LogStore, [LSN]) {
        let dir = LogTestKit.temporaryPath(tag)
        return try await removingOnThrow(dir) {
            let log = try LogStore.create(at: dir, options: LogTestKit.options(containerSize: 512 * 1024, containerCount: containers, blockSize: 4096, codec: .none))
            do {
                var lsns: [LSN] = []
                for i in 0..<records { lsns.append(try log.append(LogTestKit.textPayload(i, length: 300))) }
                try await log.flush()
                return (dir, log, lsns)
            } catch {
                try? log.close()
                throw error
            }
        }
    }

    @Test("--follow prints the records a live writer adds after the end, in order, none twice, none missed")
    func followsLiveWriter() async throws {
        let (dir, log, written) = try await Self.followLog("dump-follow", records: 20)
        defer { LogTestKit.remove(dir) }
        var lsns = written
        let total = 400
        let child = try Child(["dump", dir, "--follow", "--interval", "0.01", "--limit", "\(total)"], scratch: dir)
        // The writer goes on while the dump reads: blocks are caught mid-write and containers switch.
        let more = try await onOwnThread { () throws -> [LSN] in
            var out: [LSN] = []
            for i in 20..<total {
                out.append(try log.append(LogTestKit.textPayload(i, length: 300 + i % 1500)))
                if i % 7 == 0 { try log.flush() }
            }
            try log.flush()
            return out
        }
        lsns += more
        #expect(try await child.exit() == 0, "\(child.stderr)")
        #expect(child.stderr.isEmpty, "\(child.stderr)")
        #expect(child.lines.map { $0.split(separator: "\t").first.map(String.init) } == lsns.map(\.description))
        try log.close()
    }

    @Test("--follow stops on SIGTERM and SIGINT with exit 0; --stats is printed when the follow ends")
    func followStopsOnSignal() async throws {
        let (dir, log, _) = try await Self.followLog("dump-follow-signal", records: 10)
        defer { LogTestKit.remove(dir) }
        for signal in [SIGTERM, SIGINT] {
            let child = try Child(["dump", dir, "--follow"], scratch: dir)
            try await child.wait(until: { child.lines.count >= 10 })
            #expect(child.process.isRunning, "--follow ended by itself: \(child.stderr)")
            kill(child.process.processIdentifier, signal)
            #expect(try await child.exit() == 0, "signal \(signal): \(child.stderr)")
            #expect(child.lines.count == 10 && child.stderr.isEmpty)
        }
        // --stats prints its counts when the follow ends (here: at once, --until-idle 0).
        let stats = try Child(["dump", dir, "--follow", "--stats", "--json", "--until-idle", "0"], scratch: dir)
        #expect(try await stats.exit() == 0, "\(stats.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(stats.stdout.utf8)) as? [String: Any]
        #expect(object?["records"] as? Int == 10, "\(stats.stdout)")
        try log.close()
    }

    /// The dump runs on a Dispatch thread (the tool's main is async), which blocks SIGINT and SIGTERM: the
    /// signal was handled on the main thread and never interrupted the dump's `nanosleep`, so a stop waited
    /// out the rest of `--interval` (an hour here). The wait is now on a pipe the handler writes to.
    @Test("--follow with a long --interval stops on SIGTERM and SIGINT without waiting out the interval")
    func followStopsDuringALongInterval() async throws {
        let (dir, log, _) = try await Self.followLog("dump-follow-signal-interval", records: 10)
        defer { LogTestKit.remove(dir) }
        for signal in [SIGTERM, SIGINT] {
            let child = try Child(["dump", dir, "--follow", "--interval", "3600"], scratch: dir)
            try await child.wait(until: { child.lines.count >= 10 })
            kill(child.process.processIdentifier, signal)
            // Killed (and recorded as an issue) if it is still waiting for its next read after this long.
            try await child.wait(seconds: 30)
            #expect(try await child.exit() == 0, "signal \(signal): \(child.stderr)")
            #expect(child.lines.count == 10 && child.stderr.isEmpty)
        }
        try log.close()
    }

    /// The first read of a long log (or a catch-up read after a burst) printed to its end before it
    /// looked at the stop flag: SIGTERM during it did not end the dump after the record it was printing,
    /// as documented, but only once every record was out. The dump is held mid-read by a pipe nobody
    /// reads (its write blocks), so the signal lands while records are left.
    @Test("--follow: SIGTERM in the middle of a read ends the dump after the record it is printing")
    func followStopsMidRead() async throws {
        let (dir, log, _) = try await Self.followLog("dump-follow-mid-read", records: 2000)
        defer { LogTestKit.remove(dir) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try TxlogProcess.binary())
        // --hex: about 1.3 KB of output per record, 2.6 MB in all, far beyond the pipe's buffer.
        process.arguments = ["dump", dir, "--follow", "--hex"]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let fd = out.fileHandleForReading.fileDescriptor
        // The pipe full: the dump is blocked writing a record of its first read.
        let deadline = Date().addingTimeInterval(60)
        while true {
            var queued: Int32 = 0
            _ = ioctl(fd, UInt(FIONREAD), &queued)
            if queued >= 60_000 || !process.isRunning || Date() > deadline { break }
            try await Task.sleep(for: .milliseconds(5))
        }
        #expect(process.isRunning)
        kill(process.processIdentifier, SIGTERM)
        let printed = await onOwnThread { () -> Data in
            let data = out.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return data
        }
        #expect(process.terminationStatus == 0)
        let records = String(decoding: printed, as: UTF8.self).split(separator: "\n").filter { $0.contains("\tstream ") }.count
        #expect(records > 0 && records < 1000, "\(records) of 2000 records printed after SIGTERM")
        try log.close()
    }

    @Test("--follow --until-idle ends after the log stays unchanged; --until-idle without --follow is a usage error")
    func untilIdle() async throws {
        let (dir, log, _) = try await Self.followLog("dump-follow-idle", records: 5)
        defer { LogTestKit.remove(dir) }
        let child = try Child(["dump", dir, "--follow", "--until-idle", "0", "--json"], scratch: dir)
        #expect(try await child.exit() == 0, "\(child.stderr)")
        #expect(child.lines.count == 5)
        #expect(try await Self.run(["dump", dir, "--until-idle", "1"], scratch: dir).status == 64)
        #expect(try await Self.run(["dump", dir, "--follow", "--interval", "0"], scratch: dir).status == 64)
        #expect(try await Self.run(["dump", dir, "--follow", "--interval", "nan"], scratch: dir).status == 64)
        try log.close()
    }

    /// Writes `count` records of 2000 bytes to `stream`, moving every stream's base (and so the log's)
    /// past them as it goes: 3 MiB through a 1 MiB log reuses each container.
    static func recycle(_ log: LogStore, _ stream: LogStream, count: Int = 1500) throws {
        for i in 0..<count {
            let lsn = try stream.append(LogTestKit.textPayload(i, length: 2000))
            if i % 50 == 49 {
                try log.flush()
                try stream.advanceBase(to: lsn)
                try log.advanceBase(to: lsn)
            }
        }
        try log.flush()
    }

    /// The dump is stopped (SIGSTOP) while the writer recycles the containers past the last record it read;
    /// when it goes on, it cannot know what it missed: it says so and exits 3 (not-found), never 1 (damage).
    @Test("--follow whose resume point the writer recycled: a message and exit 3, not corruption")
    func followResumePointRecycled() async throws {
        let (dir, log, lsns) = try await Self.followLog("dump-follow-recycled", containers: 2, records: 5)
        defer { LogTestKit.remove(dir) }
        let last = try #require(lsns.last)
        let other = try log.createStream("other")
        let child = try Child(["dump", dir, "--follow", "--interval", "0.01"], scratch: dir)
        try await child.wait(until: { child.lines.count >= 5 })
        kill(child.process.processIdentifier, SIGSTOP)
        // A thread inside a read stops only when the read returns, with what it read: on a busy machine
        // that could be the first recycled records. Wait until every thread has stopped.
        try await child.waitUntilStopped()
        try await onOwnThread { try Self.recycle(log, other) }
        #expect(log.baseLSN > last)
        kill(child.process.processIdentifier, SIGCONT)
        #expect(try await child.exit() == 3, "\(child.stderr)")
        #expect(child.stderr.contains("not-found: dump --follow cannot go on after"), "\(child.stderr)")
        #expect(!child.stderr.contains("corrupt"), "\(child.stderr)")
        #expect(child.lines.count == 5)
        try log.close()
    }

    /// The base moves past the dump's resume point while an archive tail keeps the records from there on
    /// (readable, as CLFS keeps the records between the archive tail and the base): the dump goes on and
    /// prints every record after it. It used to compare the resume point with the base alone, say the
    /// records after it were recycled, and exit 3.
    @Test("--follow whose resume point the base passed, kept by an archive tail: the dump goes on")
    func followResumePointKeptByArchiveTail() async throws {
        let (dir, log, lsns, other, child) = try await DumpArchiveToolTests.stoppedFollower(
            "dump-follow-archived", ["--follow", "--interval", "0.01", "--limit", "25"])
        defer { LogTestKit.remove(dir) }
        let last = try #require(lsns.last)
        let more = try await DumpArchiveToolTests.appendAndPassBase(log, other)
        #expect(log.baseLSN > last && log.oldestReadableLSN == lsns.first)
        kill(child.process.processIdentifier, SIGCONT)
        #expect(try await child.exit() == 0, "\(child.stderr)")
        #expect(child.lines.map { $0.split(separator: "\t").first.map(String.init) } == (lsns + more).map(\.description), "\(child.stderr)")
        try log.close()
    }

    /// A dump of a quiet stream on a log that other streams keep recycling: it read to the end of the log
    /// before the base moved, so nothing of its stream was missed, and it goes on (it used to resume from
    /// the stream's last record, by then below the base, and exit 3).
    @Test("--follow --stream of a quiet stream goes on when other streams move the log's base past its last record")
    func followQuietStream() async throws {
        let (dir, log, lsns) = try await Self.followLog("dump-follow-quiet", containers: 2, records: 5)
        defer { LogTestKit.remove(dir) }
        let other = try log.createStream("other")
        var end = LSN.null
        for i in 0..<100 { end = try other.append(LogTestKit.textPayload(i, length: 2000)) }
        try await log.flush()
        let child = try Child(["dump", dir, "--follow", "--stream", "default", "--interval", "0.01", "--limit", "6"], scratch: dir)
        try await child.wait(until: { child.lines.count >= 5 })
        // Its first read saw the whole log (written before it started); only the base moves now.
        try other.advanceBase(to: end)
        try log.advanceBase(to: end)
        let fifth = try #require(lsns.last)
        #expect(log.baseLSN > fifth)
        let sixth = try log.append(Array("the sixth record of the default stream".utf8))
        try await log.flush()
        #expect(try await child.exit() == 0, "\(child.stderr)")
        #expect(child.lines.map { $0.split(separator: "\t").first.map(String.init) } == (lsns + [sixth]).map(\.description))
        try log.close()
    }

    /// The followed log's directory replaced by another log (moved away, another moved to its path): the
    /// dump read on in the other log after the LSN it had reached in the first, printing the other log's
    /// records as if they were the followed log's.
    @Test("--follow of a log replaced by another at its path stops (exit 2), printing none of the other log's records")
    func followReplacedLog() async throws {
        let (dir, log, lsns) = try await Self.followLog("dump-follow-replaced", records: 10)
        let scratch = LogTestKit.temporaryPath("dump-follow-replaced-scratch")
        let other = LogTestKit.temporaryPath("dump-follow-replaced-other")
        defer {
            LogTestKit.remove(dir)
            LogTestKit.remove(dir + ".old")
            LogTestKit.remove(scratch)
            LogTestKit.remove(other)
        }
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        let second = try LogStore.create(at: other, options: LogTestKit.options(containerSize: 512 * 1024, containerCount: 4, blockSize: 4096, codec: .none))
        for i in 0..<30 { _ = try second.append(LogTestKit.textPayload(1000 + i, length: 300)) }
        try second.close()
        let child = try Child(["dump", dir, "--follow", "--interval", "0.01"], scratch: scratch)
        try await child.wait(until: { child.lines.count >= 10 })
        try log.close()
        #expect(rename(dir, dir + ".old") == 0)
        #expect(rename(other, dir) == 0)
        let status = try await child.exit()
        #expect(status == 2, "\(child.stderr)")
        #expect(child.lines.map { $0.split(separator: "\t").first.map(String.init) } == lsns.map(\.description))
    }
}
