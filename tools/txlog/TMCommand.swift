// `txlog tm`: the transaction managers in a log, after ktmutil (docs/tools/txlog.md, "tm").

import ArgumentParser
import Foundation
import LogStore
import TransactionManager

struct TMCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tm",
        abstract: "Inspect transaction managers and resolve their transactions.",
        discussion: """
            list, transactions and audit open the log read-only; resolve changes the log. Transactions are read \
            by replaying the TM's stream from its last checkpoint (the TM's own recovery), so what they show is \
            what a restart would do.

            Examples:
              txlog tm list LOG
              txlog tm transactions LOG --json
              txlog tm audit LOG
              txlog tm resolve LOG 5f0c0d4e-0b1a-4c7e-9d3a-2f6b8e1c4a70 commit \\
                  --reason "superior lost" --actor ops
            """,
        subcommands: [TMListCommand.self, TMTransactionsCommand.self, TMAuditCommand.self, TMResolveCommand.self, TMCrashChildCommand.self])
}

struct TMListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List the transaction managers in a log and their resource managers (read-only).",
        discussion: """
            Example:
              txlog tm list LOG --json
            """)

    @Argument(help: "The log directory.") var path: String
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let log = try openForReading(path)
        let ids = streamIDs(log)
        var entries: [[String: Any]] = []
        // Streams whose TM checkpoint cannot be read, and TMs that cannot be replayed: each is listed with
        // its error, the others as usual. Before, one unreadable restart area (even another program's)
        // made the whole list fail, naming no stream.
        var unreadable: [(stream: String, error: LogError)] = []
        var failures: [(stream: String, error: any Error)] = []
        for listed in TransactionManager.list(log: log) {
            let info: TransactionManagerInfo
            switch listed.result {
            case .success(let found): info = found
            case .failure(let error):
                unreadable.append((listed.stream, error))
                entries.append(
                    ["stream": listed.stream, "error": "\(error)", "code": error.code.rawValue]
                        .merging(streamFields(name: listed.stream, ids: ids)) { a, _ in a })
                continue
            }
            var entry: [String: Any] = [
                "id": info.id.description, "stream": info.stream, "checkpointLSN": info.checkpointLSN.description,
                "lastLSN": info.lastLSN.description, "baseLSN": info.baseLSN.description,
                "resourceManagersAtCheckpoint": info.resourceManagers, "transactionsAtCheckpoint": info.transactionsAtCheckpoint,
            ].merging(streamFields(name: info.stream, ids: ids)) { a, _ in a }
            // The registered RMs are the checkpoint's plus any registered after it: replay to see them all.
            do {
                let tm = try openRecoveredTM(log, stream: info.stream)
                entry["resourceManagers"] = tm.registeredResourceManagers.map { rmJSON($0, ids: ids) }
                entry["transactionsOwed"] = tm.transactionSnapshots().count
                entry["virtualClock"] = tm.virtualClock
            } catch {
                entry["error"] = "\(error)"
                if let e = error as? LogError { entry["code"] = e.code.rawValue }
                failures.append((info.stream, error))
            }
            entries.append(entry)
        }
        if json { printJSON(entries) } else { printText(entries) }
        // The list is printed whole, but a TM that cannot be read or replayed is not a success: exit 0 told a
        // script that a TM whose stream is damaged was fine.
        if let e = Self.failure(unreadable: unreadable, replay: failures) { throw fail(e) }
    }

    /// The one error `tm list` ends with when some TMs cannot be read or replayed: `corrupt` when any of it
    /// is damage (exit 1), else the first error; naming the streams.
    static func failure(unreadable: [(stream: String, error: LogError)], replay: [(stream: String, error: any Error)]) -> LogError? {
        let all: [(stream: String, error: any Error)] = unreadable.map { ($0.stream, $0.error as any Error) } + replay
        guard let first = all.first else { return nil }
        func streams(_ names: [String]) -> String { (names.count == 1 ? "stream " : "streams ") + names.joined(separator: ", ") }
        var what: [String] = []
        if !unreadable.isEmpty {
            let n = unreadable.count
            what.append("\(n == 1 ? "1 transaction-manager checkpoint cannot be read" : "\(n) transaction-manager checkpoints cannot be read") (\(streams(unreadable.map(\.stream))))")
        }
        if !replay.isEmpty {
            let n = replay.count
            what.append("\(n == 1 ? "1 transaction manager cannot be replayed" : "\(n) transaction managers cannot be replayed") (\(streams(replay.map(\.stream))))")
        }
        let damaged = all.contains { ($0.error as? LogError)?.code == .corrupt }
        let code = damaged ? LogError.Code.corrupt : (first.error as? LogError)?.code ?? .io
        let cause = (first.error as? LogError)?.message ?? "\(first.error)"
        return LogError(code, what.joined(separator: "; ") + (damaged ? "; run txlog verify" : ": \(cause)"))
    }

    private func printText(_ entries: [[String: Any]]) {
        if entries.isEmpty { print("no transaction managers in \(escaped(path))") }
        for e in entries {
            guard let id = e["id"] else {
                print("stream \(escaped(e["stream"] as? String ?? ""))  cannot read its transaction-manager checkpoint: \(escaped(e["error"] as? String ?? ""))")
                continue
            }
            print("tm \(id)  stream \(escaped(e["stream"] as? String ?? ""))  checkpoint \(e["checkpointLSN"]!)  base \(e["baseLSN"]!)  last \(e["lastLSN"]!)")
            if let err = e["error"] as? String { print("  cannot replay: \(escaped(err))") }
            if let owed = e["transactionsOwed"], let clock = e["virtualClock"] {
                print("  virtual clock \(clock), \(owed) transaction(s) owed work")
            }
            guard let rms = e["resourceManagers"] as? [[String: Any]] else { continue }
            print("  \(rms.count) resource manager(s)")
            for rm in rms {
                let d = rm["description"] as? String ?? ""
                print("    rm \(rm["id"]!)  stream \(escaped(rm["stream"] as? String ?? ""))" + (d.isEmpty ? "" : "  \"\(escaped(d))\""))
            }
        }
    }
}

