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

    /// A commit of a transaction across RMs "a" and "b" whose delivery is held inside a's handler (its
    /// first commit), with a closed while it is held. `release` lets the handler return.
    struct HeldCommit {
        let a: ResourceManager
        let b: ResourceManager
        let old: Seen
        let commit: Task<Void, any Error>
        let gate: DispatchSemaphore

        init(_ tm: TransactionManager) async throws {
            let inCommit = DispatchSemaphore(value: 0)
            let gate = DispatchSemaphore(value: 0)
            let old = Seen()
            let firstCommit = Atomic<Bool>(true)
            a = try tm.createResourceManager(description: "a") { n in
                old.add(n.kind)
                if n.kind == .commit, firstCommit.exchange(false, ordering: .sequentiallyConsistent) {
                    inCommit.signal()
                    gate.wait()  // the handler is still running when its RM closes and is opened again
                }
                answerAtOnce(n)
            }
            try a.recover()
            b = try tm.createResourceManager(description: "b", handler: answerAtOnce)
            try b.recover()
            let tx = try tm.createTransaction()
            _ = try a.enlist(tx)
            _ = try b.enlist(tx)
            commit = Task(executorPreference: OwnThreadExecutor()) { try await tx.commit() }
            let entered = await onOwnThread { inCommit.wait(timeout: .now() + 60) == .success }
            #expect(entered)
            a.close()
            (self.old, self.gate) = (old, gate)
        }

        /// Lets the held handler return and waits for the commit (delivered to the old handler on its
        /// own task).
        func release() async throws {
            gate.signal()
            try await commit.value
        }
    }

    /// Opens RM `id` again with a handler that records what it gets, and recovers it.
    static func reopen(_ tm: TransactionManager, _ id: GUID) throws -> (ResourceManager, Seen) {
        let seen = Seen()
        let rm = try tm.openResourceManager(id: id) { n in
            seen.add(n.kind)
            answerAtOnce(n)
        }
        try rm.recover()
        return (rm, seen)
    }

    /// `rm` got the commit, and its recover notification before recovery-complete.
    static func expectRecoverThenComplete(_ seen: Seen, _ who: String) async {
        #expect(await eventually { seen.all.contains(.commit) && seen.all.contains(.recoveryComplete) },
                "\(who) never got the commit and recovery-complete: \(seen.all)")
        let kinds = seen.all
        let recover = kinds.firstIndex(of: .recover), complete = kinds.firstIndex(of: .recoveryComplete)
        #expect(recover != nil && complete != nil && recover! < complete!,
                "recovery-complete reached \(who) before the recover notification it is owed: \(kinds)")
    }

    /// Also: its recovery-complete came right after the queued recover, before the commit the recover's
    /// answer sent (queued in the same turn), so an RM that takes recovery-complete as "every outcome owed
    /// at open is in" (a KV store's open waits for it) missed the commit. When `recover()` delivers the
    /// recover itself, the commit comes first.
    @Test("the reopened RM gets its recover and that recover's outcome before recovery-complete, and the old handler none", .hangGuard)
    func recoverGoesToTheReopenedRM() async throws {
        let scratch = TMScratch("reopen-handler")
        defer { scratch.remove() }
        let (log, tm) = try scratch.createOnline()
        defer { try? log.close() }
        let held = try await HeldCommit(tm)
        let (a2, new) = try Self.reopen(tm, held.a.id)
        try await held.release()
        await Self.expectRecoverThenComplete(new, "the reopened RM")
        #expect(!held.old.all.contains(.recover), "the closed RM's handler got a notification for the reopened RM: \(held.old.all)")
        let kinds = new.all
        let commit = kinds.firstIndex(of: .commit), complete = kinds.firstIndex(of: .recoveryComplete)
        #expect(commit != nil && complete != nil && commit! < complete!,
                "recovery-complete reached the reopened RM before the commit its recover was answered with: \(kinds)")
        withExtendedLifetime((held, a2)) {}
    }

    /// The same, with the reopened RM closed in turn and opened a third time while the first handler
    /// call still runs: the second RM's recover notification, queued for it, went to its handler after
    /// it had closed (its enlistment by then the third RM's), which answered it in the third RM's stead.
    @Test("a recover queued for an RM that closed before it was delivered is not delivered to it", .hangGuard)
    func recoverQueuedForAClosedRMIsDropped() async throws {
        let scratch = TMScratch("reopen-handler-twice")
        defer { scratch.remove() }
        let (log, tm) = try scratch.createOnline()
        defer { try? log.close() }
        let held = try await HeldCommit(tm)
        let (a2, second) = try Self.reopen(tm, held.a.id)
        a2.close()
        let (a3, third) = try Self.reopen(tm, held.a.id)
        try await held.release()
        await Self.expectRecoverThenComplete(third, "the third RM")
        #expect(second.all.isEmpty, "the closed second RM's handler got notifications after its close: \(second.all)")
        withExtendedLifetime((held, a2, a3)) {}
    }
}
