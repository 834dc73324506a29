// A store closed while a transaction's prepare notification is on its way to it: the prepare must not
// take a reservation for the outcome record after close() gave the store's reservations back, or the
// log's reserved bytes stay up for as long as it is open.

import Foundation
import LogStore
import Synchronization
import Testing
import TransactionManager
@testable import TransactionalKV

@Suite("KV store closed during a prepare")
struct KVCloseRaceTests {
    @Test("a prepare that arrives as its store closes leaves no reservation behind", .hangGuard)
    func prepareRacingClose() async throws {
        let w = try KVWorld(stores: 2, tag: "prepare-close")
        defer { w.finish() }
        // Only the rooms for the next checkpoints (CheckpointRoomTests): the TM's and each store's.
        #expect(w.log.info().reservedBytes == UInt64(w.tmRoomBytes + 2 * w.storeRoomBytes))
        try await Self.commitClosingStoreADuringItsPrepare(w)
        #expect(w.log.info().reservedBytes == UInt64(w.tmRoomBytes + w.storeRoomBytes), "a closed store's prepare kept its outcome reservation")
        // The log's space is whole again for the store opened anew.
        let reopened = try KVStore.open(transactionManager: w.tm, id: w.storeIDs[0], directory: w.dataDirectory)
        #expect(reopened.get(b("x")) == nil)
        #expect(w.b.get(b("y")) == nil)
        reopened.close()
    }

    /// Commits a transaction across stores a and b, closing a as its prepare notification arrives:
    /// `close()` runs in full between the notification's arrival and the prepare's work. The commit
    /// throws (a vetoes).
    static func commitClosingStoreADuringItsPrepare(_ w: KVWorld) async throws {
        let a = w.a
        let closedOnce = Atomic<Bool>(false)
        a.beforePrepareForTesting = { @Sendable in
            if !closedOnce.exchange(true, ordering: .sequentiallyConsistent) { a.close() }
        }
        let tx = try w.tm.createTransaction()
        try w.a.begin(tx).put(b("x"), b("1"))
        try w.b.begin(tx).put(b("y"), b("1"))
        // Two durable stores: a two-phase commit, so store a gets a prepare notification.
        await #expect(throws: LogError.self) { try await tx.commit() }
        let closedDuringPrepare = closedOnce.load(ordering: .sequentiallyConsistent)
        #expect(closedDuringPrepare)
        a.beforePrepareForTesting = nil
    }
}

@Suite("KV store closed during a single-phase commit")
struct KVSinglePhaseCloseRaceTests {
    /// Store a's single-phase commit of x=1 is held as its notification arrives; a is closed (the commit
    /// throws: its outcome is the store's and not known), opened again on the same TM, and commits x=2
    /// there (acknowledged). Before the fix the held commit then went on in the closed instance: it
    /// validated against that instance's table, appended its record after x=2's and applied it where no
    /// one reads. The reopened store never saw it (its checkpoint would drop the record), and after a
    /// crash the replay put x=1 over the acknowledged x=2.
    @Test("a single-phase commit that reaches a closed store logs nothing", .hangGuard)
    func singlePhaseCommitRacingCloseAndReopen() async throws {
        let w = try KVWorld(stores: 1, tag: "single-phase-close")
        defer { w.finish() }
        let a = w.a
        let arrived = DispatchSemaphore(value: 0)
        let proceed = DispatchSemaphore(value: 0)
        let heldOnce = Atomic<Bool>(false)
        a.beforeSinglePhaseForTesting = { @Sendable in
            guard !heldOnce.exchange(true, ordering: .sequentiallyConsistent) else { return }
            arrived.signal()
            proceed.wait()
        }
        let tx1 = try w.tm.createTransaction()
        try a.begin(tx1).put(b("x"), b("1"))
        // Its handler call blocks: on a thread of its own, not the cooperative pool's.
        let first = Task(executorPreference: OwnThreadExecutor()) { try await tx1.commit() }
        await onOwnThread { arrived.wait() }
        a.close()
        let reopened = try KVStore.open(transactionManager: w.tm, id: w.storeIDs[0], directory: w.dataDirectory)
        let tx2 = try w.tm.createTransaction()
        try reopened.begin(tx2).put(b("x"), b("2"))
        try await tx2.commit()
        proceed.signal()
        await #expect(throws: LogError.self) { try await first.value }
        #expect(reopened.get(b("x")) == b("2"))
        try await w.log.flush()
        try w.crashAndReopen()
        #expect(w.a.get(b("x")) == b("2"), "the acknowledged x=2 was overwritten by the commit the closed store went on with")
        withExtendedLifetime(reopened) {}
    }
}
