// Room for the next checkpoint, reserved by the TM and by each store (docs/RELIABILITY.md, "Found by the
// fourteenth review (mine: ...)"). A log filled to its last byte before any checkpoint ran (the
// tail-pinned handlers were asked too late, or appends outran them) could not take the restart area of
// the checkpoint that would free it: the TM's and the store's checkpoints got `log-full`, no base moved,
// and the log stayed full until containers were added.

import Foundation
import Testing
@testable import LogStore
@testable import TransactionManager
@testable import TransactionalKV

extension KVWorld {
    /// What one store's room for its restart area takes of the log's reservations.
    var storeRoomBytes: Int { log.core.reservationCost(KVStore.restartRoomSize) }
    /// What the TM's room takes.
    var tmRoomBytes: Int { log.core.reservationCost(tm.restartRoomSize) }

    /// Gives back the rooms the TM and the stores hold for their next checkpoints, for tests that set up
    /// an exact amount of free space (no checkpoint may run afterwards: it would take them again).
    func dropCheckpointRooms() {
        tm.releaseRestartRoom()
        for store in stores {
            let held = store.lock.withLock { () -> Bool in
                defer { store.restartRoomHeld = false }
                return store.restartRoomHeld
            }
            if held { try? store.stream.release(recordSizes: [KVStore.restartRoomSize]) }
        }
    }
}

@Suite("The TM and the stores keep room for their next checkpoint")
struct CheckpointRoomTests {
    /// Fills the log to its last byte with another stream's records, the TM's and the stores' handlers
    /// held off (as when the log filled faster than they were asked): nothing of any size fits any more.
    static func fillToTheLastByte(_ w: KVWorld) throws -> LogStream {
        let filler = try w.log.createStream("filler")
        let tmStream = try w.log.openStream(TransactionManager.defaultStreamName)
        var storeStreams: [LogStream] = []
        for s in w.stores { storeStreams.append(s.stream) }
        for s in [tmStream] + storeStreams { s.onTailPinned(nil) }
        w.log.core.pinnersAheadDisabledForTesting = true
        fillUp(filler)
        return filler
    }

    /// Appends records to `filler`, smaller and smaller, until not even an empty one fits.
    static func fillUp(_ filler: LogStream) { fillLogToItsLastByte(with: filler) }

    @Test("checkpoints of the TM and a store on a log full to its last byte still write their restart areas", .hangGuard)
    func checkpointsFitAFullLog() async throws {
        let w = try KVWorld(stores: 1, tag: "room-full")
        defer { w.finish() }
        try await w.load(w.a, [("k", "v1")])
        let filler = try Self.fillToTheLastByte(w)
        // Not even an empty record fits: only the rooms can take the restart areas.
        expectLogError(.logFull) { _ = try filler.append([]) }
        try w.a.checkpoint()
        // What the store's room held beyond its record is free again: filled up before the TM's turn.
        Self.fillUp(filler)
        expectLogError(.logFull) { _ = try filler.append([]) }
        try w.tm.checkpoint()
        // Each base is now its restart record: neither holds anything older.
        let tmStream = try w.log.openStream(TransactionManager.defaultStreamName)
        #expect(try tmStream.baseLSN == tmStream.info().restartLSN)
        #expect(try w.a.stream.baseLSN == w.a.stream.info().restartLSN)
        // The filler lets go of its records: the log recycles, and the store commits again.
        try filler.advanceBase(to: filler.lastLSN)
        try await w.load(w.a, [("k", "v2")])
        #expect(s(w.a.get(b("k"))) == "v2")
        // The rooms are taken again, at the latest by the next checkpoint (the log being full when the
        // last ones ended, it may not have given them back yet).
        try w.tm.checkpoint()
        try w.a.checkpoint()
        #expect(w.log.info().reservedBytes == UInt64(w.tmRoomBytes + w.storeRoomBytes))
        try w.crashAndReopen()
        #expect(s(w.a.get(b("k"))) == "v2")
    }