/// Opens the TM in `stream` and replays its stream (on a read-only log, recovery writes nothing).
func openRecoveredTM(_ log: LogStore, stream: String, options: TransactionManagerOptions = .init()) throws -> TransactionManager {
    let tm = try TransactionManager.open(log: log, stream: stream, options: options)
    try tm.recover()
    return tm
}

func rmJSON(_ rm: (id: GUID, stream: String, description: String), ids: [String: UInt16]) -> [String: Any] {
    ["id": rm.id.description, "stream": rm.stream, "description": rm.description].merging(streamFields(name: rm.stream, ids: ids)) { a, _ in a }
}

func recoveryJSON(_ r: RecoveryStatistics) -> [String: Any] {
    [
        "checkpointLSN": r.checkpointLSN.description, "recordsScanned": r.recordsScanned, "lastRecoveredLSN": r.lastRecoveredLSN.description,
        "committing": r.committing, "aborting": r.aborting, "inDoubt": r.inDoubt, "durationNanos": r.durationNanos,
    ]
}

extension GUID: ExpressibleByArgument {
    public init?(argument: String) { self.init(argument) }
}

extension ForcedAction: ExpressibleByArgument {
    public init?(argument: String) {
        guard let a = ForcedAction.allCases.first(where: { $0.description == argument }) else { return nil }
        self = a
    }
    public static var allValueStrings: [String] { allCases.map(\.description) }
}

/// Runs blocking work (opening a log, recovery, closing) on a dedicated thread and suspends until it is
/// done, so no blocking system call runs on Swift's cooperative pool.
func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, any Error>) in
        Thread { c.resume(with: Result { try body() }) }.start()
    }
}
