// Several transaction managers on one log, each with its own resource managers.

import Foundation
import Synchronization
import Testing
@testable import LogStore
@testable import TransactionManager

@Suite struct SharedLogTests {
    /// An RM of TM A cannot enlist in a transaction of TM B. Before, it could: B logged the RM as a
    /// participant of its decision, the RM answered A, and after a crash B owed that RM a commit it could
    /// never send (only A can open the RM), while the RM, which A had told nothing, presumed abort.
    @Test func anRMEnlistsOnlyInItsOwnTMsTransactions() async throws {
        let dir = TMScratch("shared-log")
        defer { dir.remove() }
        let (log, tmA) = try dir.createOnline()
        let tmB = try TransactionManager.create(log: log, stream: "ktm-b")
        try tmB.recover()
        let x = try ScriptedRM.online(tmA, "x of A")
        let y = try ScriptedRM.online(tmB, "y of B")
        let t = try tmB.createTransaction()
        expectLogError(.invalidArgument) { _ = try x.enlist(t) }
        _ = try y.enlist(t)
        _ = try y.rm.enlist(try tmB.openTransaction(id: t.id))  // another handle of the same TM is fine
        await BackgroundCall { try await t.commit() }.expectSuccess("commit")
        #expect(x.kinds(t.id).isEmpty)
        try log.close()
        let log2 = try LogStore.open(at: dir.path)
        defer { try? log2.close() }
        let tmB2 = try TransactionManager.open(log: log2, stream: "ktm-b")
        try tmB2.recover()
        #expect(tmB2.lastRecovery.committing == 0 && tmB2.transactionSnapshots().isEmpty)
    }

    /// One TM object per TM stream of a log in a process: a second open (or create) gets
    /// `already-exists` until the first is closed. Before, a second object recovered the same stream and
    /// its close wrote a checkpoint that left out a commit the first had decided since, moving the base
    /// past its decision record: after a crash the participant that had not acknowledged was never told.
    @Test func aTMStreamIsOpenedOnceInAProcess() async throws {
        let dir = TMScratch("tm-twice")
        defer { dir.remove() }
        let (log, tm) = try dir.createOnline()
        expectLogError(.alreadyExists) { _ = try TransactionManager.open(log: log, id: tm.id) }
        var second: TransactionManager?
        expectLogError(.alreadyExists) {
            second = try TransactionManager.open(log: log)
            try second?.recover()
        }
        let a = try ScriptedRM.online(tm, "a")
        let b = try ScriptedRM.online(tm, "b")
        a.on(.commit, .hold)  // a has not applied the commit when the process dies
        let t = try tm.createTransaction()
        _ = try a.enlist(t)
        _ = try b.enlist(t)
        let commit = BackgroundCall { try await t.commit() }
        #expect(await a.waitFor(.commit))
        try? second?.close()  // (before the fix) its final checkpoint, which knows nothing of t
        try log.close()
        withExtendedLifetime(commit) {}
        let (log2, tm2) = try dir.reopenOnline()
        defer { try? log2.close() }
        #expect(tm2.lastRecovery.committing == 1, "a gets the commit again")
        // Closed, the stream can be opened again on the same log object.
        try tm2.close()
        let tm3 = try TransactionManager.open(log: log2)
        try tm3.recover()
        #expect(tm3.lastRecovery.committing == 1)
        try tm3.close()
    }

    /// A closed TM object gives its stream back once. Before the fix its deinit (and any later
    /// `close()`) gave it back again, taking the claim of a TM opened on the stream since: a third
    /// object then opened the stream beside that one (what `aTMStreamIsOpenedOnceInAProcess` excludes).
    @Test(arguments: [false, true]) func aClosedTMDoesNotGiveBackTheClaimOfItsSuccessor(closeAgain: Bool) throws {
        let dir = TMScratch("tm-release-once")
        defer { dir.remove() }
        let log = try LogStore.create(at: dir.path, options: TMScratch.options)
        defer { try? log.close() }
        var old: TransactionManager? = try TransactionManager.create(log: log)
        try old?.recover()
        try old?.close()
        let successor = try TransactionManager.open(log: log)
        try successor.recover()
        if closeAgain { try old?.close() }  // again: nothing to give back
        old = nil  // deinit: nothing to give back either
        expectLogError(.alreadyExists) { _ = try TransactionManager.open(log: log) }
        try successor.close()
        try TransactionManager.open(log: log).close()
    }

    /// Two TMs of one log checkpointing at once on a full log (fifteenth review): each checkpoint's
    /// restart area found the log full and called the tail-pinned handlers on its own thread, holding its
    /// TM's checkpoint lock; the other TM's handler checkpointed, and waited for that TM's checkpoint
    /// lock, held by the other thread, which waited for this one's. Both hung for good. A checkpoint asked
    /// for on a thread already writing another TM's checkpoint no longer waits for one in progress.
    @Test(.hangGuard) func checkpointsOfTwoTMsOnAFullLogDoNotWaitForEachOther() async throws {
        let dir = TMScratch("shared-full")
        defer { dir.remove() }
        let log = try LogStore.create(at: dir.path, options: TMScratch.options)
        log.core.pinnersAheadDisabledForTesting = true
        // Its base pins the tail, and its handler, called first (the lowest stream id), lets each of the
        // two checkpoints' log-full paths go on to the TMs' handlers only once both have got that far.
        let meeting = try log.createStream("meeting")
        try meeting.append([1])
        var options = TransactionManagerOptions()
        options.checkpointRoom = 0  // the restart areas take free room: none is left
        let tms = try ["ktm-1", "ktm-2"].map { name in
            let tm = try TransactionManager.create(log: log, stream: name, options: options)
            try tm.recover()
            try log.openStream(name).onTailPinned(nil)  // until the log is full
            return tm
        }
        let filler = try log.createStream("filler")
        for size in [3000, 100, 0] {
            while (try? filler.append([UInt8](repeating: 7, count: size))) != nil {}
        }
        // The TMs' own handlers again (as each TM registers it).
        for (name, tm) in zip(["ktm-1", "ktm-2"], tms) { try log.openStream(name).onTailPinned { [tm] _ in _ = try? tm.checkpoint() } }
        let arrived = Atomic<Int>(0)
        let bothArrived = DispatchSemaphore(value: 0)
        meeting.onTailPinned { _ in
            let n = arrived.add(1, ordering: .sequentiallyConsistent).newValue
            if n == 2 {
                bothArrived.signal()
                bothArrived.signal()
            }
            if n <= 2 { _ = bothArrived.wait(timeout: .now() + 30) }
        }
        let done = DispatchSemaphore(value: 0)
        let results = Mutex<[String]>([])
        for tm in tms {
            Thread.detachNewThread {
                do {
                    try tm.checkpoint()
                    results.withLock { $0.append("ok") }
                } catch let e as LogError {
                    results.withLock { $0.append(e.code.rawValue) }
                } catch {
                    results.withLock { $0.append("\(error)") }
                }
                done.signal()
            }
        }
        let returned = await onOwnThread { (0..<2).allSatisfy { _ in done.wait(timeout: .now() + 60) == .success } }
        // Not closed when they hang: the close would wait for their handler calls.
        try #require(returned, "the two TMs' checkpoints waited for each other")
        defer { try? log.close() }
        #expect(arrived.load(ordering: .sequentiallyConsistent) >= 2)
        // Each got as far as the log allows: a restart area (the other's checkpoint made room) or log-full.
        #expect(results.withLock { $0 }.allSatisfy { $0 == "ok" || $0 == LogError.Code.logFull.rawValue })
    }
}
