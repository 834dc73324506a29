// Every answer rule: each Enlistment answer is accepted when the notification it answers is out (or, for
// read-only and veto, while the enlistment may still leave or abort) and refused with invalid-state
// otherwise, without changing the enlistment's state.

import Foundation
import LogStore
import Testing
@testable import TransactionManager

/// The answers an RM can give through its enlistment.
enum AnswerCall: String, CaseIterable {
    case prePrepareComplete, prepareComplete, commitComplete, rollbackComplete, readOnly, singlePhaseReject, veto, recover, requestOutcome

    func call(_ e: Enlistment) throws {
        switch self {
        case .prePrepareComplete: try e.prePrepareComplete()
        case .prepareComplete: try e.prepareComplete()
        case .commitComplete: try e.commitComplete()
        case .rollbackComplete: try e.rollbackComplete()
        case .readOnly: try e.readOnly()
        case .singlePhaseReject: try e.singlePhaseReject()
        case .veto: try e.rollback()
        case .recover: try e.recover()
        case .requestOutcome: _ = try e.requestOutcome()
        }
    }
}

/// Calls every answer not in `allowed` and expects each to be refused with invalid-state, leaving the
/// enlistment's state as it was.
func expectAnswersRefused(_ e: Enlistment, except allowed: Set<AnswerCall>, sourceLocation: SourceLocation = #_sourceLocation) {
    let before = e.currentState
    for a in AnswerCall.allCases where !allowed.contains(a) {
        expectLogError(.invalidState, sourceLocation: sourceLocation) { try a.call(e) }
        #expect(e.currentState == before, "\(a.rawValue) changed the state to \(e.currentState)", sourceLocation: sourceLocation)
    }
}

@Suite struct AnswerRuleTests {
    /// A volatile TM with one online scripted RM (answer rules do not depend on the log).
    static func setUp() throws -> (TransactionManager, ScriptedRM) {
        let tm = TransactionManager.volatile()
        try tm.recover()
        return (tm, try ScriptedRM.online(tm, volatile: true))
    }

    @Test func activeEnlistmentMayOnlyLeaveOrVeto() throws {
        let (tm, rm) = try Self.setUp()
        let tx = try tm.createTransaction()
        let e = try rm.enlist(tx)
        expectAnswersRefused(e, except: [.readOnly, .veto])
        try e.readOnly()
        #expect(e.currentState == .readOnly)
        expectAnswersRefused(e, except: [])  // read-only: nothing more is allowed, not even a veto

        let tx2 = try tm.createTransaction()
        let e2 = try rm.enlist(tx2)
        try e2.rollback()
        #expect(e2.currentState == .aborted)
        #expect(tx2.state == .aborted)
        #expect(tx2.outcome == .aborted)
        #expect(rm.kinds(tx2.id) == [])  // the vetoing enlistment is not told its own rollback
        #expect(rm.kinds(tx.id) == [])
    }

    @Test func prePrepareCompleteOnlyWhilePrePrepareIsOut() async throws {
        let (tm, rm) = try Self.setUp()
        rm.on(.prePrepare, .hold)
        let tx = try tm.createTransaction()
        let e = try rm.enlist(tx)
        let commit = Task { try await tx.commit() }
        #expect(await rm.waitFor(.prePrepare))
        #expect(e.currentState == .prePreparing)
        #expect(tx.state == .prePreparing)
        expectAnswersRefused(e, except: [.prePrepareComplete, .readOnly, .veto])
        try rm.release(.prePrepare)
        try await commit.value
        #expect(rm.kinds(tx.id) == [.prePrepare, .prepare, .commit])
        #expect(e.currentState == .committed)
        expectAnswersRefused(e, except: [])  // finished: nothing is allowed
        #expect(rm.errors == [])
    }

    @Test func prepareCompleteOnlyWhilePrepareIsOut() async throws {
        let (tm, rm) = try Self.setUp()
        rm.on(.prepare, .hold)
        let tx = try tm.createTransaction()
        let e = try rm.enlist(tx)
        let commit = Task { try await tx.commit() }
        #expect(await rm.waitFor(.prepare))
        #expect(e.currentState == .preparing)
        #expect(tx.state == .preparing)
        expectAnswersRefused(e, except: [.prepareComplete, .readOnly, .veto])
        try rm.release(.prepare)
        try await commit.value
        #expect(rm.kinds(tx.id) == [.prePrepare, .prepare, .commit])
        #expect(rm.errors == [])
    }

    @Test func commitCompleteOnlyWhileCommitIsOut() async throws {
        let (tm, rm) = try Self.setUp()
        rm.on(.commit, .hold)
        let tx = try tm.createTransaction()
        let e = try rm.enlist(tx)
        let commit = Task { try await tx.commit() }
        #expect(await rm.waitFor(.commit))
        #expect(e.currentState == .committing)
        #expect(tx.state == .committing)
        #expect(tx.outcome == .committed)
        expectAnswersRefused(e, except: [.commitComplete, .requestOutcome])
        // Asking for the outcome once it is decided sends it again.
        #expect(try e.requestOutcome() == .committed)
        #expect(rm.kinds(tx.id) == [.prePrepare, .prepare, .commit, .commit])
        try rm.release(.commit)
        try await commit.value
        #expect(e.currentState == .committed)
        // The second commit notification is a duplicate: answering it again is refused.
        expectLogError(.invalidState) { try rm.release(.commit) }
        #expect(tx.state == .committed)
    }

