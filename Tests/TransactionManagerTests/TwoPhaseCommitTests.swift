// Two-phase commit over a durable TM: notification order, the one forced write (shared-log fast path),
// the records written, read-only participants and single-phase commit.

import Foundation
import LogStore
import Testing
@testable import TransactionManager

@Suite struct TwoPhaseCommitTests {
    @Test func twoDurableRMsCommitWithOneSync() async throws {
        let dir = TMScratch("2pc")
        defer { dir.remove() }
        let (log, tm) = try dir.createOnline()
        defer { try? log.close() }
        let a = try ScriptedRM.online(tm, "accounts")
        let b = try ScriptedRM.online(tm, "ledger")
        let tx = try tm.createTransaction(description: "transfer")
        let ea = try a.enlist(tx, info: Array("row 17".utf8))
        let eb = try b.enlist(tx)
        #expect(tm.virtualClock == 1)
        let syncs = syncCount(log)
        try await tx.commit()
        #expect(syncCount(log) - syncs == 1)

        #expect(a.kinds(tx.id) == [.prePrepare, .prepare, .commit])
        #expect(b.kinds(tx.id) == [.prePrepare, .prepare, .commit])
        #expect(tx.state == .committed)
        #expect(tx.outcome == .committed)
        #expect(ea.currentState == .committed)
        #expect(eb.currentState == .committed)
        #expect(tm.virtualClock == 2)
        #expect(tm.transactionSnapshots().isEmpty)
        #expect(a.errors == [] && b.errors == [])

        // TM stream: the two registrations, the forced decision, the lazy end record.
        let entries = try tmEntries(tm)
        #expect(entries.map(\.record.kind) == [.rmRegistered, .rmRegistered, .outcome, .end])
        guard case .outcome(let t) = entries[2].record, case .end(let ended) = entries[3].record else {
            Issue.record("unexpected records \(entries)")
            return
        }
        #expect(entries[2].clock == 2)
        #expect(t.id == tx.id)
        #expect(t.outcome == .committed)
        #expect(!t.superior)
        #expect(t.description == "transfer")
        #expect(t.enlistments.map(\.id) == [ea.id, eb.id])
        #expect(t.enlistments.map(\.rm) == [a.id, b.id])
        #expect(t.enlistments.map(\.mask) == [NotificationMask.twoPhase.rawValue, NotificationMask.twoPhase.rawValue])
        #expect(t.enlistments.map(\.recoveryInformation) == [Array("row 17".utf8), []])
        #expect(ended == tx.id)

        // Each RM's prepare record precedes the decision in the shared log, and the one sync covered it.
        #expect(try a.ownRecords() == ["prepare \(tx.id)", "commit \(tx.id)"])
        #expect(try b.ownRecords() == ["prepare \(tx.id)", "commit \(tx.id)"])
        let decisionLSN = try tmDataLSNs(tm)[2]
        for rm in [a, b] {
            let prepareLSN = try #require(try rm.ownRecordLSNs().first)
            #expect(prepareLSN < decisionLSN)
        }
        #expect(log.durableLSN >= decisionLSN)
    }

