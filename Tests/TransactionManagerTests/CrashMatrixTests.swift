// The crash matrix (docs: /work/shared/reference/ktm.md §3.7): a real `txlog tm crash-child` process runs one
// two-phase commit across two durable RMs and SIGKILLs itself at a step; this process then recovers the
// log and checks, at each RM, the outcome it ends up applying (its own stream plus what recovery tells it):
//
//   before-prepare, after-one-prepared, after-all-prepared   aborted at both; the TM never logged the
//       transaction, so no recover notification (presumed abort: a prepare record nobody asks about rolls back)
//   after-commit-record, before-end-record                    committed at both; recover + commit to every
//       RM whose commit was not durable in its own stream
//   during-recovery (after-commit-record, then a child killed while delivering commit during recovery)
//                                                              the same as after-commit-record (idempotent)
//   none                                                       committed; nothing to recover
//
// After the acknowledgements the transaction is finished: a further recovery owes nothing.

import Foundation
import LogStore
import Testing
@testable import TransactionManager

@Suite("TM crash matrix")
struct CrashMatrixTests {
    enum Expect { case aborted, committed, clean }

    struct Case: Sendable, CustomTestStringConvertible {
        var steps: [String]
        var expect: Expect
        var testDescription: String { steps.joined(separator: " → ") }
    }

    static let cases: [Case] = [
        Case(steps: ["before-prepare"], expect: .aborted),
        Case(steps: ["after-one-prepared"], expect: .aborted),
        Case(steps: ["after-all-prepared"], expect: .aborted),
        Case(steps: ["after-commit-record"], expect: .committed),
        Case(steps: ["before-end-record"], expect: .committed),
        Case(steps: ["after-commit-record", "during-recovery"], expect: .committed),
        Case(steps: ["none"], expect: .clean),
    ]

    @Test("SIGKILL at a step of two-phase commit; every RM recovers to the protocol's outcome", arguments: CrashMatrixTests.cases)
    func crashStep(_ c: Case) async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tm-crash-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for step in c.steps {
            let run = try await TxlogBinary.run(["tm", "crash-child", dir, "--step", step])
            if step == "none" {
                #expect(!run.signaled && run.status == 0, "\(step): \(run.summary)")
            } else {
                #expect(run.killed, "\(step): the child must die by SIGKILL: \(run.summary)")
                #expect(run.out.contains("dying at \(step)"), "\(step): killed somewhere else: \(run.summary)")
            }
        }

        let first = try CrashRecovery.run(dir)
        let context: Comment = "\(c.testDescription): \(first.views), recovery \(first.stats)"
        #expect(first.problems.isEmpty, context)
        switch c.expect {
        case .aborted:
            // Presumed abort: nothing of the transaction reached the TM's stream.
            #expect(first.stats.committing == 0 && first.stats.aborting == 0 && first.stats.inDoubt == 0, context)
            for v in first.views {
                #expect(v.notes.isEmpty, "no notification for a transaction the TM never logged: \(v)")
                #expect(!v.recordsBefore.contains("committed"), "\(v)")
                #expect(v.outcome == .aborted, "\(v)")
            }
        case .committed:
            let lostCommits = first.views.filter { !$0.recordsBefore.contains("committed") }.count
            #expect(lostCommits == 0 || first.stats.committing == 1, context)
            for v in first.views {
                #expect(v.outcome == .committed, "\(v)")
                #expect(!v.recordsBefore.contains("aborted"), "\(v)")
                #expect(v.recordsBefore.contains("prepare"), "the decision record's flush made the prepare record durable: \(v)")
                if !v.recordsBefore.contains("committed") {
                    #expect(v.notes == [.recover, .commit], "an RM that did not make its commit durable gets recover, then commit: \(v)")
                } else {
                    #expect(v.notes.isEmpty || v.notes == [.recover, .commit], "\(v)")
                }
            }
        case .clean:
            #expect(first.stats.committing == 0 && first.stats.aborting == 0 && first.stats.inDoubt == 0, context)
            for v in first.views {
                #expect(v.notes.isEmpty, "\(v)")
                #expect(v.recordsBefore == ["work", "prepare", "committed"], "\(v)")
            }
        }
        #expect(first.owedAfterAcks == 0, "every outcome was acknowledged, yet the TM still owes work: \(context)")

        // Idempotence: recovering again owes nothing and changes no RM's outcome.
        let second = try CrashRecovery.run(dir)
        #expect(second.problems.isEmpty)
        #expect(second.stats.committing == 0 && second.stats.aborting == 0 && second.stats.inDoubt == 0, "second recovery: \(second.stats)")
        for (a, b) in zip(first.views, second.views) {
            #expect(b.notes.isEmpty, "second recovery sent \(b)")
            #expect(b.outcome == a.outcome, "outcome changed between recoveries: \(a) then \(b)")
        }
    }
}
