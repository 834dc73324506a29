// Crash tests.
//
// 1. Kill harness (blackbox): `txlog stress run` appends from 8 threads and prints an `ack` line per
//    durable record; the test SIGKILLs it at a random moment, then checks the log against the acks twice:
//    with `txlog stress check`, and in process (every acked record at or above the base reads back byte
//    for byte, every record is an intact stress record, and each writer's records are a gap-free run).
//    Then it runs the workload again on the recovered log, kills it again and checks again.
// 2. Crash points (whitebox, in process): a FileIO wrapper copies the log directory just before each
//    write, sync, rename or unlink the log issues (and, for writes, also with only part of the write
//    applied). Each copy is the state a process crash at that instant leaves behind; each is recovered and
//    checked against what had been acknowledged by then.
//
// A real SIGKILL only tests a process crash: the page cache survives, so unsynced writes are kept.

import Foundation
import Testing
@testable import LogStore

#if canImport(Glibc)
import Glibc
#endif

@Suite("Crash", .serialized)
struct CrashTests {
    static let longRun = ProcessInfo.processInfo.environment["TXLOG_LONG_TESTS"] == "1"
    static let iterations = longRun ? 300 : 12
    /// TXLOG_CRASH_VERBOSE=1 prints one line per run.
    static let verbose = ProcessInfo.processInfo.environment["TXLOG_CRASH_VERBOSE"] == "1"

    // MARK: Kill harness

