// `txlog tm transactions`: what a restart would owe, by replaying the TM's stream in a read-only open.

import ArgumentParser
import Foundation
import LogStore
import TransactionManager

struct TMTransactionsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "transactions", abstract: "List the transactions a TM still owes work (read-only).",
        discussion: """
            Opens the log read-only, replays the TM's stream (recovery writes nothing on a read-only log) and \
            prints every transaction still owed work: in-doubt (prepared under a superior, waiting for \
            `tm resolve`), committing (decided; commit is resent to participants that have not acknowledged) or \
            aborting. Also prints the registered resource managers and what the replay did.

            The log holds no wall-clock times: a transaction's age is in virtual-clock ticks (commits decided \
            since its oldest TM record still in the stream, or since the checkpoint that carries it).

            Example:
              txlog tm transactions LOG --json
            """)

    @Argument(help: "The log directory.") var path: String
    @Option(help: "The TM's stream.") var stream = TransactionManager.defaultStreamName
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let log = try openForReading(path)
        let report: [String: Any]
        do {
            let tm = try openRecoveredTM(log, stream: stream)
            let ages = try transactionAges(tm)
            let clock = tm.virtualClock
            let ids = streamIDs(log)
            report = [
                "tm": tm.id.description, "stream": stream, "virtualClock": clock,
                "recovery": recoveryJSON(tm.lastRecovery),
                "resourceManagers": tm.registeredResourceManagers.map { rmJSON($0, ids: ids) },
                "transactions": tm.transactionSnapshots().map { transactionJSON($0, age: ages[$0.id], clock: clock) },
            ].merging(streamFields(name: stream, ids: ids)) { a, _ in a }
        } catch {
            throw fail(error)
        }
        if json {
            printJSON(report)
        } else {
            printText(report)
        }
    }

    /// For each transaction, its oldest TM record still in the stream: LSN and virtual clock.
    private func transactionAges(_ tm: TransactionManager) throws -> [GUID: (lsn: LSN, clock: UInt64, checkpoint: Bool)] {
        guard let s = tm.stream else { return [:] }
        var first: [GUID: (LSN, UInt64, Bool)] = [:]
        // A checkpoint written in parts names its transactions only in the reassembled parts: those
        // transactions date from the latest index.
        var index: (LSN, UInt64, Bool)?
        var cursor = try s.records(from: .null)
        while let r = try cursor.next() {
            guard let summary = summarizeTMRecord(r.data) else { continue }
            if summary.kind == "checkpoint-index" { index = (r.lsn, summary.clock, true) }
            for id in summary.transactionIDs where first[id] == nil {
                first[id] = (r.lsn, summary.clock, summary.kind == "checkpoint")
            }
        }
        if let index {
            for t in tm.transactionSnapshots() where first[t.id] == nil { first[t.id] = index }
        }
        return first
    }

    private func transactionJSON(_ t: TransactionSnapshot, age: (lsn: LSN, clock: UInt64, checkpoint: Bool)?, clock: UInt64) -> [String: Any] {
        var ageJSON: [String: Any] = ["clockTicks": NSNull(), "sinceLSN": NSNull(), "fromCheckpoint": false]
        if let age {
            ageJSON = ["clockTicks": clock >= age.clock ? clock - age.clock : 0, "sinceLSN": age.lsn.description, "fromCheckpoint": age.checkpoint]
        }
        return [
            "id": t.id.description, "state": t.state.rawValue, "outcome": t.outcome.description, "superior": t.superior,
            "description": t.description, "age": ageJSON,
            "participants": t.participants.map {
                [
                    "enlistment": $0.enlistment.description, "resourceManager": $0.resourceManager.description, "state": $0.state.rawValue,
                    "acknowledged": $0.acknowledged, "mask": $0.mask.description, "recoveryInformationBytes": $0.recoveryInformationBytes,
                ] as [String: Any]
            },
        ]
    }

    private func printText(_ r: [String: Any]) {
        let rec = r["recovery"] as? [String: Any] ?? [:]
        print("tm \(r["tm"]!)  stream \(escaped(r["stream"] as? String ?? ""))  virtual clock \(r["virtualClock"]!)")
        // The replay time only on a terminal: piped, the output depends on the log alone.
        let ms = Double(rec["durationNanos"] as? UInt64 ?? 0) / 1e6
        print(
            "recovery  checkpoint \(rec["checkpointLSN"]!), \(rec["recordsScanned"]!) records replayed, last \(rec["lastRecoveredLSN"]!):"
                + " \(rec["committing"]!) committing, \(rec["aborting"]!) aborting, \(rec["inDoubt"]!) in doubt"
                + (stdoutIsTerminal ? String(format: " (%.2f ms)", ms) : ""))
        let rms = r["resourceManagers"] as? [[String: Any]] ?? []
        print("resource managers (\(rms.count))")
        for rm in rms {
            let d = rm["description"] as? String ?? ""
            print("  \(rm["id"]!)  stream \(escaped(rm["stream"] as? String ?? ""))" + (d.isEmpty ? "" : "  \"\(escaped(d))\""))
        }
        let txs = r["transactions"] as? [[String: Any]] ?? []
        print("transactions owed work (\(txs.count))")
        for t in txs {
            let age = t["age"] as? [String: Any] ?? [:]
            let ageText = (age["clockTicks"] as? UInt64).map {
                "age \($0) tick(s) since \(age["sinceLSN"]!)" + ((age["fromCheckpoint"] as? Bool) == true ? " (checkpoint)" : "")
            } ?? "age unknown"
            let d = t["description"] as? String ?? ""
            print(
                "  \(t["id"]!)  \(t["state"]!)  outcome \(t["outcome"]!)" + ((t["superior"] as? Bool) == true ? "  superior" : "")
                    + "  \(ageText)" + (d.isEmpty ? "" : "  \"\(escaped(d))\""))
            for p in t["participants"] as? [[String: Any]] ?? [] {
                let ack = (p["acknowledged"] as? Bool) == true ? "acknowledged" : "not acknowledged"
                print("    enlistment \(p["enlistment"]!)  rm \(p["resourceManager"]!)  \(p["state"]!)  \(ack)")
            }
        }
    }
}