    /// The documented limit (docs/KV.md, "What the room does not cover"): a store's checkpoint appends a
    /// `prepare` record again for each transaction still prepared there, without room, so on a log full to
    /// its last byte it gets `log-full`, its room still held, until room comes back.
    @Test("a store's checkpoint on a full log with a transaction still prepared gets log-full, its room kept", .hangGuard)
    func preparedTransactionsAreNotCoveredByTheRoom() async throws {
        let w = try KVWorld(stores: 1, tag: "room-prepared")
        defer { w.finish() }
        let id = try await KVCheckpointPendingTests.prepareInDoubt(w, w.a, key: "k", value: b("v"))
        let filler = try Self.fillToTheLastByte(w)
        let restart = try w.a.stream.info().restartLSN
        expectLogError(.logFull) { _ = try w.a.checkpoint() }
        #expect(try w.a.stream.info().restartLSN == restart)
        #expect(w.a.lock.withLock { w.a.restartRoomHeld })
        // The other stream letting go is not enough: the store's first `prepare` pins the oldest container.
        // A container added is: the checkpoint goes in, and carries the transaction (in doubt after a crash).
        try filler.advanceBase(to: filler.lastLSN)
        expectLogError(.logFull) { _ = try w.a.checkpoint() }
        _ = try w.log.addContainer()
        try w.a.checkpoint()
        try w.crashAndReopen()
        #expect(w.a.inDoubtTransactions == [id])
    }

    /// Without its room (`checkpointRoom` 0) the TM's checkpoint on such a log is refused: the case the
    /// room exists for.
    @Test("without the room, the TM's checkpoint on a full log gets log-full", .hangGuard)
    func withoutTheRoomTheCheckpointIsRefused() async throws {
        let dir = try makeTempDirectory("room-none")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let log = try LogStore.create(at: dir + "/log", options: KVWorld.tinyLog)
        defer { try? log.close() }
        var options = TransactionManagerOptions()
        options.checkpointRoom = 0
        let tm = try TransactionManager.create(log: log, options: options)
        try tm.recover()
        #expect(log.info().reservedBytes == 0)
        let filler = try log.createStream("filler")
        try log.openStream(TransactionManager.defaultStreamName).onTailPinned(nil)
        log.core.pinnersAheadDisabledForTesting = true
        Self.fillUp(filler)
        expectLogError(.logFull) { _ = try tm.checkpoint() }
        #expect(tm.currentState == .online)
    }

    /// The rooms are given back by whoever closes: a store's with its RM, the TM's with the TM; and a
    /// store or TM opened again takes them once.
    @Test("rooms go back on close and are taken once on reopen", .hangGuard)
    func roomsFollowOpenAndClose() async throws {
        let w = try KVWorld(stores: 2, tag: "room-close")
        defer { w.finish() }
        let tmRoom = w.tmRoomBytes
        let storeRoom = w.storeRoomBytes
        #expect(tmRoom > 0 && storeRoom > 0)
        #expect(w.log.info().reservedBytes == UInt64(tmRoom + 2 * storeRoom))
        for _ in 0..<3 { try w.a.checkpoint() }
        try w.tm.checkpoint()
        #expect(w.log.info().reservedBytes == UInt64(tmRoom + 2 * storeRoom), "a checkpoint takes its room again, once")
        w.b.close()
        #expect(w.log.info().reservedBytes == UInt64(tmRoom + storeRoom))
        let reopened = try KVStore.open(transactionManager: w.tm, id: w.storeIDs[1], directory: w.dataDirectory)
        #expect(w.log.info().reservedBytes == UInt64(tmRoom + 2 * storeRoom))
        try w.tm.close()
        #expect(w.log.info().reservedBytes == 0, "the TM's close closed the stores' RMs and gave every room back")
        reopened.close()
        #expect(w.log.info().reservedBytes == 0)
    }
}