    @Test("SIGKILL txlog stress twice in a row; every acknowledged record survives", arguments: 0..<CrashTests.iterations)
    func killAndCheck(iteration: Int) async throws {
        let bin = try Self.txlogBinary()
        let recordSize = [20, 100, 3000, 70_000][iteration % 4]
        let flushEvery = [1, 4][(iteration / 4) % 2]
        let codec: Codec = [.lz4, .none, .zlib(level: 1)][iteration % 3]
        let dir = LogTestKit.temporaryPath("kill\(iteration)")
        defer {
            LogTestKit.remove(dir)
            for f in ["acks1", "acks2", "err1", "err2", "check"] { LogTestKit.remove(dir + "." + f) }
        }
        // Tiny containers, so runs roll over containers and recycle them by advancing the base.
        let created = try LogStore.create(
            at: dir, options: LogTestKit.options(containerSize: 512 * 1024, containerCount: 4, blockSize: 4096, codec: codec))
        try created.close()

        var allAcks: [StressAck] = []
        // Whether the log must report an unclean shutdown: true once a run that acknowledged records (so it
        // had opened the log) was killed; unknown (nil) after a run exited by itself, which closes the log.
        var mustBeUnclean: Bool? = false
        for run in 1...2 {
            let delay = run == 1 ? Int.random(in: 50...400) : Int.random(in: 80...400)
            let context: Comment = "iteration \(iteration) run \(run): record size \(recordSize), flush every \(flushEvery), \(codec), killed after \(delay) ms"
            let acksPath = dir + ".acks\(run)"
            let errPath = dir + ".err\(run)"
            // `--seconds` bounds the child even if this process dies before the kill (an interrupted
            // `make test`): an orphaned `stress run` would otherwise append and print acks for ever.
            let child = try Child(
                bin,
                ["stress", "run", dir, "--writers", "8", "--record-size", "\(recordSize)", "--flush-every", "\(flushEvery)", "--seconds", "600"],
                stdout: acksPath, stderr: errPath)
            // The kill comes from a thread of its own: a sleep on the cooperative pool came more than 600 s
            // late when other tests held every thread of it (`make test-long`), and the child had finished.
            let stillRunning = await KillTimer(child.process, afterMilliseconds: delay).wait()
            let exited = await child.wait(seconds: 30)
            try #require(exited, "txlog stress run did not die after SIGKILL: \(context)")
            let stderrText = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
            #expect(
                stillRunning, "txlog stress run exited on its own (status \(child.process.terminationStatus)) before the kill: \(stderrText): \(context)")
            if stillRunning {
                #expect(child.process.terminationReason == .uncaughtSignal && child.process.terminationStatus == SIGKILL, context)
            }

            let acks = try StressAck.parse(file: acksPath)
            allAcks += acks
            if !stillRunning {
                mustBeUnclean = nil
            } else if !acks.isEmpty {
                mustBeUnclean = true
            } else if mustBeUnclean == false {
                mustBeUnclean = nil  // killed before or after opening the log: either is possible
            }
            // Both runs' acknowledgements, concatenated, are checked by the tool.
            let combined = dir + ".acks-all"
            defer { LogTestKit.remove(combined) }  // also when the write below fails part way
            try allAcks.map(\.line).joined().write(toFile: combined, atomically: false, encoding: .utf8)
            let (status, output) = try await Self.runCheck(bin, dir, acks: combined)
            #expect(status == 0, "txlog stress check failed: \(output) \(context)")

            let problems = try Self.verifyInProcess(dir, acks: allAcks, writable: false, expectUnclean: mustBeUnclean == true)
            #expect(problems.isEmpty, "\(problems.count) problems, first: \(problems.prefix(5)) \(context)")
            if Self.verbose {
                let log = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true))
                print("crash \(context): \(acks.count) acks, base \(log.baseLSN), last \(log.lastLSN), torn tail: \(log.recoveryReport.tornTail ?? "none"); check: \(output.split(separator: "\n").last ?? "")")
                try log.close()
            }
        }

        // Finally recover in this process (writable: new epoch), write, close cleanly and check again.
        let problems = try Self.verifyInProcess(dir, acks: allAcks, writable: true)
        #expect(problems.isEmpty, "after in-process recovery: \(problems.prefix(5))")
        let clean = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true))
        #expect(clean.recoveryReport.cleanShutdown)
        try clean.close()
        let finalProblems = try Self.verifyInProcess(dir, acks: allAcks, writable: false)
        #expect(finalProblems.isEmpty, "after a clean close: \(finalProblems.prefix(5))")
    }

    /// One `ack <rawLSN> <writer> <seq> <len>` line.
    struct StressAck: Sendable {
        var lsn: LSN
        var writer: UInt32
        var sequence: UInt64
        var length: Int
        var line: String { "ack \(lsn.rawValue) \(writer) \(sequence) \(length)\n" }

        static func parse(file: String) throws -> [StressAck] {
            let text = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
            var out: [StressAck] = []
            // Only whole lines: a line cut off by the kill was never seen whole by anyone.
            let lines = text.split(separator: "\n", omittingEmptySubsequences: true)
            for (i, line) in lines.enumerated() {
                if i == lines.count - 1, !text.hasSuffix("\n") { break }
                let f = line.split(separator: " ")
                guard f.count == 5, f[0] == "ack", let l = UInt64(f[1]), let w = UInt32(f[2]), let s = UInt64(f[3]), let n = Int(f[4]) else {
                    throw LogError(.corrupt, "malformed ack line: \(line)")
                }
                out.append(StressAck(lsn: LSN(rawValue: l), writer: w, sequence: s, length: n))
            }
            return out
        }
    }

    /// Checks a log against acknowledgements in this process. Returns the problems found.
    static func verifyInProcess(_ dir: String, acks: [StressAck], writable: Bool, expectUnclean: Bool = false) throws -> [String] {
        var problems: [String] = []
        let log = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: !writable))
        defer { try? log.close() }
        if expectUnclean, log.recoveryReport.cleanShutdown {
            // A run that acknowledged something had the log open for writing, and no run closed it since.
            problems.append("the log of a killed run claims a clean shutdown")
        }
        let base = log.baseLSN
        // The same LSN acknowledged for two different records means an acknowledged record was lost.
        var byLSN: [LSN: StressAck] = [:]
        for a in acks {
            if let other = byLSN[a.lsn], other.writer != a.writer || other.sequence != a.sequence {
                problems.append("LSN \(a.lsn) acknowledged twice: \(other.writer)/\(other.sequence) and \(a.writer)/\(a.sequence)")
            }
            byLSN[a.lsn] = a
        }
        var present: [LSN: (UInt32, UInt64)] = [:]
        var lastSequence: [UInt32: UInt64] = [:]
        var lastLSN = LSN.null
        do {
            var cursor = try log.records()
            while let r = try cursor.next() {
                if r.lsn <= lastLSN { problems.append("cursor went from \(lastLSN) to \(r.lsn)") }
                lastLSN = r.lsn
                guard let (w, s) = StressOracle.parse(r.data) else {
                    problems.append("record \(r.lsn) (\(r.data.count) bytes) is not an intact stress record")
                    continue
                }
                // Each writer appends in sequence from one thread, so what survives above the base is a
                // gap-free run of its sequence numbers (I2: no holes).
                if let prev = lastSequence[w], s != prev + 1 {
                    problems.append("writer \(w): sequence \(s) follows \(prev) at \(r.lsn) (hole or reorder)")
                }
                lastSequence[w] = s
                present[r.lsn] = (w, s)
            }
        } catch {
            problems.append("reading the log failed: \(error)")
        }
        for a in acks where a.lsn >= base {
            do {
                let r = try log.read(a.lsn)
                if r.data.count != a.length {
                    problems.append("acked \(a.lsn): \(r.data.count) bytes, acknowledged \(a.length)")
                } else if r.data != StressOracle.make(writer: a.writer, sequence: a.sequence, length: a.length) {
                    problems.append("acked \(a.lsn): bytes differ from writer \(a.writer) seq \(a.sequence)")
                }
            } catch {
                problems.append("acked \(a.lsn) (writer \(a.writer) seq \(a.sequence)) cannot be read: \(error)")
            }
            if present[a.lsn] == nil { problems.append("acked \(a.lsn) is not on the cursor's path") }
        }
        if writable {
            let lsn = try log.append(StressOracle.make(writer: 0xFFFF_FFFF, sequence: 0, length: 64))
            try log.flush(upTo: lsn)
        }
        return problems
    }

    static func runCheck(_ bin: String, _ dir: String, acks: String) async throws -> (Int32, String) {
        let out = dir + ".check"
        let child = try Child(bin, ["stress", "check", dir, "--acks", acks], stdout: out, stderr: out + "-err")
        defer { LogTestKit.remove(out + "-err") }
        let finished = await child.wait(seconds: 120)
        if !finished { kill(child.process.processIdentifier, SIGKILL) }
        try #require(finished, "txlog stress check did not finish")
        let text = ((try? String(contentsOfFile: out, encoding: .utf8)) ?? "") + ((try? String(contentsOfFile: out + "-err", encoding: .utf8)) ?? "")
        return (child.process.terminationStatus, text)
    }

    /// The txlog executable: $TXLOG_BIN, or `txlog` beside the test bundle (`swift build --build-tests`
    /// builds both into the same directory).
    static func txlogBinary() throws -> String { try TxlogProcess.binary() }

    /// A child process with stdout and stderr sent to files.
    final class Child {
        let process: Process
        let handles: [FileHandle]

        init(_ executable: String, _ arguments: [String], stdout: String, stderr: String) throws {
            _ = FileManager.default.createFile(atPath: stdout, contents: nil)
            _ = FileManager.default.createFile(atPath: stderr, contents: nil)
            let out = try FileHandle(forWritingTo: URL(fileURLWithPath: stdout))
            let err = try FileHandle(forWritingTo: URL(fileURLWithPath: stderr))
            let p = Process()
            p.executableURL = URL(fileURLWithPath: executable)
            p.arguments = arguments
            p.standardOutput = out
            p.standardError = err
            p.standardInput = FileHandle.nullDevice
            try p.run()
            process = p
            handles = [out, err]
        }

        /// Waits for the process to exit; false after `seconds`.
        func wait(seconds: Double) async -> Bool {
            let deadline = Date().addingTimeInterval(seconds)
            while process.isRunning {
                if Date() > deadline { return false }
                try? await Task.sleep(nanoseconds: 5_000_000)
            }
            for h in handles { try? h.close() }
            return true
        }
    }

    // MARK: Crash points

    struct Workload: Sendable, CustomTestStringConvertible {
        var name: String
        var containerSize: UInt64
        var containerCount: Int
        var blockSize: Int
        var codec: Codec
        var recordSizes: ClosedRange<Int>
        var flushEvery: Int
        /// Stop once a record lands in this logical container.
        var untilContainer: UInt32
        /// Snapshot every Nth persistence operation (and always around base-file writes).
        var sampleEvery: Int
        var testDescription: String { name }
    }

    static let workloads = [
        Workload(
            name: "rollover", containerSize: 512 * 1024, containerCount: 3, blockSize: 16384, codec: .lz4,
            recordSizes: 1500...6000, flushEvery: 5, untilContainer: 3, sampleEvery: 1),
        Workload(
            name: "recycling", containerSize: 512 * 1024, containerCount: 2, blockSize: 8192, codec: .none,
            recordSizes: 2000...5000, flushEvery: 3, untilContainer: 6, sampleEvery: 4),
    ]

    @Test("a crash before any write or sync loses nothing acknowledged", arguments: CrashTests.workloads)
    func crashPoints(workload: Workload) throws {
        let dir = LogTestKit.temporaryPath("points-\(workload.name)")
        let images = dir + "-images"
        defer {
            LogTestKit.remove(dir)
            LogTestKit.remove(images)
        }
        try FileManager.default.createDirectory(atPath: images, withIntermediateDirectories: true)
        let io = CrashPointFileIO()
        let log = try LogStore.create(
            at: dir,
            options: LogTestKit.options(
                containerSize: workload.containerSize, containerCount: workload.containerCount, blockSize: workload.blockSize,
                codec: workload.codec),
            io: io)

        // What the workload appended, and how many of its records were acknowledged, as seen by the hook.
        let appended = LockedBox([(LSN, Int, Int)]())  // lsn, seed, length
        let acked = LockedBox(0)
        let states = LockedBox([CrashState]())
        let opCount = LockedBox(0)
        let recentBaseWrite = LockedBox(-100)
        io.setHook { op in
            let k = opCount.withLock { n -> Int in
                n += 1
                return n
            }
            if op.path.hasSuffix(Format.baseFileName) { recentBaseWrite.withLock { $0 = k } }
            let nearBase = k - recentBaseWrite.snapshot <= 4
            guard k % workload.sampleEvery == 0 || nearBase else { return }
            let ackedNow = acked.snapshot
            let image = images + "/\(k)"
            do {
                try LogTestKit.snapshot(dir, to: image)
                states.withLock { $0.append(CrashState(path: image, op: "\(op.kind) \(op.path.split(separator: "/").last ?? "")@\(op.offset)", acked: ackedNow)) }
                if op.kind == "pwritev", op.data.count >= 1024 {
                    // The same crash, but with the first sectors of this write already on disk (a write the
                    // kill interrupted).
                    let torn = image + "-torn"
                    try LogTestKit.snapshot(dir, to: torn)
                    let keep = (op.data.count / 2) / 512 * 512
                    let name = String(op.path.split(separator: "/").last ?? "")
                    let handle = try FileHandle(forUpdating: URL(fileURLWithPath: torn + "/" + name))
                    try handle.seek(toOffset: op.offset)
                    try handle.write(contentsOf: Data(op.data[0..<keep]))
                    try handle.close()
                    states.withLock { $0.append(CrashState(path: torn, op: "torn \(op.kind) \(name)@\(op.offset)+\(keep)", acked: ackedNow)) }
                }
            } catch {
                states.withLock { $0.append(CrashState(path: image, op: "snapshot failed: \(error)", acked: -1)) }
            }
        }

        var seed = 0
        var sinceFlush = 0
        while (appended.snapshot.last?.0.container ?? 0) < workload.untilContainer {
            let n = workload.recordSizes.lowerBound + (seed * 7919) % (workload.recordSizes.count)
            let data = LogTestKit.randomPayload(seed, length: n, salt: 77)
            let lsn: LSN
            do {
                lsn = try log.append(data)
            } catch let e as LogError where e.code == .logFull {
                try log.flush()
                acked.withLock { $0 = appended.snapshot.count }
                try log.advanceBase(to: log.durableLSN)
                continue
            }
            appended.withLock { $0.append((lsn, seed, n)) }
            seed += 1
            sinceFlush += 1
            if sinceFlush == workload.flushEvery {
                try log.flush(upTo: lsn)
                acked.withLock { $0 = appended.snapshot.count }
                sinceFlush = 0
            }
        }
        try log.flush()
        acked.withLock { $0 = appended.snapshot.count }
        try log.close()
        io.setHook(nil)

        let entries = appended.snapshot
        let crashStates = states.snapshot
        #expect(crashStates.count >= 20, "the workload reached few crash points")
        var failures: [String] = []
        for state in crashStates {
            guard state.acked >= 0 else {
                failures.append(state.op)
                continue
            }
            do {
                failures += try Self.checkCrashState(state, entries)
            } catch {
                failures.append("\(state.op) (acked \(state.acked)): recovery failed: \(error)")
            }
            LogTestKit.remove(state.path)
        }
        #expect(failures.isEmpty, "\(failures.count) of \(crashStates.count) crash states failed, first: \(failures.prefix(5))")
    }

    struct CrashState: Sendable {
        var path: String
        var op: String
        var acked: Int
    }

    /// Recovers one crash image and checks it: the records from the base on are exactly a run of the
    /// appended records, covering every acknowledged one at or above the base; then the recovered log
    /// takes a new record and survives a clean reopen.
    static func checkCrashState(_ state: CrashState, _ entries: [(LSN, Int, Int)]) throws -> [String] {
        var failures: [String] = []
        let at = "crash before \(state.op) (acked \(state.acked))"
        let log = try LogStore.open(at: state.path)
        let base = log.baseLSN
        let records = try LogTestKit.allRecords(log)
        let first = entries.firstIndex { $0.0 >= base } ?? entries.count
        if records.count < max(0, state.acked - first) {
            failures.append("\(at): \(records.count) records from the base, \(state.acked - first) acknowledged")
        }
        for (k, r) in records.enumerated() {
            guard first + k < entries.count else {
                failures.append("\(at): record \(r.lsn) was never appended")
                break
            }
            let (lsn, seed, n) = entries[first + k]
            if r.lsn != lsn || r.data != LogTestKit.randomPayload(seed, length: n, salt: 77) {
                failures.append("\(at): record \(k) from the base is \(r.lsn), expected \(lsn) (or its bytes differ)")
                break
            }
        }
        let next = try log.append(Array("after the crash".utf8))
        try log.flush(upTo: next)
        try log.close()
        let again = try LogStore.open(at: state.path, options: LogOpenOptions(readOnly: true))
        defer { try? again.close() }
        let after = try LogTestKit.allRecords(again)
        if after.map(\.lsn) != records.map(\.lsn) + [next] { failures.append("\(at): the clean reopen differs from the recovery") }
        return failures
    }
}

