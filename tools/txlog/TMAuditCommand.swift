// `txlog tm audit`: the forced outcomes a TM keeps for audit (its last checkpoint's and those after it).

import ArgumentParser
import Foundation
import LogStore
import TransactionManager

#if canImport(Glibc)
import Glibc
#endif

struct TMAuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit", abstract: "List the forced outcomes a TM keeps for audit (read-only).",
        discussion: """
            Opens the log read-only, replays the TM's stream and prints every forced outcome (`tm resolve`) it \
            still holds, oldest first: those its last checkpoint carries (the most recent auditRetention, default \
            1000, when it was written) and every `forced` record after that checkpoint. For each: the LSN of the \
            forced record (which may since have been recycled), the transaction, the action, the time (UTC), the \
            actor and the reason.

            Example:
              txlog tm audit LOG --json
            """)

    @Argument(help: "The log directory.") var path: String
    @Option(help: "The TM's stream.") var stream = TransactionManager.defaultStreamName
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let log = try openForReading(path)
        // Keep everything the log holds, whatever retention the writer used.
        var options = TransactionManagerOptions()
        options.auditRetention = TMLimits.maxAuditEntries
        let tm: TransactionManager
        do { tm = try openRecoveredTM(log, stream: stream, options: options) } catch { throw fail(error) }
        let outcomes = tm.forcedOutcomes
        if json {
            printJSON([
                "tm": tm.id.description, "stream": stream,
                "forcedOutcomes": outcomes.map {
                    [
                        "lsn": $0.lsn.description, "transaction": $0.transaction.description, "action": $0.action.description,
                        "time": isoTime($0.unixNanos), "unixNanos": $0.unixNanos, "actor": $0.actor, "reason": $0.reason,
                    ] as [String: Any]
                },
            ].merging(streamFields(name: stream, ids: streamIDs(log))) { a, _ in a })
            return
        }
        print("tm \(tm.id)  stream \(escaped(stream))  \(outcomes.count) forced outcome(s)")
        for f in outcomes {
            print("  \(f.lsn)  tx \(f.transaction)  \(f.action)  \(isoTime(f.unixNanos))  by \(quote(f.actor))"
                + (f.reason.isEmpty ? "" : "  reason \(quote(f.reason))"))
        }
    }

    private func quote(_ s: String) -> String {
        "\"" + escaped(s).replacing("\"", with: "\\\"") + "\""
    }
}

/// `nanos` since 1970-01-01 UTC as ISO-8601 with nanoseconds, for example `2026-11-23T16:54:49.123456789Z`.
func isoTime(_ nanos: UInt64) -> String {
    var t = time_t(nanos / 1_000_000_000)
    var parts = tm()
    guard gmtime_r(&t, &parts) != nil else { return "\(nanos)ns" }
    func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
    let fraction = String(nanos % 1_000_000_000)
    return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):"
        + "\(two(parts.tm_sec)).\(String(repeating: "0", count: 9 - fraction.count))\(fraction)Z"
}
