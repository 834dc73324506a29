import ArgumentParser
import Foundation
import LogStore

struct StressCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stress",
        abstract: "A raw-log crash workload for test harnesses.",
        discussion: """
            `run` appends self-checking records from several threads, flushes each one, and prints \
            `ack <lsn> <writer> <sequence> <length>` on stdout once it is durable. Kill it at any moment.

            `check` recovers the log and verifies every acknowledged record at or above the base is present and \
            intact, that every record in the log is intact, and that each writer's records are in order.

            Example:
              txlog stress run LOG --writers 8 --seconds 5 > acks
              txlog stress check LOG --acks acks
            """,
        subcommands: [Run.self, Check.self])

    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Append and flush until killed or the time is up (changes the log).")
        @Argument(help: "The log directory (must exist).") var path: String
        @Option(help: "Writer threads.") var writers = 4
        @Option(help: "Record size in bytes (at least 20).") var recordSize = 100
        @Option(help: "Stop after this many seconds (0: run until killed).") var seconds: Double = 0
        @Option(help: "Flush every Nth record (1: every record).") var flushEvery = 1

        // Checked before anything runs: a negative writer count trapped, a negative time ran forever (only 0
        // means "until killed"), and a record larger than any log's largest aborted allocating it.
        func validate() throws {
            guard (0...4096).contains(writers) else { throw ValidationError("--writers must be 0...4096") }
            guard seconds.isFinite, seconds >= 0 else { throw ValidationError("--seconds must be 0 (run until killed) or more") }
            // Each record starts with its 20-byte self-check header: a smaller size (or a negative one) was
            // silently raised to 20.
            guard recordSize >= StressPayload.headerSize else { throw ValidationError("--record-size must be at least \(StressPayload.headerSize)") }
            guard recordSize <= Format.maxRawBlockLength - RecordHeader.size else {
                throw ValidationError("--record-size must be at most \(Format.maxRawBlockLength - RecordHeader.size) (the largest record of any log)")
            }
            guard flushEvery >= 1 else { throw ValidationError("--flush-every must be at least 1") }
        }

        func run() throws {
            let log: LogStore
            do { log = try LogStore.open(at: path) } catch { throw fail(error, opening: true) }
            let deadline = seconds > 0 ? Date().addingTimeInterval(seconds) : Date.distantFuture
            let out = AckWriter()
            let group = DispatchGroup()
            let failures = FailureBox()
            // Writer ids are unique per run, so sequences of an earlier run never look out of order.
            let run = UInt32.random(in: 1..<(1 << 24)) << 8
            for i in 0..<writers {
                let w = run | UInt32(i & 0xFF)
                group.enter()
                Thread {
                    defer { group.leave() }
                    var sequence: UInt64 = 0
                    var pending: [(LSN, UInt64)] = []
                    while Date() < deadline, failures.first == nil {
                        let payload = StressPayload.make(writer: w, sequence: sequence, length: recordSize)
                        do {
                            let lsn = try appendRetrying(log, payload)
                            pending.append((lsn, sequence))
                            sequence += 1
                            if pending.count >= flushEvery {
                                try log.flush(upTo: lsn)
                                for (l, s) in pending { out.write("ack \(l.rawValue) \(w) \(s) \(payload.count)\n") }
                                pending.removeAll()
                            }
                        } catch {
                            failures.set("\(error)")
                        }
                    }
                }.start()
            }
            group.wait()
            if let f = failures.first {
                FileHandle.standardError.write(Data("txlog stress: \(f)\n".utf8))
                throw ExitCode(1)
            }
            try log.close()
        }
    }

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Verify a log against the acknowledgements `run` printed (read-only).")
        @Argument(help: "The log directory.") var path: String
        @Option(help: "File with the `ack` lines printed by `run`.") var acks: String

        func run() throws {
            let log: LogStore
            do { log = try LogStore.open(at: path, options: LogOpenOptions(readOnly: true)) } catch { throw fail(error, opening: true) }
            // Unreadable acknowledgements are not "nothing acknowledged": a check that cannot see them
            // must not pass (as `workload check`: exit 2).
            let text = try readAcknowledgements(acks)
            var acked: [UInt64: (UInt32, UInt64, Int)] = [:]
            for line in text.split(separator: "\n") {
                let f = line.split(separator: " ")
                // A line cut off by the kill is not an acknowledgement the harness saw whole.
                guard f.count == 5, f[0] == "ack", let l = UInt64(f[1]), let w = UInt32(f[2]), let s = UInt64(f[3]), let n = Int(f[4]) else { continue }
                acked[l] = (w, s, n)
            }
            var problems: [String] = []
            var found: [UInt64: (UInt32, UInt64)] = [:]
            var lastSequence: [UInt32: UInt64] = [:]
            var records = 0
            do {
                var cursor = try log.records()
                while let r = try cursor.next() {
                    records += 1
                    guard let (w, s) = StressPayload.parse(r.data) else {
                        problems.append("record \(r.lsn) is not an intact stress record")
                        continue
                    }
                    if let prev = lastSequence[w], s <= prev { problems.append("writer \(w) sequence \(s) after \(prev) at \(r.lsn)") }
                    lastSequence[w] = s
                    found[r.lsn.rawValue] = (w, s)
                }
            } catch {
                problems.append("reading the log failed: \(error)")
            }
            let base = log.baseLSN.rawValue
            var checked = 0
            for (lsn, (w, s, _)) in acked where lsn >= base {
                checked += 1
                guard let got = found[lsn] else {
                    problems.append("acknowledged record \(LSN(rawValue: lsn)) (writer \(w) seq \(s)) is missing")
                    continue
                }
                if got != (w, s) { problems.append("record \(LSN(rawValue: lsn)) is writer \(got.0) seq \(got.1), acknowledged as \(w)/\(s)") }
            }
            if problems.isEmpty {
                print("ok: \(checked) acknowledged records present of \(acked.count) (base \(log.baseLSN)), \(records) records intact")
                return
            }
            for p in problems.prefix(20) { print("violation: \(p)") }
            print("FAILED: \(problems.count) violations")
            throw ExitCode(1)
        }
    }
}