/// A FileIO that calls a hook before every operation that changes files (write, sync, rename, unlink,
/// truncate, directory sync), with the file's path and, for writes, the bytes.
final class CrashPointFileIO: FileIO, @unchecked Sendable {
    struct Operation {
        var kind: String
        var path: String
        var offset: UInt64
        var data: [UInt8]
    }

    private let base = PosixFileIO()
    private let paths = LockedBox([Int32: String]())
    private let hook = LockedBox<(@Sendable (Operation) -> Void)?>(nil)

    func setHook(_ h: (@Sendable (Operation) -> Void)?) { hook.withLock { $0 = h } }

    private func before(_ kind: String, fd: Int32? = nil, path: String? = nil, offset: UInt64 = 0, data: [UInt8] = []) {
        guard let h = hook.snapshot else { return }
        let p = path ?? fd.flatMap { f in paths.withLock { $0[f] } } ?? "?"
        h(Operation(kind: kind, path: p, offset: offset, data: data))
    }

    func open(_ path: String, mode: FileOpenMode) throws -> Int32 {
        let fd = try base.open(path, mode: mode)
        paths.withLock { $0[fd] = path }
        return fd
    }

    func close(_ fd: Int32) {
        paths.withLock { $0[fd] = nil }
        base.close(fd)
    }

