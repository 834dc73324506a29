import Foundation
import LogStore
import Testing
import TxLogTestSupport

/// Bad arguments to every txlog subcommand are a usage error (exit 64), never a trap or a hang, and a
/// check never passes on acknowledgements it could not read (docs/tools/txlog.md, "Exit codes").
@Suite("txlog arguments", .serialized)
struct ToolArgumentTests {
    static func scratch() throws -> String {
        let dir = NSTemporaryDirectory() + "txlog-args-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    static func smallLog(in scratch: String) throws -> String {
        let dir = scratch + "/log"
        var options = LogCreateOptions()
        options.containerSize = 512 << 10
        options.blockSize = 1024
        let log = try LogStore.create(at: dir, options: options)
        var lsns: [LSN] = []
        for i in 0..<100 { lsns.append(try log.append(Array("record \(i)".utf8))) }
        try log.flush()
        // The base moves past the first block: an LSN there names a record no longer in the log.
        try log.advanceBase(to: lsns[80])
        try log.close()
        return dir
    }

    static func expectUsage(_ e: TxlogProcess.Ended, _ args: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(
            e.status == 64 && !e.killed && !e.stderr.contains("Fatal error") && !e.stderr.contains("Backtrace"),
            "\(args): status \(e.status), stderr \(e.stderr.prefix(400))", sourceLocation: sourceLocation)
    }

    /// `stress run --writers=-1` trapped (a negative range), `--seconds=-1` ran forever (only 0 means "until
    /// killed"), a record size beyond any log's largest record aborted allocating it, one below the help's
    /// "at least 20" (or negative) wrote 20-byte records instead; `stress-restart run`
    /// trapped on a negative `--rounds` or `--records`.
    @Test("stress and stress-restart: negative or impossible values are exit 64, never a trap or a hang")
    func stressArguments() async throws {
        let scratch = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let log = try Self.smallLog(in: scratch)
        let cases: [[String]] = [
            ["stress", "run", log, "--writers=-1", "--seconds", "1"],
            ["stress", "run", log, "--writers", "1", "--seconds=-1"],
            ["stress", "run", log, "--writers", "1", "--seconds", "nan"],
            ["stress", "run", log, "--writers", "1", "--seconds", "1", "--record-size", "100000000000"],
            ["stress", "run", log, "--writers", "1", "--seconds", "1", "--flush-every", "0"],
            // Below the 20 bytes of a record's self-check header (also negative): it wrote 20-byte records.
            ["stress", "run", log, "--writers", "1", "--seconds", "1", "--record-size", "19"],
            ["stress", "run", log, "--writers", "1", "--seconds", "1", "--record-size=-5"],
            ["stress-restart", "run", log, "--rounds=-1"],
            ["stress-restart", "run", log, "--rounds", "1", "--records=-1"],
            ["stress-restart", "run", log, "--rounds", "1", "--kill-at=-1"],
        ]
        for args in cases {
            Self.expectUsage(try await TxlogProcess.run(args, scratch: scratch, hangAfter: 30), args)
        }
    }

    /// `workload run /var/lib/app/log` (a log's path, not a workload directory) created the bank's log and
    /// stores inside the log's directory, `log/` and `data/` beside its containers.
    @Test("workload run and churn refuse a directory that is a log (exit 64), creating nothing in it")
    func workloadInALog() async throws {
        let scratch = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let log = try Self.smallLog(in: scratch)
        let files = try FileManager.default.contentsOfDirectory(atPath: log).sorted()
        for args in [["workload", "run", log, "--seconds", "0.1"], ["workload", "churn", log, "--seconds", "0.1"]] {
            let e = try await TxlogProcess.run(args, scratch: scratch, hangAfter: 60)
            Self.expectUsage(e, args)
            #expect(e.stderr.contains("is a log, not a workload directory"), "\(args): \(e.stderr)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: log).sorted() == files, "\(args)")
        }
    }

    /// `bench append --sizes=-1`, `bench compress --mib=-1` and `bench online` with a negative
    /// `--repeats` or `--commits-after-checkpoint` trapped.
    @Test("bench: negative sizes and counts are exit 64, never a trap")
    func benchArguments() async throws {
        let scratch = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let cases: [[String]] = [
            ["bench", "append", "--sizes=-1"],
            ["bench", "compress", "--mib=-1"],
            ["bench", "online", "--size-mib", "128", "--repeats=-1"],
            ["bench", "online", "--size-mib", "128", "--commits-after-checkpoint=-1"],
            ["bench", "commit", "--writers", "1", "--record-size", "100000000000"],
        ]
        for args in cases {
            let full = args + ["--dir", scratch, "--seconds", "0.1"]
            Self.expectUsage(try await TxlogProcess.run(full, scratch: scratch, hangAfter: 60), full)
        }
    }