/// Appends, moving the base up to the durable point when the log is full (the workload keeps running
/// forever on a small log).
func appendRetrying(_ log: LogStore, _ payload: [UInt8]) throws -> LSN {
    while true {
        do { return try log.append(payload) } catch let e as LogError where e.code == .logFull {
            try log.flush()
            try advanceBaseIfBehind(log, to: log.durableLSN)
        }
    }
}

/// Moves the base up to `target` unless another writer already moved it at least that far (the check
/// and the move race between writers; losing that race is fine).
func advanceBaseIfBehind(_ log: LogStore, to target: LSN) throws {
    guard target.isValid, target > log.baseLSN else { return }
    do { try log.advanceBase(to: target) } catch let e as LogError where e.code == .invalidArgument && log.baseLSN >= target {}
}

/// Writes whole lines to stdout with one write(2) each, so a kill never splits a line that was written.
final class AckWriter: @unchecked Sendable {
    private let lock = NSLock()
    func write(_ line: String) {
        lock.lock()
        defer { lock.unlock() }
        var bytes = Array(line.utf8)
        bytes.withUnsafeMutableBytes { b in
            var done = 0
            while done < b.count {
                let n = Glibc.write(1, b.baseAddress! + done, b.count - done)
                if n <= 0 { break }
                done += n
            }
        }
    }
}

final class FailureBox: @unchecked Sendable {
    private let lock = NSLock()
    private var value: String?
    private var error: (any Error)?
    var first: String? { lock.lock(); defer { lock.unlock() }; return value }
    /// The first failure, when it was set as an error (its `LogError` code picks a bench's exit code).
    var firstError: (any Error)? { lock.lock(); defer { lock.unlock() }; return error }
    func set(_ s: String) { lock.lock(); if value == nil { value = s }; lock.unlock() }
    func set(_ e: any Error) {
        lock.lock()
        if value == nil { (value, error) = ("\(e)", e) }
        lock.unlock()
    }
}
