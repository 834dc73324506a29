// A transaction manager closed under its stores (the store objects are not closed): the TM closes their
// resource managers, and the stores give back the room they held for outcome records. Before, the room
// stayed reserved until each old store object was closed; a process that reopened the TM and its stores
// without closing the old objects held it twice, and the log's reserved bytes only grew.

import Foundation
import Testing
@testable import LogStore
@testable import TransactionManager
@testable import TransactionalKV

@Suite("KV stores whose transaction manager closes under them")
struct KVTMCloseReservationTests {
    @Test("closing the TM gives back its stores' outcome reservations; a reopen holds them once", .hangGuard)
    func tmCloseReleasesStoreReservations() async throws {
        let w = try KVWorld(stores: 2, tag: "tmclose-reserved")
        defer { w.finish() }
        _ = try await w.preparedUnderASuperior()
        let heldByTwo = w.log.info().reservedBytes
        #expect(heldByTwo > 0)
        // The old store objects stay alive (and open, as far as their owner knows) throughout.
        let oldStores = w.stores
        try w.tm.close()
        #expect(w.log.info().reservedBytes == 0, "the stores' resource managers are closed: their reservations went back")
        let tm = try TransactionManager.open(log: w.log)
        try tm.recover()
        let a = try KVStore.open(transactionManager: tm, id: w.storeIDs[0], directory: w.dataDirectory)
        let bStore = try KVStore.open(transactionManager: tm, id: w.storeIDs[1], directory: w.dataDirectory)
        #expect(a.inDoubtTransactions.count == 1 && bStore.inDoubtTransactions.count == 1)
        #expect(w.log.info().reservedBytes == heldByTwo, "the reopened stores hold room for the outcome once")
        // Closing the old objects now gives back nothing more (and takes nothing from the new ones).
        for s in oldStores { s.close() }
        #expect(w.log.info().reservedBytes == heldByTwo)
        a.close()
        bStore.close()
        // Left: the new TM's room for its next checkpoint (CheckpointRoomTests).
        #expect(w.log.info().reservedBytes == UInt64(w.log.core.reservationCost(tm.restartRoomSize)))
        try tm.close()
        #expect(w.log.info().reservedBytes == 0)
    }
}
