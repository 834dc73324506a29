// An RM closed while its handler is still inside a notification (a commit it has not answered yet), then
// opened again and recovered on the same TM while that handler call goes on. The recover notification
// for that enlistment waits behind the running call; it used to be delivered, with the commit after it,
// to the closed RM's handler (the queue did not say which RM each notification was for), and the new RM
// got recovery-complete at once without it. A KV store presumes aborted whatever it prepared and no
// recover notification named by then, so it dropped the committed writes.

import Foundation
import LogStore
import Synchronization
import Testing
@testable import TransactionManager

@Suite("Reopening an RM whose old handler is still running")
struct ReopenWhileHandlerRunsTests {
    final class Seen: Sendable {
        let kinds = Mutex<[TransactionNotification.Kind]>([])
        func add(_ k: TransactionNotification.Kind) { kinds.withLock { $0.append(k) } }
        var all: [TransactionNotification.Kind] { kinds.withLock { $0 } }
    }

    @Test("the reopened RM gets its recover notification before recovery-complete, and the old handler none", .timeLimit(.minutes(1)))
    func recoverGoesToTheReopenedRM() async throws {
        let scratch = TMScratch("reopen-handler")
        defer { scratch.remove() }
        let (log, tm) = try scratch.createOnline()
        defer { try? log.close() }
        let inCommit = DispatchSemaphore(value: 0)
        let gate = DispatchSemaphore(value: 0)
        let old = Seen()
        let firstCommit = Atomic<Bool>(true)
        let a = try tm.createResourceManager(description: "a") { n in
            old.add(n.kind)
            if n.kind == .commit, firstCommit.exchange(false, ordering: .sequentiallyConsistent) {
                inCommit.signal()
                gate.wait()  // the handler is still running when its RM closes and is opened again
            }
            answerAtOnce(n)
        }
        try a.recover()
        let b = try tm.createResourceManager(description: "b", handler: answerAtOnce)
        try b.recover()
        let tx = try tm.createTransaction()
        _ = try a.enlist(tx)
        _ = try b.enlist(tx)
        let commit = Task(executorPreference: OwnThreadExecutor()) { try await tx.commit() }
        let entered = await onOwnThread { inCommit.wait(timeout: .now() + 10) == .success }
        #expect(entered)
        a.close()

        let new = Seen()
        let a2 = try tm.openResourceManager(id: a.id) { n in
            new.add(n.kind)
            answerAtOnce(n)
        }
        try a2.recover()
        gate.signal()
        try await commit.value  // (the commit was delivering to the old handler on its own task)
        #expect(await eventually { new.all.contains(.commit) }, "the reopened RM never got the commit: \(new.all)")
        let kinds = new.all
        let recover = kinds.firstIndex(of: .recover), complete = kinds.firstIndex(of: .recoveryComplete)
        #expect(recover != nil && complete != nil && recover! < complete!,
                "recovery-complete reached the reopened RM before the recover notification it is owed: \(kinds)")
        #expect(!old.all.contains(.recover), "the closed RM's handler got a notification for the reopened RM: \(old.all)")
        withExtendedLifetime((a, b, a2)) {}
    }

    /// The same, with the reopened RM closed in turn and opened a third time while the first handler
    /// call still runs: the second RM's recover notification, queued for it, went to its handler after
    /// it had closed (its enlistment by then the third RM's), which answered it in the third RM's stead.
    @Test("a recover queued for an RM that closed before it was delivered is not delivered to it", .timeLimit(.minutes(1)))
    func recoverQueuedForAClosedRMIsDropped() async throws {
        let scratch = TMScratch("reopen-handler-twice")
        defer { scratch.remove() }
        let (log, tm) = try scratch.createOnline()
        defer { try? log.close() }
        let inCommit = DispatchSemaphore(value: 0)
        let gate = DispatchSemaphore(value: 0)
        let firstCommit = Atomic<Bool>(true)
        let a = try tm.createResourceManager(description: "a") { n in
            if n.kind == .commit, firstCommit.exchange(false, ordering: .sequentiallyConsistent) {
                inCommit.signal()
                gate.wait()
            }
            answerAtOnce(n)
        }
        try a.recover()
        let b = try tm.createResourceManager(description: "b", handler: answerAtOnce)
        try b.recover()
        let tx = try tm.createTransaction()
        _ = try a.enlist(tx)
        _ = try b.enlist(tx)
        let commit = Task(executorPreference: OwnThreadExecutor()) { try await tx.commit() }
        let entered = await onOwnThread { inCommit.wait(timeout: .now() + 10) == .success }
        #expect(entered)
        a.close()

        let second = Seen()
        let a2 = try tm.openResourceManager(id: a.id) { n in
            second.add(n.kind)
            answerAtOnce(n)
        }
        try a2.recover()
        a2.close()
        let third = Seen()
        let a3 = try tm.openResourceManager(id: a.id) { n in
            third.add(n.kind)
            answerAtOnce(n)
        }
        try a3.recover()
        gate.signal()
        try await commit.value
        #expect(await eventually { third.all.contains(.commit) }, "the third RM never got the commit: \(third.all)")
        let kinds = third.all
        let recover = kinds.firstIndex(of: .recover), complete = kinds.firstIndex(of: .recoveryComplete)
        #expect(recover != nil && complete != nil && recover! < complete!, "\(kinds)")
        #expect(second.all.isEmpty, "the closed second RM's handler got notifications after its close: \(second.all)")
        withExtendedLifetime((a, b, a2, a3)) {}
    }
}
