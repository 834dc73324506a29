// Checkpoints taken while a TM record is being appended. The TM changes a transaction's state under its
// lock and appends the record reporting it afterwards; the append can still fail (record too large, log
// full), and the change is then undone by a rollback. A checkpoint taken in that window must neither make
// the change durable nor lose the record if it lands (docs/TRANSACTIONS.md, "Checkpoints").

import Foundation
import LogFormat
import LogStore
import Testing
@testable import TransactionManager

@Suite struct RecordInFlightTests {
    enum Refused: String, CaseIterable, Sendable { case decision, superiorPrepare }

    /// Every transaction's decision (or a superior's prepared record) is too large for the log, so each
    /// one is rolled back, while another thread checkpoints as fast as it can. No checkpoint may hold one
    /// of them as committed (or prepared), and after a crash recovery knows none of them. Before the fix
    /// the race was hit within about 0.1 s: the checkpoint said committed, and recovery sent commit to
    /// RMs that had been told to roll back.
    @Test(arguments: Refused.allCases) func refusedRecordIsNeverCheckpointed(refused: Refused) async throws {
        let dir = TMScratch("inflight-\(refused.rawValue)")
        defer { dir.remove() }
        var o = LogCreateOptions(containerSize: 1 << 20, containerCount: 16, blockSize: 8192)
        o.maxRecordSize = 16384
        let (log, tm) = try dir.createOnline(log: o)
        var rms: [ScriptedRM] = []
        for i in 0..<4 { rms.append(try ScriptedRM.online(tm, "rm\(i)")) }

        let stop = Flag()
        let done = Flag()
        let leaked = GUIDBox()  // transactions a checkpoint held as decided or prepared
        let checkpoints = GUIDBox()
        Thread {
            while !stop.value {
                guard (try? tm.checkpoint()) != nil, let cp = try? tmCheckpoint(tm) else { continue }
                checkpoints.append(tm.id)
                if let t = cp.transactions.first {
                    leaked.append(t.id)
                    break  // crash with this checkpoint as the last one
                }
            }
            done.set(true)
        }.start()
        var rolledBack: Set<GUID> = []
        // At least 300 refused records, and on until 20 checkpoints raced them (a loaded machine checkpoints slowly).
        for attempt in 0..<5000 where leaked.values.isEmpty {
            if attempt >= 300, checkpoints.values.count >= 20 { break }
            let tx = try tm.createTransaction(description: "too big")
            for rm in rms { _ = try rm.enlist(tx, info: [UInt8](repeating: 9, count: 60_000)) }
            do {
                switch refused {
                case .decision:
                    try await tx.commit()
                case .superiorPrepare:
                    _ = try await tx.enlistSuperior().prepare()
                }
                Issue.record("a record of 240 KB was accepted by a log whose limit is 16 KiB")
            } catch let e as LogError {
                #expect(e.message.contains("rolled back"), "\(e)")
                rolledBack.insert(tx.id)
            }
        }
        stop.set(true)
        #expect(await eventually { done.value })
        #expect(checkpoints.values.count >= 20, "the checkpoints raced too few commits to mean anything")
        #expect(leaked.values.isEmpty, "a checkpoint held a transaction whose \(refused) record the log refused: \(leaked.values)")
        for id in leaked.values + Array(rolledBack.prefix(3)) {
            for rm in rms { #expect(rm.kinds(id) == [.prePrepare, .prepare, .rollback], "\(rm.kinds(id))") }
        }

        // Crash (no tm.close()), reopen, recover: none of them exists, and no RM is told to commit.
        let ids = rms.map(\.id)
        try log.close()
        let (log2, tm2) = try dir.reopenOnline()
        defer { try? log2.close() }
        let recovered = tm2.transactionSnapshots().filter { rolledBack.contains($0.id) }
        #expect(recovered.isEmpty, "recovered: \(recovered.map { "\($0.id) \($0.state) \($0.outcome)" })")
        let a = try ScriptedRM.open(tm2, id: ids[0])
        try a.rm.recover()
        for id in rolledBack { #expect(a.kinds(id).isEmpty, "after recovery \(id) gets \(a.kinds(id))") }
    }

    /// `createResourceManager` appends and flushes the registration, then adds the RM to the table. A
    /// checkpoint in between left the RM out yet covered its record, so after a crash an RM the call had
    /// returned was unknown. Now such a checkpoint covers no further than the record.
    @Test func checkpointDuringRegistrationKeepsTheResourceManager() async throws {
        let dir = TMScratch("inflight-rm")
        defer { dir.remove() }
        let (log, tm) = try dir.createOnline()
        var created: [GUID] = []
        for _ in 0..<100 {
            let stop = Flag()
            let done = Flag()
            Thread {
                while !stop.value { _ = try? tm.checkpoint() }
                done.set(true)
            }.start()
            created.append(try tm.createResourceManager(description: "raced").id)
            stop.set(true)
            #expect(await eventually { done.value })
            // Lost if the latest checkpoint leaves it out and covers its record (recovery skips it).
            let cp = try tmCheckpoint(tm)
            let id = created.last!
            let replayed = try dataRecords(try #require(tm.stream)).contains { r in
                guard r.lsn > cp.coveredThrough, case .rmRegistered(let l) = try TMRecord.decode(r.data).record else { return false }
                return l.id == id
            }
            #expect(cp.rms.contains { $0.id == id } || replayed, "RM \(id) is neither in the checkpoint nor replayed after it")
            if !(cp.rms.contains { $0.id == id } || replayed) { break }
        }
        try log.close()  // crash: no tm.close()
        let (log2, tm2) = try dir.reopenOnline()
        defer { try? log2.close() }
        let known = Set(tm2.registeredResourceManagers.map(\.id))
        #expect(created.allSatisfy(known.contains), "unknown after the crash: \(created.filter { !known.contains($0) })")
        _ = try tm2.openResourceManager(id: created.last!)
    }

    /// Two creates of one RM id at once: one succeeds, the other gets `alreadyExists`.
    @Test func concurrentCreatesOfOneIdoneSucceeds() async throws {
        let dir = TMScratch("inflight-rm-twice")
        defer { dir.remove() }
        let (log, tm) = try dir.createOnline()
        defer { try? log.close() }
        for _ in 0..<20 {
            let id = GUID.random()
            let results = await withTaskGroup(of: LogError.Code?.self) { group in
                for _ in 0..<2 {
                    group.addTask {
                        do { _ = try tm.createResourceManager(id: id); return nil } catch let e as LogError { return e.code } catch { return .io }
                    }
                }
                return await group.reduce(into: [LogError.Code?]()) { $0.append($1) }
            }
            #expect(results.filter { $0 == nil }.count == 1 && results.contains(.alreadyExists), "\(results)")
        }
    }
}
