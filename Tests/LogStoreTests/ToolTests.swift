import Foundation
import LogStore
import Testing
import TxLogTestSupport

/// The built `txlog` binary, end to end: read commands on a real log (text and JSON), and on damaged logs
/// (bit flips, a truncated or missing container, a garbage base file), with their exit codes.
/// See docs/tools/txlog.md for the schemas asserted here.
@Suite("txlog end to end", .serialized)
struct ToolTests {
    static var txlog: String { TxlogProcess.path }

    struct Run {
        var status: Int32
        var out: String
        var err: String
        var json: Any? { try? JSONSerialization.jsonObject(with: Data(out.utf8)) }
        var object: [String: Any] { (json as? [String: Any]) ?? [:] }
    }

    static func run(_ args: [String]) throws -> Run {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: txlog)
        p.arguments = args
        var env = ProcessInfo.processInfo.environment
        env["NO_COLOR"] = "1"
        p.environment = env
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        // Read both pipes concurrently enough for our small outputs: stdout first, then stderr.
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Run(status: p.terminationStatus, out: String(decoding: o, as: UTF8.self), err: String(decoding: e, as: UTF8.self))
    }

    /// What the fixture log holds.
    struct Fixture {
        var dir: String
        var defaultRecords = 0
        var ktmRecords = 0
        var ktmBytes = 0
        var restarts = 0
    }

    /// A log of 4 × 512 KiB containers with 4 KiB blocks: default-stream and "ktm" records over two
    /// logical containers, two restart areas, closed cleanly.
    static func makeLog() throws -> Fixture {
        let dir = NSTemporaryDirectory() + "txlog-tool-\(UUID().uuidString)"
        var options = LogCreateOptions()
        options.containerSize = 512 << 10
        options.containerCount = 4
        options.blockSize = 4096
        options.codec = .lz4
        return try removingOnThrow(dir) {
            let log = try LogStore.create(at: dir, options: options)
            let ktm = try log.createStream("ktm")
            var f = Fixture(dir: dir)
            var previous = LSN.invalid
            for i in 0..<1800 {
                // Half compressible text, half incompressible-ish numbers, so lz4 has something to do.
                let text = Array("record \(i) of the default stream; ".utf8) + Array(repeating: UInt8(i % 7), count: 300)
                try log.append(text)
                f.defaultRecords += 1
                if i % 3 == 0 {
                    let payload = Array("ktm \(i)".utf8) + (0..<200).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ i) }
                    previous = try ktm.append(payload, previous: previous, undoNext: previous)
                    f.ktmRecords += 1
                    f.ktmBytes += payload.count
                }
                if i == 900 || i == 1700 {
                    try ktm.writeRestartArea(Array("checkpoint \(i)".utf8))
                    f.restarts += 1
                    f.ktmRecords += 1
                    f.ktmBytes += "checkpoint \(i)".utf8.count
                }
            }
            try log.flush()
            try log.close()
            return f
        }
    }

    static func copy(_ f: Fixture) throws -> String {
        let to = NSTemporaryDirectory() + "txlog-tool-\(UUID().uuidString)"
        try removingOnThrow(to) { try FileManager.default.copyItem(atPath: f.dir, toPath: to) }
        return to
    }

    static func flip(_ path: String, at offset: UInt64) throws {
        let h = try #require(FileHandle(forUpdatingAtPath: path))
        defer { try? h.close() }
        try h.seek(toOffset: offset)
        let byte = try #require(try h.read(upToCount: 1)?.first)
        try h.seek(toOffset: offset)
        try h.write(contentsOf: [byte ^ 0x10])
    }

    /// The JSON lines of `dump --json`.
    static func lines(_ r: Run) -> [[String: Any]] {
        r.out.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    @Test("read commands on a clean log: text, JSON and exit codes")
    func cleanLog() throws {
        #expect(FileManager.default.isExecutableFile(atPath: Self.txlog), "build txlog first: \(Self.txlog)")
        let f = try Self.makeLog()
        defer { try? FileManager.default.removeItem(atPath: f.dir) }

        let info = try Self.run(["info", f.dir, "--json"])
        #expect(info.status == 0, "\(info.err)")
        #expect(info.object["blockSize"] as? Int == 4096)
        #expect((info.object["containers"] as? [[String: Any]])?.count == 4)
        #expect(info.object["cleanShutdown"] as? Bool == true)
        let text = try Self.run(["info", f.dir])
        #expect(text.status == 0 && text.out.contains("block size") && text.out.contains("last LSN"))

        let streams = try Self.run(["streams", f.dir, "--json"])
        let list = try #require(streams.json as? [[String: Any]])
        #expect(list.map { $0["name"] as? String } == ["", "ktm"])
        #expect((list[1]["restartLSN"] as? String).flatMap { LSN($0) }?.isValid == true)

        // dump: every record once, in LSN order, with the documented fields.
        let dump = try Self.run(["dump", f.dir, "--json"])
        #expect(dump.status == 0, "\(dump.err)")
        let records = Self.lines(dump)
        #expect(records.count == f.defaultRecords + f.ktmRecords)
        let lsns = records.compactMap { ($0["lsn"] as? String).flatMap { LSN($0) } }
        #expect(lsns.count == records.count && lsns == lsns.sorted())
        for key in ["lsn", "type", "stream", "streamName", "previous", "undoNext", "length", "data"] {
            #expect(records.first?[key] != nil, "dump --json lacks \(key)")
        }
        let ktm = Self.lines(try Self.run(["dump", f.dir, "--json", "--stream", "ktm"]))
        #expect(ktm.count == f.ktmRecords && ktm.allSatisfy { $0["streamName"] as? String == "ktm" })
        // The previous link of a ktm record names the ktm record before it.
        let data = ktm.filter { $0["type"] as? String == "data" }
        #expect(data.count >= 2 && data[1]["previous"] as? String == data[0]["lsn"] as? String)
        let restarts = Self.lines(try Self.run(["dump", f.dir, "--json", "--type", "restart"]))
        #expect(restarts.count == f.restarts)
        let ranged = Self.lines(try Self.run(["dump", f.dir, "--json", "--from", "\(lsns[10])", "--to", "\(lsns[19])"]))
        #expect(ranged.count == 10)
        let hex = try Self.run(["dump", f.dir, "--limit", "1", "--hex"])
        #expect(hex.status == 0 && hex.out.contains("00000000: 72 65 63 6f 72 64"))  // "record"

        // verify: clean, exit 0.
        let verify = try Self.run(["verify", f.dir, "--json"])
        #expect(verify.status == 0, "\(verify.out)\(verify.err)")
        #expect(verify.object["ok"] as? Bool == true)
        #expect(verify.object["records"] as? Int == f.defaultRecords + f.ktmRecords)
        #expect((verify.object["problems"] as? [Any])?.isEmpty == true)
        #expect((verify.object["baseSlots"] as? [[String: Any]])?.contains { $0["state"] as? String == "current" } == true)
        let verifyText = try Self.run(["verify", f.dir])
        #expect(verifyText.status == 0 && verifyText.out.contains("ok: the log is clean"))

        // stats: totals agree with what was written.
        let stats = try Self.run(["stats", f.dir, "--json"])
        #expect(stats.status == 0, "\(stats.err)")
        #expect(stats.object["records"] as? Int == f.defaultRecords + f.ktmRecords)
        let perStream = stats.object["streams"] as? [[String: Any]] ?? []
        let ktmRow = perStream.first { $0["name"] as? String == "ktm" }
        #expect(ktmRow?["records"] as? Int == f.ktmRecords)
        #expect(ktmRow?["dataBytes"] as? Int == f.ktmBytes)
        let codecs = stats.object["codecs"] as? [[String: Any]] ?? []
        #expect(codecs.contains { $0["codec"] as? String == "lz4" && ($0["ratio"] as? Double ?? 0) > 1 })
        #expect((stats.object["fsyncBatches"] as? [String: Any])?["available"] as? Bool == false)
        let fill = stats.object["blockFill"] as? [String: Any]
        #expect((fill?["mean"] as? Double ?? 0) > 0)

        // map: one row per container, markers, a legend; --svg writes a picture.
        let svg = f.dir + ".svg"
        defer { try? FileManager.default.removeItem(atPath: svg) }
        let map = try Self.run(["map", f.dir, "--width", "32", "--svg", svg])
        #expect(map.status == 0, "\(map.err)")
        #expect(map.out.contains("ktm"))
        // Marker lines sit under the cells (indented past the 30-character row label).
        let markers = map.out.split(separator: "\n").filter { $0.hasPrefix(String(repeating: " ", count: 30)) }.joined()
        #expect(markers.contains("B") && markers.contains("E") && markers.contains("R"), "\(map.out)")
        #expect(map.out.contains("active") && map.out.contains("free"))
        #expect(map.err.isEmpty, "nothing on stderr when it is not a terminal")
        let picture = try String(contentsOfFile: svg, encoding: .utf8)
        #expect(picture.hasPrefix("<?xml") && picture.contains("<svg") && picture.hasSuffix("</svg>\n"))

        // Usage errors exit 64.
        #expect(try Self.run(["map", f.dir, "--width", "3"]).status == 64)
        #expect(try Self.run(["dump", f.dir, "--type", "bogus"]).status == 64)
        #expect(try Self.run(["verify"]).status == 64)
        #expect(try Self.run(["dump", f.dir, "--stream", "nope"]).status == 64)
    }

    @Test("bit flips: verify reports LSN, container and offset; --keep-going reports each")
    func bitFlips() throws {
        let f = try Self.makeLog()
        defer { try? FileManager.default.removeItem(atPath: f.dir) }
        let dir = try Self.copy(f)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Two blocks of the oldest logical container (a closed one, which recovery never scans).
        let records = Self.lines(try Self.run(["dump", f.dir, "--json"]))
        let blocks = Array(Set(records.compactMap { ($0["lsn"] as? String).flatMap { LSN($0)?.blockLSN } })).sorted()
        let oldest = try #require(blocks.first).container
        let inOldest = blocks.filter { $0.container == oldest }
        #expect(inOldest.count > 10)
        let info = try Self.run(["info", f.dir, "--json"]).object
        let row = (info["containers"] as? [[String: Any]])?.first { $0["logicalID"] as? Int == Int(oldest) }
        let physical = try #require(row?["physicalID"] as? Int)
        let path = try #require(row?["path"] as? String).replacingOccurrences(of: f.dir, with: dir)
        let first = inOldest[2], second = inOldest[8]
        try Self.flip(path, at: first.blockOffset + 40)  // the durable hint: covered by the CRC
        try Self.flip(path, at: second.blockOffset + 64 + 3)  // the payload

        let one = try Self.run(["verify", dir, "--json"])
        #expect(one.status == 1)
        let problems = one.object["problems"] as? [[String: Any]] ?? []
        #expect(problems.count == 1 && one.object["complete"] as? Bool == false)
        #expect(problems.first?["lsn"] as? String == first.description)
        #expect(problems.first?["container"] as? Int == physical)
        #expect(problems.first?["offset"] as? Int == Int(first.blockOffset))
        let text = try Self.run(["verify", dir])
        #expect(text.status == 1 && text.out.contains("lsn \(first)") && text.out.contains("container \(physical)")
            && text.out.contains("offset \(first.blockOffset)"))

        let all = try Self.run(["verify", dir, "--keep-going", "--json"])
        #expect(all.status == 1)
        let every = (all.object["problems"] as? [[String: Any]] ?? []).compactMap { $0["lsn"] as? String }
        #expect(every == [first.description, second.description], "\(all.out)")
        // Everything else was still read.
        #expect((all.object["blocks"] as? Int ?? 0) == blocks.count - 2)

        // stats and map still work, skip the damage and exit 1.
        let stats = try Self.run(["stats", dir, "--json"])
        #expect(stats.status == 1 && stats.object["damagedBlocks"] as? Int == 2)
        let map = try Self.run(["map", dir])
        #expect(map.status == 1 && map.out.contains("X"))
        // dump stops at the damage with one line and exit 1.
        let dump = try Self.run(["dump", dir])
        #expect(dump.status == 1 && dump.err.split(separator: "\n").count == 1 && dump.err.contains("corrupt"))
    }

    @Test("dump --stats at damage prints the counts before it, then the error, and exits 1")
    func dumpStatsAtDamage() throws {
        let f = try Self.makeLog()
        defer { try? FileManager.default.removeItem(atPath: f.dir) }
        let dir = try Self.copy(f)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let records = Self.lines(try Self.run(["dump", f.dir, "--json"])).compactMap { ($0["lsn"] as? String).flatMap { LSN($0) } }
        let blocks = Array(Set(records.map(\.blockLSN))).sorted()
        // In the oldest logical container: a closed one, which recovery never scans (so the open finds nothing).
        let inOldest = blocks.filter { $0.container == blocks.first?.container }
        #expect(inOldest.count > 4)
        let damaged = inOldest[inOldest.count / 2]
        let info = try Self.run(["info", f.dir, "--json"]).object
        let row = (info["containers"] as? [[String: Any]])?.first { $0["logicalID"] as? Int == Int(damaged.container) }
        try Self.flip(try #require(row?["path"] as? String).replacingOccurrences(of: f.dir, with: dir), at: damaged.blockOffset + 64 + 3)
        let before = records.filter { $0 < damaged }

        let json = try Self.run(["dump", dir, "--stats", "--json"])
        #expect(json.status == 1 && json.err.split(separator: "\n").count == 1 && json.err.contains("corrupt"), "\(json.err)")
        #expect(json.object["records"] as? Int == before.count, "\(json.out)")
        #expect(json.object["lastLSN"] as? String == before.last?.description)
        #expect(json.object["complete"] as? Bool == false)
        #expect((json.object["error"] as? String)?.hasPrefix("corrupt:") == true, "\(json.out)")
        let text = try Self.run(["dump", dir, "--stats"])
        #expect(text.status == 1 && text.out.hasPrefix("records      \(before.count),") && text.out.contains("\npartial "), "\(text.out)")
        #expect(text.err.split(separator: "\n").count == 1 && text.err.contains("corrupt"), "\(text.err)")
        let whole = try Self.run(["dump", f.dir, "--stats", "--json"])
        #expect(whole.status == 0 && whole.object["complete"] as? Bool == true && whole.object["error"] == nil)
    }

    @Test("damaged metadata and files: one clear line each, with its exit code")
    func damagedFiles() throws {
        let f = try Self.makeLog()
        defer { try? FileManager.default.removeItem(atPath: f.dir) }
        func oneLine(_ r: Run, _ needle: String, _ status: Int32, sourceLocation: SourceLocation = #_sourceLocation) {
            #expect(r.status == status, "\(r.err)", sourceLocation: sourceLocation)
            #expect(r.err.split(separator: "\n").count == 1, "not one line: \(r.err)", sourceLocation: sourceLocation)
            #expect(r.err.contains(needle), "\(r.err)", sourceLocation: sourceLocation)
            #expect(!r.err.contains("Fatal error") && !r.err.contains("Stack"), sourceLocation: sourceLocation)
        }

        // A truncated container: damage (1) for every command, named in one line.
        let truncated = try Self.copy(f)
        defer { try? FileManager.default.removeItem(atPath: truncated) }
        let h = try #require(FileHandle(forUpdatingAtPath: truncated + "/container-000001"))
        try h.truncate(atOffset: 100_000)
        try h.close()
        oneLine(try Self.run(["info", truncated]), "container 1 is 100000 bytes, expected 524288", 1)
        let v = try Self.run(["verify", truncated, "--json"])
        #expect(v.status == 1 && (v.object["problems"] as? [[String: Any]])?.first?["container"] as? Int == 1)

        // A missing container: cannot open (2).
        let missing = try Self.copy(f)
        defer { try? FileManager.default.removeItem(atPath: missing) }
        try FileManager.default.removeItem(atPath: missing + "/container-000002")
        oneLine(try Self.run(["verify", missing]), "container 2 is missing", 2)
        oneLine(try Self.run(["info", missing]), "container 2 is missing", 2)

        // A base file of garbage: not a log (2).
        let garbage = try Self.copy(f)
        defer { try? FileManager.default.removeItem(atPath: garbage) }
        var g = SystemRandomNumberGenerator()
        try Data((0..<(512 << 10)).map { _ in UInt8.random(in: 0...255, using: &g) }).write(to: URL(fileURLWithPath: garbage + "/txlog.base"))
        oneLine(try Self.run(["verify", garbage]), "not a TxLog log", 2)
        oneLine(try Self.run(["stats", garbage]), "not a TxLog log", 2)

        // An empty base file: not a log either (2), like any file without the signature.
        let emptyBase = try Self.copy(f)
        defer { try? FileManager.default.removeItem(atPath: emptyBase) }
        try Data().write(to: URL(fileURLWithPath: emptyBase + "/txlog.base"))
        oneLine(try Self.run(["verify", emptyBase]), "not a TxLog log", 2)
        oneLine(try Self.run(["info", emptyBase]), "not a TxLog log", 2)

        // A base file whose both slots are damaged (the signature is there): corruption (1).
        let slots = try Self.copy(f)
        defer { try? FileManager.default.removeItem(atPath: slots) }
        try Self.flip(slots + "/txlog.base", at: 40)
        try Self.flip(slots + "/txlog.base", at: 256 * 1024 + 40)
        oneLine(try Self.run(["info", slots]), "base file has no valid copy", 1)
        let vs = try Self.run(["verify", slots, "--json"])
        #expect(vs.status == 1 && (vs.object["problems"] as? [[String: Any]])?.first?["kind"] as? String == "base")

        // One damaged slot: the log opens from the other; verify reports the slot.
        let slot = try Self.copy(f)
        defer { try? FileManager.default.removeItem(atPath: slot) }
        let current = try Self.run(["verify", slot, "--json"]).object["baseSlots"] as? [[String: Any]] ?? []
        let older = try #require(current.first { $0["state"] as? String == "previous" }?["slot"] as? Int)
        try Self.flip(slot + "/txlog.base", at: UInt64(older * 256 * 1024 + 40))
        #expect(try Self.run(["info", slot]).status == 0)
        let vslot = try Self.run(["verify", slot, "--json"])
        #expect(vslot.status == 1)
        #expect((vslot.object["problems"] as? [[String: Any]])?.first?["offset"] as? Int == older * 256 * 1024)

        // Not a log, and no such directory: cannot open (2).
        let empty = NSTemporaryDirectory() + "txlog-tool-empty-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: empty) }
        oneLine(try Self.run(["verify", empty]), "not a TxLog log", 2)
        oneLine(try Self.run(["dump", empty + "/nope"]), "no such directory", 2)
    }

    /// Commands that change a log: one that cannot be opened (locked by another writer, missing) exits 2
    /// like the read commands (they exited 1, the code for damage, before); a bad count is a usage
    /// error (64; `--count -1` crashed the tool).
    @Test("writable commands: cannot open is exit 2, a bad count is exit 64")
    func writableCommandsExitCodes() throws {
        let f = try Self.makeLog()
        defer { try? FileManager.default.removeItem(atPath: f.dir) }
        let writer = try LogStore.open(at: f.dir)  // holds the writer's lock
        for args in [["containers", "add", f.dir], ["containers", "remove", f.dir, "3"], ["policy", "set", f.dir, "--max-containers", "9"]] {
            let r = try Self.run(args)
            #expect(r.status == 2 && r.err.contains("locked"), "\(args): \(r.status) \(r.err)")
        }
        try writer.close()
        let missing = f.dir + "/nope"
        for args in [["containers", "add", missing], ["containers", "remove", missing, "3"], ["policy", "set", missing, "--max-containers", "9"]] {
            #expect(try Self.run(args).status == 2, "\(args)")
        }
        for count in ["0", "-1"] {
            let r = try Self.run(["containers", "add", f.dir, "--count=\(count)"])
            #expect(r.status == 64 && r.err.contains("--count must be at least 1"), "\(r.status) \(r.err)")
        }
        let added = try Self.run(["containers", "add", f.dir, "--count", "2"])
        #expect(added.status == 0 && added.out.split(separator: "\n").count == 2, "\(added.err)")
        // `--max-size` takes a unit as `create`'s sizes do (`64M` was a usage error); `policy set` with nothing
        // to set is a usage error and leaves the base file alone (it opened the log and rewrote it).
        let sized = try Self.run(["policy", "set", f.dir, "--max-size", "64M"])
        #expect(sized.status == 0, "\(sized.err)")
        #expect(try Self.run(["policy", "show", f.dir, "--json"]).object["maxSizeBytes"] as? Int == 64 << 20)
        let base = try Data(contentsOf: URL(fileURLWithPath: f.dir + "/txlog.base"))
        let nothing = try Self.run(["policy", "set", f.dir])
        #expect(nothing.status == 64 && nothing.err.contains("nothing to set"), "\(nothing.status) \(nothing.err)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: f.dir + "/txlog.base")) == base)
    }

    @Test("create with a size too large for 64 bits or for an Int: a usage error (exit 64), never a crash, nothing created")
    func createWithHugeSizes() throws {
        let dir = NSTemporaryDirectory() + "txlog-tool-huge-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for args in [["--container-size", "99999999999G"], ["--block-size", "18446744073709551615"], ["--block-size", "17179869184G"]] {
            let r = try Self.run(["create", dir] + args)
            #expect(r.status == 64 && !r.err.contains("Fatal error") && !r.err.contains("crashed"), "\(args): \(r.status) \(r.err.prefix(300))")
            #expect(!FileManager.default.fileExists(atPath: dir + "/txlog.base"), "\(args)")
        }
    }
}