    /// `stress check` and `stress-restart check` read a missing `--acks` file as "nothing acknowledged" and
    /// printed `ok` (exit 0): a harness with a typo in the path passed every run. Like `workload check`, they
    /// now fail to start (exit 2) and name the file.
    @Test("stress check and stress-restart check: unreadable acknowledgements are exit 2, not ok")
    func checksWithUnreadableAcks() async throws {
        let scratch = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let log = try Self.smallLog(in: scratch)
        let missing = scratch + "/no-such-acks.txt"
        for command in ["stress", "stress-restart"] {
            let e = try await TxlogProcess.run([command, "check", log, "--acks", missing], scratch: scratch, hangAfter: 30)
            #expect(e.status == 2 && !e.stdout.contains("ok") && e.stderr.contains(missing), "\(command): \(e.status) \(e.stdout) \(e.stderr)")
        }
        // A readable file still works (an empty one acknowledges nothing).
        let empty = scratch + "/acks.txt"
        _ = FileManager.default.createFile(atPath: empty, contents: Data())
        let ok = try await TxlogProcess.run(["stress", "check", log, "--acks", empty], scratch: scratch, hangAfter: 30)
        #expect(ok.status == 1 || ok.status == 0, "\(ok.status) \(ok.stderr)")
    }

    /// `dump --from` an LSN that names no record (below the base, or a slot past its block's records) exited 1,
    /// the code for damage, on an undamaged log; an LSN past the end was already a usage error (64). Then it
    /// exited 64 with the cursor's `not-found:` where a usage error says `invalid-argument:` (the end's did).
    @Test("dump --from an LSN that names no record: exit 64 (a bad value), not 1 (damage)")
    func dumpFromNoRecord() async throws {
        let scratch = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let log = try Self.smallLog(in: scratch)
        let base = try LogStore.open(at: log, options: LogOpenOptions(readOnly: true)).baseLSN
        #expect(base.blockOffset > 4096)
        let pastRecords = LSN(container: 1, blockOffset: base.blockOffset, slot: 500)!
        for from in ["1:4096:0", pastRecords.description, "99:4096:0"] {
            // A stream's cursor starts at the stream's base for an LSN below the log's base (LogStream.records(from:)).
            for stream in from == "1:4096:0" ? [[]] : [[], ["--stream", "default"]] {
                let args = ["dump", log, "--from", from] + stream
                let e = try await TxlogProcess.run(args, scratch: scratch, hangAfter: 30)
                #expect(e.status == 64 && e.stderr.hasPrefix("txlog: invalid-argument: ") && !e.stderr.contains("corrupt"), "\(args): \(e.status) \(e.stderr)")
            }
        }
        let ok = try await TxlogProcess.run(["dump", log, "--from", base.description, "--limit", "1"], scratch: scratch, hangAfter: 30)
        #expect(ok.status == 0 && ok.stdout.hasPrefix("\(base)\t"), "\(ok.status) \(ok.stdout) \(ok.stderr)")
    }
}

extension ToolArgumentTests {
    /// `containers remove` of a container holding records printed "removed container N" although the
    /// container stays, pending delete, until the base passes it; `info` then showed "-" for its logical
    /// id (it printed one only for `active`), while `containers list` showed it.
    /// A log of 2 containers whose logical container 1 (physical 0) is full and still needed, and a
    /// third, free container (so one may be removed).
    static func fillFirstContainer(_ dir: String) throws {
        var options = LogCreateOptions()
        options.containerSize = 512 << 10
        options.blockSize = 1024
        let log = try LogStore.create(at: dir, options: options)
        while log.info().containers.filter({ $0.state == .active }).count < 2 { try log.append([UInt8](repeating: 7, count: 900)) }
        try log.flush()
        _ = try log.addContainer()
        try log.close()
    }