    @Test func concurrentTransactionsEachGetTheirOwnDecision() async throws {
        let dir = TMScratch("2pc-many")
        defer { dir.remove() }
        let (log, tm) = try dir.createOnline()
        defer { try? log.close() }
        let a = try ScriptedRM.online(tm, "a")
        let b = try ScriptedRM.online(tm, "b")
        let txs = try (0..<8).map { i in try tm.createTransaction(description: "t\(i)") }
        for tx in txs {
            _ = try a.enlist(tx)
            _ = try b.enlist(tx)
        }
        let syncs = syncCount(log)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for tx in txs { group.addTask { try await tx.commit() } }
            try await group.waitForAll()
        }
        // Group commit may share syncs, never needs more than one per transaction.
        #expect(syncCount(log) - syncs <= 8)
        for tx in txs {
            #expect(tx.outcome == .committed)
            #expect(a.kinds(tx.id) == [.prePrepare, .prepare, .commit])
            #expect(b.kinds(tx.id) == [.prePrepare, .prepare, .commit])
        }
        let records = try tmRecords(tm)
        let decided = records.compactMap { r -> GUID? in if case .outcome(let t) = r { t.id } else { nil } }
        let ended = records.compactMap { r -> GUID? in if case .end(let id) = r { id } else { nil } }
        #expect(Set(decided) == Set(txs.map(\.id)))
        #expect(Set(ended) == Set(txs.map(\.id)))
        #expect(decided.count == 8 && ended.count == 8)
        #expect(tm.virtualClock == 9)
    }

    @Test func answersFromOtherThreadsUnderConcurrentCommits() async throws {
        let dir = TMScratch("2pc-async")
        defer { dir.remove() }
        let (log, tm) = try dir.createOnline()
        defer { try? log.close() }
        let rms = try (0..<3).map { try ScriptedRM.online(tm, "rm\($0)") }
        for rm in rms {
            for kind in [ScriptedRM.Kind.prePrepare, .prepare, .commit] { rm.on(kind, .answerLater) }
        }
        let txs = try (0..<16).map { _ in try tm.createTransaction() }
        for tx in txs {
            for rm in rms { _ = try rm.enlist(tx) }
        }
        let syncs = syncCount(log)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for tx in txs { group.addTask { try await tx.commit() } }
            try await group.waitForAll()
        }
        #expect(syncCount(log) - syncs <= 16)
        for tx in txs {
            #expect(tx.state == .committed)
            for rm in rms { #expect(rm.kinds(tx.id) == [.prePrepare, .prepare, .commit]) }
        }
        for rm in rms { #expect(rm.errors == []) }
        #expect(tm.transactionSnapshots().isEmpty)
        #expect(try tmRecordKinds(tm).filter { $0 == .end }.count == 16)
    }

    // MARK: Read-only participants

    @Test func readOnlyAtPrePrepareGetsNothingMore() async throws {
        let dir = TMScratch("ro-pp")
        defer { dir.remove() }
        let (log, tm) = try dir.createOnline()
        defer { try? log.close() }
        let a = try ScriptedRM.online(tm, "reader")
        let b = try ScriptedRM.online(tm, "writer")
        let c = try ScriptedRM.online(tm, "late reader")
        a.on(.prePrepare, .readOnly)
        c.on(.prepare, .readOnly)
        let tx = try tm.createTransaction()
        let ea = try a.enlist(tx)
        let eb = try b.enlist(tx)
        let ec = try c.enlist(tx)
        let syncs = syncCount(log)
        try await tx.commit()
        #expect(syncCount(log) - syncs == 1)
        #expect(a.kinds(tx.id) == [.prePrepare])
        #expect(b.kinds(tx.id) == [.prePrepare, .prepare, .commit])
        #expect(c.kinds(tx.id) == [.prePrepare, .prepare])
        #expect(ea.currentState == .readOnly)
        #expect(ec.currentState == .readOnly)
        #expect(eb.currentState == .committed)
        guard case .outcome(let t)? = try tmRecords(tm).first(where: { $0.kind == .outcome }) else {
            Issue.record("no outcome record")
            return
        }
        #expect(t.enlistments.map(\.id) == [eb.id])  // read-only enlistments are never logged
        #expect(try a.ownRecords() == [])
        #expect(try c.ownRecords() == [])
    }

    @Test func fullyReadOnlyTransactionWritesNothingAndCostsNoSync() async throws {
        let dir = TMScratch("ro-all")
        defer { dir.remove() }
        let (log, tm) = try dir.createOnline()
        defer { try? log.close() }
        let a = try ScriptedRM.online(tm, "a")
        let b = try ScriptedRM.online(tm, "b")
        a.on(.prePrepare, .readOnly)
        b.on(.prepare, .readOnly)
        let tx = try tm.createTransaction()
        _ = try a.enlist(tx)
        _ = try b.enlist(tx)
        let syncs = syncCount(log)
        let recordsBefore = try tmRecordKinds(tm)
        try await tx.commit()
        #expect(syncCount(log) - syncs == 0)
        #expect(try tmRecordKinds(tm) == recordsBefore)
        #expect(recordsBefore == [.rmRegistered, .rmRegistered])
        #expect(a.kinds(tx.id) == [.prePrepare])
        #expect(b.kinds(tx.id) == [.prePrepare, .prepare])
        #expect(tx.outcome == .committed)
        #expect(tx.state == .committed)
    }

    @Test func readOnlyBeforeCommitIsNeverNotified() async throws {
        let tm = TransactionManager.volatile()
        try tm.recover()
        let a = try ScriptedRM.online(tm, volatile: true)
        let b = try ScriptedRM.online(tm, volatile: true)
        let tx = try tm.createTransaction()
        try a.enlist(tx).readOnly()
        _ = try b.enlist(tx)
        try await tx.commit()
        #expect(a.kinds(tx.id) == [])
        #expect(b.kinds(tx.id) == [.prePrepare, .prepare, .commit])
    }

    // MARK: Single-phase commit

    @Test func singleWriterCommitsInOnePhaseWithoutTMRecordOrSync() async throws {
        let dir = TMScratch("1pc")
        defer { dir.remove() }
        let (log, tm) = try dir.createOnline()
        defer { try? log.close() }
        let writer = try ScriptedRM.online(tm, "writer")
        let reader = try ScriptedRM.online(tm, "reader")
        let monitor = try ScriptedRM.online(tm, "monitor")
        let tx = try tm.createTransaction()
        let ew = try writer.enlist(tx, mask: .all)
        try reader.enlist(tx).readOnly()
        _ = try monitor.enlist(tx, mask: .rollback)  // not a writer: no prepare in its mask
        let syncs = syncCount(log)
        try await tx.commit()
        #expect(writer.kinds(tx.id) == [.singlePhaseCommit])
        #expect(reader.kinds(tx.id) == [])
        #expect(monitor.kinds(tx.id) == [])
        #expect(ew.currentState == .committed)
        #expect(tx.outcome == .committed)
        #expect(tx.state == .committed)
        #expect(syncCount(log) - syncs == 0)
        #expect(try tmRecordKinds(tm) == [.rmRegistered, .rmRegistered, .rmRegistered])
        #expect(try writer.ownRecords() == ["commit \(tx.id)"])
    }

    @Test func singlePhaseRejectFallsBackToTwoPhases() async throws {
        let dir = TMScratch("1pc-reject")
        defer { dir.remove() }
        let (log, tm) = try dir.createOnline()
        defer { try? log.close() }
        let writer = try ScriptedRM.online(tm, "writer")
        let reader = try ScriptedRM.online(tm, "reader")
        writer.on(.singlePhaseCommit, .rejectSinglePhase)
        let tx = try tm.createTransaction()
        _ = try writer.enlist(tx, mask: .all)
        try reader.enlist(tx).readOnly()
        let syncs = syncCount(log)
        try await tx.commit()
        #expect(writer.kinds(tx.id) == [.singlePhaseCommit, .prePrepare, .prepare, .commit])
        #expect(reader.kinds(tx.id) == [])
        #expect(syncCount(log) - syncs == 1)
        #expect(try tmRecordKinds(tm) == [.rmRegistered, .rmRegistered, .outcome, .end])
        #expect(try writer.ownRecords() == ["prepare \(tx.id)", "commit \(tx.id)"])
        #expect(writer.errors == [])
    }

    @Test func twoWritersNeverGetSinglePhase() async throws {
        let tm = TransactionManager.volatile()
        try tm.recover()
        let a = try ScriptedRM.online(tm, volatile: true)
        let b = try ScriptedRM.online(tm, volatile: true)
        let tx = try tm.createTransaction()
        _ = try a.enlist(tx, mask: .all)
        _ = try b.enlist(tx, mask: .all)
        try await tx.commit()
        #expect(a.kinds(tx.id) == [.prePrepare, .prepare, .commit])
        #expect(b.kinds(tx.id) == [.prePrepare, .prepare, .commit])
    }

    @Test func singlePhaseVetoAborts() async throws {
        let tm = TransactionManager.volatile()
        try tm.recover()
        let writer = try ScriptedRM.online(tm, volatile: true)
        let reader = try ScriptedRM.online(tm, volatile: true)
        writer.on(.singlePhaseCommit, .veto)
        let tx = try tm.createTransaction()
        _ = try writer.enlist(tx, mask: .all)
        try reader.enlist(tx).readOnly()
        await expectLogError(.aborted) { try await tx.commit() }
        #expect(writer.kinds(tx.id) == [.singlePhaseCommit])
        #expect(reader.kinds(tx.id) == [])
        #expect(tx.outcome == .aborted)
        #expect(tx.state == .aborted)
    }
}
