// A checkpoint still running in a store whose TM closes, while the store is opened again on a new TM
// object of the same log: the old instance's checkpoint must not become the restart area behind the
// new instance's commits.

import Foundation
import LogStore
import Synchronization
import Testing
import TransactionManager
@testable import TransactionalKV

@Suite("KV checkpoint racing a reopen")
struct KVCheckpointReopenRaceTests {
    /// The directory as the reopen spells it: the same directory written differently (a trailing slash)
    /// must still make the reopen wait.
    @Test("a commit of a store reopened while its previous instance checkpointed survives a crash", .hangGuard,
          arguments: ["", "/"])
    func reopenDuringCheckpoint(suffix: String) async throws {
        let w = try KVWorld(stores: 1, tag: "cp-reopen")
        defer { w.finish() }
        try await w.load(w.a, [("old", "1")])
        let old = w.a, oldTM = w.tm, log = w.log, id = w.storeIDs[0], dataDir = w.dataDirectory + suffix
        final class Newer: Sendable {
            let state = Mutex<(tm: TransactionManager?, store: KVStore?, error: String?, finished: Bool)>((nil, nil, nil, false))
        }
        let newer = Newer()
        let reopened = DispatchSemaphore(value: 0)
        old.whileFrozenForTesting = { @Sendable in
            // The old instance is mid-checkpoint: its TM closes (closing its RM), and the store is opened
            // again on a new TM object of the same log, commits and checkpoints. On a thread of its own:
            // an open that waits for this checkpoint must not deadlock the test.
            Thread {
                do {
                    try oldTM.close()
                    let tm = try TransactionManager.open(log: log)
                    try tm.recover()
                    let store = try KVStore.open(transactionManager: tm, id: id, directory: dataDir)
                    newer.state.withLock { $0.tm = tm; $0.store = store }
                    let done = DispatchSemaphore(value: 0)
                    Task.detached {
                        do {
                            for key in ["new", "newer"] {
                                let tx = try tm.createTransaction()
                                try store.begin(tx).put(b(key), b("2"))
                                try await tx.commit()
                            }
                        } catch { newer.state.withLock { $0.error = "commit: \(error)" } }
                        done.signal()
                    }
                    done.wait()
                    try store.checkpoint()
                } catch { newer.state.withLock { $0.error = "\(error)" } }
                newer.state.withLock { $0.finished = true }
                reopened.signal()
            }.start()
            // Bounded: with the open waiting for this checkpoint, the checkpoint goes on after it.
            _ = reopened.wait(timeout: .now() + 3)
        }
        let oldResult: Result<LSN, any Error> = await withCheckedContinuation { c in
            Thread { c.resume(returning: Result { try old.checkpoint() }) }.start()
        }
        old.whileFrozenForTesting = nil
        if case .failure(let e) = oldResult { print("the old instance's checkpoint: \(e)") }
        // The reopen on its thread ends (at once, or once the old checkpoint let it open the store).
        #expect(await eventually { newer.state.withLock { $0.finished } }, "the reopen did not finish")
        let state = newer.state.withLock { $0 }
        #expect(state.error == nil)
        #expect(state.store.map { [s($0.get(b("new"))), s($0.get(b("newer")))] } == ["2", "2"])
        // Two TM checkpoints move the TM stream's base past the store's records, so the log's base is the
        // store's; then a crash (the log closed under everything), then recovery: both acknowledged
        // commits are there.
        let newTM = try #require(state.tm)
        try newTM.checkpoint()
        try newTM.checkpoint()
        try w.crash()
        try w.reopen()
        #expect(w.contents(w.a)["new"] == "2" && w.contents(w.a)["newer"] == "2", "acknowledged commit lost: \(w.contents(w.a))")
        #expect(w.contents(w.a)["old"] == "1")
        withExtendedLifetime(state) {}
    }
}

@Suite("KV instance lock table")
struct KVInstanceLockTableTests {
    /// The per-store lock table of the process kept one entry for every store ever opened or
    /// checkpointed, so a long-running process that opens many stores grew it without bound.
    @Test("a store neither opening nor checkpointing leaves no entry in the instance lock table")
    func entriesGoAwayWhenUnused() async throws {
        let w = try KVWorld(stores: 2, tag: "instance-locks")
        defer { w.finish() }
        try await w.load(w.a, [("k", "v")])
        try w.a.checkpoint()
        try w.b.checkpoint()
        for (store, id) in zip(w.stores, w.storeIDs) {
            #expect(!KVStore.hasInstanceLockEntry(id: id))
            store.close()
        }
        // Reopened and checkpointed again: the entry comes back only while in use.
        let again = try KVStore.open(transactionManager: w.tm, id: w.storeIDs[0], directory: w.dataDirectory)
        try again.checkpoint()
        #expect(!KVStore.hasInstanceLockEntry(id: w.storeIDs[0]))
        #expect(s(again.get(b("k"))) == "v")
        again.close()
    }

    /// A checkpoint in progress keeps its entry (an open of the store then waits on that lock), and the
    /// entry goes when it ends.
    @Test("a checkpoint keeps its entry while it runs", .hangGuard)
    func checkpointKeepsItsEntry() async throws {
        let w = try KVWorld(stores: 1, tag: "instance-locks-share")
        defer { w.finish() }
        try await w.load(w.a, [("k", "v")])
        let id = w.storeIDs[0]
        let during = Mutex<Bool?>(nil)
        w.a.whileFrozenForTesting = { @Sendable in
            during.withLock { $0 = KVStore.hasInstanceLockEntry(id: id) }
        }
        let store = w.a
        _ = try await onOwnThread { try store.checkpoint() }
        w.a.whileFrozenForTesting = nil
        #expect(during.withLock { $0 } == true)
        #expect(!KVStore.hasInstanceLockEntry(id: id))
    }
}