    @Test("containers remove of a data-holding container says pending delete; info shows its logical id")
    func removeDataHoldingContainer() async throws {
        let scratch = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let dir = scratch + "/log"
        try Self.fillFirstContainer(dir)
        let removed = try await TxlogProcess.run(["containers", "remove", dir, "0"], scratch: scratch, hangAfter: 30)
        #expect(removed.status == 0 && removed.stdout.contains("pending delete") && !removed.stdout.contains("removed container 0"),
                "\(removed.status) \(removed.stdout) \(removed.stderr)")
        let info = try await TxlogProcess.run(["info", dir], scratch: scratch, hangAfter: 30)
        #expect(info.stdout.contains("container 0  pending-delete  logical 1  "), "\(info.stdout)")
    }
}

extension ToolArgumentTests {
    /// `txlog demo DIR` removed DIR recursively before it started, whatever it held: `txlog demo` pointed at
    /// a real log (or a home directory) by mistake deleted it. It now replaces only a previous demo's
    /// directory and refuses anything else (exit 64), leaving it untouched.
    @Test("demo refuses to delete a directory that is not a previous demo's (a log), and a file")
    func demoKeepsOtherDirectories() async throws {
        let scratch = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let log = try Self.smallLog(in: scratch)
        let file = scratch + "/notes.txt"
        _ = FileManager.default.createFile(atPath: file, contents: Data("keep me".utf8))
        // Directories holding only names a demo uses, but not made by a demo (no child-stderr.txt): a workload
        // run as `workload run DIR/bank`, and a harness's acknowledgements. They were deleted.
        let workload = scratch + "/workload", harness = scratch + "/harness"
        try FileManager.default.createDirectory(atPath: workload + "/bank/log", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: harness, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: harness + "/acks.txt", contents: Data("keep me\n".utf8))
        for target in [log, file, scratch, workload, harness] {
            let e = try await TxlogProcess.run(["demo", target, "--seconds", "0.2", "--clients", "1"], scratch: scratch, hangAfter: 60)
            #expect(e.status == 64 && e.stderr.contains("not a previous demo"), "\(target): \(e.status) \(e.stderr.prefix(300))")
        }
        #expect(FileManager.default.fileExists(atPath: log + "/txlog.base") && FileManager.default.fileExists(atPath: file))
        #expect(try FileManager.default.contentsOfDirectory(atPath: workload) == ["bank"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: harness) == ["acks.txt"])
        #expect(try String(contentsOfFile: harness + "/acks.txt", encoding: .utf8) == "keep me\n")
        // A previous demo's directory is replaced (what `make demo` relies on).
        let demo = scratch + "/demo"
        for _ in 0..<2 {
            let e = try await TxlogProcess.run(["demo", demo, "--seconds", "0.5", "--clients", "1"], scratch: scratch, hangAfter: 120)
            #expect(e.status == 0, "\(e.status) \(e.stderr.prefix(300))")
        }
    }
}

extension ToolArgumentTests {
    /// `containers add --count N` beyond the format's 1024 containers added (and zero-filled) containers up to
    /// the limit and then failed with exit 64: a usage error that had changed the log. It is refused first.
    @Test("containers add --count past the format's limit: exit 64 and nothing added")
    func addTooManyContainers() async throws {
        let scratch = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let log = try Self.smallLog(in: scratch)
        let e = try await TxlogProcess.run(["containers", "add", log, "--count", "1023"], scratch: scratch, hangAfter: 120)
        #expect(e.status == 64 && e.stdout.isEmpty, "\(e.status) \(e.stdout.suffix(200)) \(e.stderr)")
        let after = try LogStore.open(at: log, options: LogOpenOptions(readOnly: true)).info().containers.count
        #expect(after == 2)
        let ok = try await TxlogProcess.run(["containers", "add", log, "--count", "2"], scratch: scratch, hangAfter: 60)
        #expect(ok.status == 0, "\(ok.stderr)")
    }
}

