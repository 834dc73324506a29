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
    @Test("a prepare that arrives as its store closes leaves no reservation behind", .timeLimit(.minutes(1)))
    func prepareRacingClose() async throws {
        let w = try KVWorld(stores: 2, tag: "prepare-close")
        defer { w.finish() }
        #expect(w.log.info().reservedBytes == 0)
        try await Self.commitClosingStoreADuringItsPrepare(w)
        #expect(w.log.info().reservedBytes == 0, "a closed store's prepare kept its outcome reservation")
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
