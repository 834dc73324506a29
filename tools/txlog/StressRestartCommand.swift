import ArgumentParser
import Foundation
import LogStore

/// Restart-area crash workload: each round appends data records to stream "work", then writes a
/// restart area on stream "ckpt" whose payload names the round and the new base it sets. Killed at
/// an exact write or sync (`--kill-at`), it lets a harness crash at every step of the protocol.
struct StressRestartCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stress-restart",
        abstract: "Restart-area crash workload for test harnesses (changes the log).",
        discussion: """
            `run` prints `begin <round>` before each round and `restart <rawLSN> <round> <rawBase>` once its \
            restart area is written. With --kill-at N the process exits (status 137) at its Nth write or sync, \
            before it (or after it, with --after).

            `check` verifies the latest restart area is intact, is one that `run` wrote or was writing, that the \
            stream's base is exactly the one written with it (never a blend), and that the chain goes back in \
            order.

            Example:
              txlog stress-restart run LOG --rounds 20 --kill-at 17 > acks
              txlog stress-restart check LOG --acks acks
            """,
        subcommands: [Run.self, Check.self])

    static func payload(round: Int, base: LSN) -> [UInt8] { Array("restart round=\(round) base=\(base.rawValue)".utf8) }

    static func parse(_ bytes: [UInt8]) -> (round: Int, base: LSN)? {
        let text = String(decoding: bytes, as: UTF8.self)
        let parts = text.split(separator: " ")
        guard parts.count == 3, parts[0] == "restart", parts[1].hasPrefix("round="), parts[2].hasPrefix("base="),
            let r = Int(parts[1].dropFirst(6)), let b = UInt64(parts[2].dropFirst(5)), payload(round: r, base: LSN(rawValue: b)) == bytes
        else { return nil }
        return (r, LSN(rawValue: b))
    }

    /// The `count` round numbers after `start`, the round of the log's latest restart area (-1: none). Both
    /// come from outside: a restart area naming round `Int.max` (`corrupt`: no round can follow it), or a
    /// `--rounds` whose last round is past `Int.max` (`invalidArgument`), trapped adding them.
    static func rounds(after start: Int, count: Int) throws -> Range<Int> {
        let (first, noNext) = start.addingReportingOverflow(1)
        if noNext { throw LogError(.corrupt, "the latest restart area of stream ckpt is round \(start): no round can follow it") }
        let (end, past) = first.addingReportingOverflow(count)
        if past { throw LogError(.invalidArgument, "--rounds \(count) after round \(start) numbers rounds past \(Int.max)") }
        return first..<end
    }

    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write restart areas; optionally die at an exact step (changes the log).")
        @Argument(help: "The log directory (must exist).") var path: String
        @Option(help: "Rounds to run.") var rounds = 20
        @Option(help: "Records appended per round.") var records = 30
        @Option(help: "Exit at this write/sync call (counted from 1 after open; 0: never).") var killAt = 0
        @Flag(help: "Exit right after the call instead of before it.") var after = false

        // A negative count trapped (an empty range with its bounds reversed).
        func validate() throws {
            guard rounds >= 0, records >= 0, killAt >= 0 else { throw ValidationError("--rounds, --records and --kill-at must be 0 or more") }
        }

        func run() throws {
            let log: LogStore
            do { log = try LogStore.open(at: path) } catch { throw fail(error, opening: true) }
            // Steps are counted from here: opening the log (recovery) is not part of the sweep.
            let io = KillingFileIO(killAt: killAt, after: after)
            try log.close()
            let killable: LogStore
            do { killable = try LogStore.open(at: path, io: io) } catch { throw fail(error, opening: true) }
            do {
                let work = try killable.stream("work")
                let ckpt = try killable.stream("ckpt")
                let start = (try ckpt.readRestartArea()).flatMap { StressRestartCommand.parse($0.data)?.round } ?? -1
                for round in try StressRestartCommand.rounds(after: start, count: rounds) {
                    FileHandle.standardOutput.write(Data("begin \(round)\n".utf8))
                    var last = LSN.null
                    for i in 0..<records { last = try work.append(Array("work \(round) \(i)".utf8)) }
                    let restart = try ckpt.writeRestartArea(StressRestartCommand.payload(round: round, base: last), newBase: ckpt.lastLSN == .null ? nil : ckpt.lastLSN)
                    try work.advanceBase(to: last)
                    FileHandle.standardOutput.write(Data("restart \(restart.rawValue) \(round) \(last.rawValue)\n".utf8))
                }
                try killable.close()
            } catch { throw fail(error) }
        }
    }

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Verify restart areas after a crash (read-only).")
        @Argument(help: "The log directory.") var path: String
        @Option(help: "The `restart` lines `run` printed.") var acks: String

        func run() throws {
            let log: LogStore
            do { log = try LogStore.open(at: path, options: LogOpenOptions(readOnly: true)) } catch { throw fail(error, opening: true) }
            let lines = try readAcknowledgements(acks).split(separator: "\n")
            let acked = lines.compactMap { line -> Int? in
                let f = line.split(separator: " ")
                return f.count == 4 && f[0] == "restart" ? Int(f[2]) : nil
            }.max() ?? -1
            let begun = lines.compactMap { line -> Int? in
                let f = line.split(separator: " ")
                return f.count == 2 && f[0] == "begin" ? Int(f[1]) : nil
            }.max() ?? -1
            var problems: [String] = []
            do {
                guard let ckpt = try? log.openStream("ckpt") else {
                    if acked >= 0 { problems.append("stream ckpt is missing but restart \(acked) was acknowledged") }
                    return report(problems, latest: nil)
                }
                guard let latest = try ckpt.readRestartArea() else {
                    if acked >= 0 { problems.append("no restart area, but restart \(acked) was acknowledged") }
                    return report(problems, latest: nil)
                }
                guard latest.type == .restart, let (round, _) = StressRestartCommand.parse(latest.data) else {
                    problems.append("the latest restart area \(latest.lsn) is not intact")
                    return report(problems, latest: nil)
                }
                if round < acked { problems.append("latest restart area is round \(round), but round \(acked) was acknowledged") }
                if round > begun { problems.append("latest restart area is round \(round), beyond the last one begun (\(begun))") }
                // The base recorded with a restart area moves with it: the stream's base is the previous
                // restart record (or null for the first), never a mix of two updates.
                let base = try ckpt.info().baseLSN
                let previous = try ckpt.previousRestartArea(before: latest.lsn)
                if let previous, base != previous.lsn {
                    problems.append("ckpt base \(base) is not the restart area before the latest (\(previous.lsn)): a blend of two updates")
                }
                var cursor = latest
                var expected = round
                while let p = try ckpt.previousRestartArea(before: cursor.lsn) {
                    // The round comes from the log: the one before the lowest round there is has no number.
                    guard expected > Int.min, let (r, _) = StressRestartCommand.parse(p.data), r == expected - 1 else {
                        problems.append("restart chain breaks at \(p.lsn)")
                        break
                    }
                    expected = r
                    cursor = p
                }
                report(problems, latest: round)
            } catch {
                problems.append("reading failed: \(error)")
                report(problems, latest: nil)
            }
            if !problems.isEmpty { throw ExitCode(1) }
        }

        private func report(_ problems: [String], latest: Int?) {
            if problems.isEmpty {
                print("ok: latest restart area round \(latest.map(String.init) ?? "none")")
            } else {
                for p in problems { print("violation: \(p)") }
            }
        }
    }
}