extension ToolArgumentTests {
    /// `workload check --acks FILE` trapped (index out of range) on a line naming store -1: the store number
    /// indexed the stores' markers after checking only `< 2`. Such a line is an unreadable acknowledgement,
    /// a violation (exit 1).
    @Test("workload check: an acknowledgement naming a store outside 0...1 is a violation, not a trap")
    func workloadCheckBadStoreNumber() async throws {
        let scratch = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let bank = scratch + "/bank"
        let run = try await TxlogProcess.run(["workload", "run", bank, "--clients", "1", "--seconds", "0.3", "--accounts", "10"], scratch: scratch, hangAfter: 120)
        #expect(run.status == 0, "\(run.stderr)")
        for line in ["x -1:5 0:3 10", "x 7:5 0:3 10", "x 0:5 -3:3 10"] {
            let acks = scratch + "/acks.txt"
            _ = FileManager.default.createFile(atPath: acks, contents: Data((line + "\n").utf8))
            let e = try await TxlogProcess.run(["workload", "check", bank, "--acks", acks], scratch: scratch, hangAfter: 120)
            #expect(e.status == 1 && e.stdout.contains("VIOLATION") && !e.stderr.contains("Fatal error"), "\(line): \(e.status) \(e.stdout) \(e.stderr.prefix(300))")
        }
    }

    /// `create --help` showed the size defaults as `(default: ByteCount(value: 67108864))`.
    @Test("create --help shows size defaults as sizes (64M, 64K), not as a struct")
    func createHelpDefaults() async throws {
        let scratch = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let e = try await TxlogProcess.run(["create", "--help"], scratch: scratch, hangAfter: 30)
        #expect(e.status == 0 && !e.stdout.contains("ByteCount("), "\(e.stdout)")
        #expect(e.stdout.contains("(default: 64M)") && e.stdout.contains("(default: 64K)"), "\(e.stdout)")
    }
}

extension ToolArgumentTests {
    /// docs/tools/txlog.md: read commands open the log read-only, and commands that change a log say so in
    /// their --help. `stress-restart run`, `workload run` and `workload check` (whose recovery writes) did not.
    @Test("every subcommand's --help says whether it changes the log or only reads it")
    func helpSaysWhetherACommandWrites() async throws {
        let scratch = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let changing = [
            ["create"], ["containers", "add"], ["containers", "remove"], ["policy", "set"], ["tm", "resolve"], ["stress", "run"],
            ["stress-restart", "run"], ["workload", "run"], ["workload", "check"], ["demo"],
        ]
        let reading = [
            ["info"], ["containers", "list"], ["streams"], ["policy", "show"], ["dump"], ["verify"], ["stats"], ["map"], ["tm", "list"],
            ["tm", "transactions"], ["tm", "audit"], ["stress", "check"], ["stress-restart", "check"],
        ]
        for command in changing + reading {
            let e = try await TxlogProcess.run(command + ["--help"], scratch: scratch, hangAfter: 30)
            // The overview, before USAGE, with its line breaks undone.
            let overview = (e.stdout.components(separatedBy: "USAGE:").first ?? "").split(whereSeparator: \.isWhitespace).joined(separator: " ")
            let says = changing.contains(command) ? "(changes the" : "(read-only)"
            #expect(e.status == 0 && overview.contains(says), "\(command): \(overview)")
        }
    }

    /// `map --svg LOG/txlog.base` wrote the picture over the base file (atomically: the log no longer
    /// opened), and a container's name replaced that container: a read command destroyed the log. An SVG in
    /// the log's directory is refused, before anything is written.
    @Test("map --svg into the log's own directory is a usage error, and the log's files are left as they were")
    func mapSVGIntoTheLog() async throws {
        let scratch = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let log = try Self.smallLog(in: scratch)
        func files() throws -> [String: Data] {
            var out: [String: Data] = [:]
            for name in try FileManager.default.contentsOfDirectory(atPath: log) {
                out[name] = try Data(contentsOf: URL(fileURLWithPath: log + "/" + name))
            }
            return out
        }
        let before = try files()
        let targets = [log + "/txlog.base", log + "/container-000000", log + "/map.svg", scratch + "/../" + URL(fileURLWithPath: scratch).lastPathComponent + "/log/x.svg"]
        for target in targets {
            let args = ["map", log, "--svg", target]
            let e = try await TxlogProcess.run(args, scratch: scratch, hangAfter: 30)
            Self.expectUsage(e, args)
            #expect(e.stderr.hasPrefix("txlog: invalid-argument: --svg") && e.stdout.isEmpty, "\(args): \(e.stderr)")
        }
        #expect(try files() == before, "the log's directory is unchanged")
        let outside = try await TxlogProcess.run(["map", log, "--svg", scratch + "/map.svg"], scratch: scratch, hangAfter: 30)
        #expect(outside.status == 0 && FileManager.default.fileExists(atPath: scratch + "/map.svg"), "\(outside.stderr)")
    }
}