    @Test func rollbackCompleteOnlyWhileRollbackIsOut() async throws {
        let (tm, rm) = try Self.setUp()
        rm.on(.rollback, .hold)
        let tx = try tm.createTransaction()
        let e = try rm.enlist(tx)
        try tx.rollback()
        #expect(rm.kinds(tx.id) == [.rollback])
        #expect(e.currentState == .aborting)
        #expect(tx.state == .aborting)
        // Late votes after a rollback overtook them are ignored, not refused (see TransactionManager+Answers).
        for late in [AnswerCall.prePrepareComplete, .prepareComplete, .readOnly, .veto] {
            try late.call(e)
            #expect(e.currentState == .aborting, "\(late.rawValue)")
        }
        expectAnswersRefused(e, except: [.rollbackComplete, .requestOutcome, .prePrepareComplete, .prepareComplete, .readOnly, .veto])
        #expect(try e.requestOutcome() == .aborted)
        #expect(rm.kinds(tx.id) == [.rollback, .rollback])
        try rm.release(.rollback)
        #expect(e.currentState == .aborted)
        #expect(await tx.waitForOutcome() == .aborted)
        #expect(tx.state == .aborted)
        expectLogError(.invalidState) { try e.rollbackComplete() }
    }

    @Test func singlePhaseAnswersOnlyWhileSinglePhaseIsOut() async throws {
        let (tm, rm) = try Self.setUp()
        rm.on(.singlePhaseCommit, .hold)
        let tx = try tm.createTransaction()
        let e = try rm.enlist(tx, mask: .all)
        expectLogError(.invalidState) { try e.singlePhaseReject() }
        let commit = Task { try await tx.commit() }
        #expect(await rm.waitFor(.singlePhaseCommit))
        #expect(e.currentState == .singlePhase)
        #expect(tx.state == .committingSinglePhase)
        expectAnswersRefused(e, except: [.commitComplete, .singlePhaseReject, .veto])
        try rm.release(.singlePhaseCommit, reply: .rejectSinglePhase)
        try await commit.value
        #expect(rm.kinds(tx.id) == [.singlePhaseCommit, .prePrepare, .prepare, .commit])
        #expect(tx.outcome == .committed)
        #expect(rm.errors == [])
    }

    @Test func preparedEnlistmentMayOnlyRequestTheOutcome() async throws {
        let (tm, rm) = try Self.setUp()
        let asked = GUIDBox()
        let tx = try tm.createTransaction()
        let e = try rm.enlist(tx)
        let superior = try tx.enlistSuperior { asked.append($0) }
        #expect(try await superior.prepare() == .prepared)
        #expect(e.currentState == .prepared)
        expectAnswersRefused(e, except: [.requestOutcome])
        expectLogError(.invalidState) { try e.setRecoveryInformation([1]) }
        // Undecided, with a superior: the superior is asked.
        #expect(try e.requestOutcome() == .undetermined)
        #expect(asked.values == [tx.id])
        try await superior.commit()
        #expect(rm.kinds(tx.id) == [.prePrepare, .prepare, .commit])
        #expect(e.currentState == .committed)
    }

    @Test func requestOutcomeBeforeEveryoneVotedRollsBack() async throws {
        let (tm, a) = try Self.setUp()
        let b = try ScriptedRM.online(tm, "slow", volatile: true)
        b.on(.prepare, .hold)
        let tx = try tm.createTransaction()
        let ea = try a.enlist(tx)
        _ = try b.enlist(tx)
        let commit = Task { try await tx.commit() }
        #expect(await b.waitFor(.prepare))
        #expect(ea.currentState == .prepared)
        // No superior and not everyone prepared: presumed abort, now.
        #expect(try ea.requestOutcome() == .aborted)
        await expectLogError(.aborted) { try await commit.value }
        #expect(a.kinds(tx.id) == [.prePrepare, .prepare, .rollback])
        #expect(b.kinds(tx.id) == [.prePrepare, .prepare, .rollback])
        // b's late vote is ignored.
        try b.release(.prepare)
        #expect(b.errors == [])
        #expect(await tx.waitForOutcome() == .aborted)
    }

    @Test func recoveryInformationIsBoundedAndFixedOncePrepared() throws {
        let (tm, rm) = try Self.setUp()
        let tx = try tm.createTransaction()
        let e = try rm.enlist(tx)
        expectLogError(.invalidArgument) { try e.setRecoveryInformation([UInt8](repeating: 0, count: TMLimits.maxRecoveryInformation + 1)) }
        try e.setRecoveryInformation([UInt8](repeating: 7, count: TMLimits.maxRecoveryInformation))
        try e.setRecoveryInformation([9, 9])
        #expect(e.recoveryInformation == [9, 9])
        try tx.rollback()
        expectLogError(.invalidState) { try e.setRecoveryInformation([1]) }
    }
}

/// Collects GUIDs from a callback.
final class GUIDBox: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [GUID] = []
    func append(_ g: GUID) { lock.withLock { list.append(g) } }
    var values: [GUID] { lock.withLock { list } }
}