    func pread(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws -> Int {
        try base.pread(fd, into: buffer, at: offset)
    }

    func pwritev(_ fd: Int32, _ buffers: [UnsafeRawBufferPointer], at offset: UInt64) throws -> Int {
        if hook.snapshot != nil {
            var data: [UInt8] = []
            for b in buffers { data.append(contentsOf: b) }
            before("pwritev", fd: fd, offset: offset, data: data)
        }
        return try base.pwritev(fd, buffers, at: offset)
    }

    func fdatasync(_ fd: Int32) throws {
        before("fdatasync", fd: fd)
        try base.fdatasync(fd)
    }

    func fsync(_ fd: Int32) throws {
        before("fsync", fd: fd)
        try base.fsync(fd)
    }

    func fsyncDirectory(_ path: String) throws {
        before("fsyncDirectory", path: path)
        try base.fsyncDirectory(path)
    }

    func fileSize(_ fd: Int32) throws -> UInt64 { try base.fileSize(fd) }

    func truncate(_ fd: Int32, to size: UInt64) throws {
        before("truncate", fd: fd, offset: size)
        try base.truncate(fd, to: size)
    }

    func rename(_ from: String, _ to: String) throws {
        before("rename", path: to)
        try base.rename(from, to)
    }

    func unlink(_ path: String) throws {
        before("unlink", path: path)
        try base.unlink(path)
    }

    func makeDirectory(_ path: String) throws { try base.makeDirectory(path) }
    func listDirectory(_ path: String) throws -> [String] { try base.listDirectory(path) }
    func fileExists(_ path: String) -> Bool { base.fileExists(path) }
    func tryLockExclusive(_ fd: Int32) throws -> Bool { try base.tryLockExclusive(fd) }
}
