// A store closed while its handler is still inside a commit notification, then opened again on the same
// TM while that call goes on. The TM delivers the reopened store's recover notification for the
// transaction (and the commit after it) only once the old call returns. `KVStore.open` returned before
// that, with the committed transaction still pending in the new instance: a read right after the open
// missed the decided commit (and recovery-complete reached the store before the commit did).

import Foundation
import LogStore
import Synchronization
import Testing
@testable import TransactionManager
@testable import TransactionalKV

@Suite("Reopening a KV store whose old handler is still inside a commit")
struct KVReopenWhileHandlerRunsTests {
    /// A transaction across stores b and a that commits x=1 in a and y=1 in b, with a's commit handler
    /// held (the old instance's) and a closed while it is held. `release` lets the handler go on.
    struct HeldCommit {
        let w: KVWorld
        let oldA: KVStore
        let commit: Task<Void, any Error>
        let gate: DispatchSemaphore

        init(_ w: KVWorld) async throws {
            let inCommit = DispatchSemaphore(value: 0)
            let gate = DispatchSemaphore(value: 0)
            let first = Atomic<Bool>(true)
            let a = w.a
            a.beforeCommitForTesting = { @Sendable in
                if first.exchange(false, ordering: .sequentiallyConsistent) {
                    inCommit.signal()
                    gate.wait()
                }
            }
            let tx = try w.tm.createTransaction()
            try w.b.begin(tx).put(b("y"), b("1"))
            try a.begin(tx).put(b("x"), b("1"))
            commit = Task(executorPreference: OwnThreadExecutor()) { try await tx.commit() }
            let entered = await onOwnThread { inCommit.wait(timeout: .now() + 60) == .success }
            #expect(entered, "store a never got its commit")
            a.close()
            (self.w, oldA, self.gate) = (w, a, gate)
        }

        /// Whether the TM has left recovery-complete of the open RM `id` to the held call's thread.
        func recoveryCompleteDeferred() -> Bool {
            w.tm.lock.withLock { w.tm.resourceManagers[oldA.id]?.recoveryCompleteDeferred ?? false }
        }

        func release() { gate.signal() }

        /// Releases the held call once the TM has deferred recovery-complete of the reopened RM (true), or
        /// after 60 s without that (false). Polled on a thread of its own, not the cooperative pool: the
        /// open waits at most 30 s for recovery-complete, and a pool kept busy by other tests for longer
        /// (a full run on a loaded 2-core machine) left an `eventually` poll unresumed until the open had
        /// given up.
        func releaseOnceDeferred() -> Task<Bool, Never> {
            Task(executorPreference: OwnThreadExecutor()) { () -> Bool in
                let deadline = Date().addingTimeInterval(60)
                while !recoveryCompleteDeferred() {
                    if Date() > deadline { return false }
                    usleep(1000)
                }
                release()
                return true
            }
        }
    }

    @Test("a read right after the reopen sees the commit the TM owed the store", .hangGuard)
    func openReturnsOnceTheOwedCommitIsApplied() async throws {
        let w = try KVWorld(stores: 2, tag: "kv-reopen-held")
        defer { w.finish() }
        let held = try await HeldCommit(w)
        // Opened on a thread of its own: with the fix the open waits for the held call.
        let releasing = held.releaseOnceDeferred()
        let opening = Task(executorPreference: OwnThreadExecutor()) { () throws -> (KVStore, String?) in
            let a2 = try KVStore.open(transactionManager: w.tm, id: w.storeIDs[0], directory: w.dataDirectory)
            return (a2, s(a2.get(b("x"))))
        }
        #expect(await releasing.value, "the reopened RM's recovery-complete was not deferred")
        let (a2, seenAtOpen) = try await opening.value
        #expect(seenAtOpen == "1", "KVStore.open returned before the commit the TM owed it was applied")
        try await held.commit.value
        #expect(s(a2.get(b("x"))) == "1")
        #expect(s(w.b.get(b("y"))) == "1")
        #expect(a2.inDoubtTransactions.isEmpty)
        // And the log says so: after a crash both writes are there.
        try w.crashAndReopen()
        #expect(s(w.a.get(b("x"))) == "1")
        #expect(s(w.b.get(b("y"))) == "1")
        withExtendedLifetime(held) {}
    }

    @Test("an open that the old handler keeps waiting past its limit throws not-online and leaves the store closed", .hangGuard)
    func openGivesUpAfterItsLimit() async throws {
        let w = try KVWorld(stores: 2, tag: "kv-reopen-held-limit")
        defer { w.finish() }
        let held = try await HeldCommit(w)
        let opened = await onOwnThread { () -> LogError? in
            do {
                let a2 = try KVStore.open(transactionManager: w.tm, id: w.storeIDs[0], directory: w.dataDirectory,
                                          recoveryTimeout: .milliseconds(1))
                a2.close()
                return nil
            } catch {
                return error as? LogError
            }
        }
        #expect(opened?.code == .notOnline, "\(String(describing: opened))")
        // Closed again: a later open, once the old call returned, recovers the commit.
        held.release()
        try await held.commit.value
        let a3 = try KVStore.open(transactionManager: w.tm, id: w.storeIDs[0], directory: w.dataDirectory)
        #expect(s(a3.get(b("x"))) == "1")
        #expect(a3.inDoubtTransactions.isEmpty)
        a3.close()
        withExtendedLifetime(held) {}
    }
}
