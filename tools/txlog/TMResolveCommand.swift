// `txlog tm resolve`: force the outcome of an in-doubt or unfinished transaction (an audited, forced record).

import ArgumentParser
import Foundation
import LogStore
import TransactionManager

struct TMResolveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resolve", abstract: "Force a transaction's outcome, or forget it (changes the log).",
        discussion: """
            Opens the log for writing (no other process may have it open), replays the TM, and forces the \
            outcome of transaction TXID: `commit` or `rollback` (refused when the outcome is already known and \
            differs), or `forget` (drops it without telling its participants, which must then be repaired by \
            hand). The forced record names the actor, the time and the reason, and is durable before anything \
            else happens. The TM then closes, writing a checkpoint (not after a refusal); participants get the \
            outcome when their resource managers next recover.

            Exit codes: 0 done; refused (the message starts with the LogError code): 3 not-found (no such \
            transaction owed an outcome, or no such TM stream), 8 invalid-state; 1 damage; 2 cannot open the log \
            (locked: it is open for writing elsewhere); 64 usage error. Every code: txlog --help.

            Example:
              txlog tm resolve LOG 5f0c0d4e-0b1a-4c7e-9d3a-2f6b8e1c4a70 commit \\
                  --reason "coordinator lost" --actor ops
            """)

    @Argument(help: "The log directory.") var path: String
    @Argument(help: "The transaction's id.") var transaction: GUID
    @Argument(help: "commit, rollback or forget.") var action: ForcedAction
    @Option(help: "Why (recorded in the forced record).") var reason = ""
    @Option(help: "Who (recorded in the forced record; default: txlog@$USER).") var actor: String?
    @Option(help: "The TM's stream.") var stream = TransactionManager.defaultStreamName
    @Flag(help: "Print JSON.") var json = false

    /// The forced record is the audit trail of who forced what (`tm audit`): an empty actor (`--actor
    /// "$OPERATOR"` with the variable unset) recorded an anonymous outcome.
    func validate() throws {
        if let actor, actor.allSatisfy(\.isWhitespace) { throw ValidationError("--actor must name who forces the outcome (default: txlog@$USER)") }
    }

    func run() async throws {
        let (path, stream, id) = (self.path, self.stream, self.transaction)
        let log: LogStore
        do { log = try await onThread { try LogStore.open(at: path) } } catch { throw fail(error, opening: true) }
        let tm: TransactionManager
        do {
            tm = try await onThread { try openRecoveredTM(log, stream: stream) }
        } catch {
            _ = try? await onThread { try log.close() }
            throw fail(error)
        }
        let before = tm.transactionSnapshots().first { $0.id == id }
        let who = actor ?? "txlog@" + (ProcessInfo.processInfo.environment["USER"] ?? "unknown")
        var failure: (any Error)?
        do {
            try await tm.resolve(id, action: action, actor: who, reason: reason)
        } catch {
            failure = error
        }
        let after = tm.transactionSnapshots().first { $0.id == id }
        do {
            // A refusal leaves the TM's stream as it was: no checkpoint (which would also move its base).
            let refused = failure != nil
            try await onThread {
                if !refused { try tm.close() }
                try log.close()
            }
        } catch {
            if failure == nil { failure = error }
        }
        if let failure { throw fail(failure) }
        report(before: before, after: after, actor: who)
    }

    private func report(before: TransactionSnapshot?, after: TransactionSnapshot?, actor: String) {
        let owed = after?.participants.filter { !$0.acknowledged }.count ?? 0
        if json {
            printJSON([
                "transaction": transaction.description, "action": action.description, "actor": actor, "reason": reason,
                "stateBefore": before?.state.rawValue ?? NSNull(), "outcomeBefore": before?.outcome.description ?? NSNull(),
                "state": after?.state.rawValue ?? "forgotten", "outcome": after?.outcome.description ?? NSNull(), "participantsOwed": owed,
            ] as [String: Any])
            return
        }
        let was = before.map { "\($0.state), outcome \($0.outcome)" } ?? "unknown"
        // The actor is the caller's (or $USER): printed raw, a newline in it forged an output line.
        print("resolved \(transaction): \(action) (was \(was)); forced record written and durable, by \(escaped(actor))")
        if let after {
            print("now \(after.state), outcome \(after.outcome); \(owed) participant(s) get it when their resource managers recover")
        } else {
            print("the transaction is forgotten; its participants were not told")
        }
    }
}
