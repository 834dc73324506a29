// The room the TM keeps for its next checkpoint follows the checkpoints (docs/RELIABILITY.md, "Found by
// the fifteenth review (checkpoint room and decoder leftovers)"). It was a fixed 4096 bytes: a TM with
// more in flight wrote its checkpoint as a plain append, which a log full to its last byte refused
// (`log-full`) while the room, too small to use, stayed reserved; and a checkpoint racing a stop, which
// gave the room back under it, failed with `invalid-argument` ("no reservation") instead of `closed`.

import Foundation
@testable import LogStore
import Testing
@testable import TransactionManager

@Suite("The TM's room for its next checkpoint follows its checkpoints")
struct TMCheckpointRoomTests {
    /// Three containers of 512 KiB: a full log in a few hundred appends.
    static let tinyLog = LogCreateOptions(containerSize: 1 << 19, containerCount: 3, blockSize: 8192)

    /// Prepares `count` transactions under a superior, each described by 1000 bytes, so the TM's
    /// checkpoint holds about 1100 bytes per transaction. Returns the superiors (kept alive by the caller).
    static func prepareUnderSuperiors(_ tm: TransactionManager, count: Int, rm given: ScriptedRM? = nil) async throws -> [SuperiorEnlistment] {
        let rm = try given ?? ScriptedRM.online(tm, "a")
        var superiors: [SuperiorEnlistment] = []
        for _ in 0..<count {
            let tx = try tm.createTransaction(description: String(repeating: "d", count: 1000))
            _ = try rm.enlist(tx)
            let superior = try tx.enlistSuperior()
            #expect(try await superior.prepare() == .prepared)
            superiors.append(superior)
        }
        return superiors
    }

    /// Holds off the TM's tail-pinned handlers and fills the log to its last byte with another stream.
    static func fill(_ log: LogStore) throws -> LogStream {
        let filler = try log.createStream("filler")
        try log.openStream(TransactionManager.defaultStreamName).onTailPinned(nil)
        log.core.pinnersAheadDisabledForTesting = true
        fillLogToItsLastByte(with: filler)
        expectLogError(.logFull) { _ = try filler.append([]) }
        return filler
    }

    /// The restart record's size in bytes.
    static func restartSize(_ tm: TransactionManager) throws -> Int {
        let stream = try #require(tm.stream)
        return try #require(try stream.readRestartArea()).data.count
    }

    @Test("after a checkpoint larger than checkpointRoom, the room is sized from it, and on a full log the next one goes in through it", .hangGuard)
    func roomFollowsTheCheckpoint() async throws {
        let dir = TMScratch("room-follows")
        defer { dir.remove() }
        let (log, tm) = try dir.createOnline(log: Self.tinyLog)
        defer { try? log.close() }
        #expect(tm.restartRoom == 4096)
        let superiors = try await Self.prepareUnderSuperiors(tm, count: 6)
        try tm.checkpoint()
        let size = try Self.restartSize(tm)
        #expect(size > 4096)
        // A quarter more than the last restart record, reserved as the room.
        #expect(tm.restartRoom == size + size / 4)
        #expect(log.info().reservedBytes == UInt64(log.core.reservationCost(size + size / 4)))
        _ = try Self.fill(log)
        // The same snapshot again: through the room, on a log where nothing else fits.
        let lsn = try tm.checkpoint()
        #expect(try #require(tm.stream).info().restartLSN == lsn)
        #expect(try tmCheckpoint(tm).transactions.count == 6)
        #expect(superiors.count == 6)
    }

    /// The sixteenth review's check: the room follows the checkpoints down as well as up. A TM that once
    /// checkpointed many in-doubt transactions holds a large room; once they are resolved, its next
    /// checkpoint goes in through that room (using the whole reservation) and the next room is sized from
    /// that small checkpoint: `checkpointRoom` again, not the large room kept for good.
    @Test("once the transactions that made a checkpoint large are resolved, the next checkpoint brings the room back down", .hangGuard)
    func roomShrinksAfterASmallCheckpoint() async throws {
        let dir = TMScratch("room-shrinks")
        defer { dir.remove() }
        let (log, tm) = try dir.createOnline(log: Self.tinyLog)
        defer { try? log.close() }
        let rm = try ScriptedRM.online(tm, "a")  // kept: it acknowledges the commits
        let superiors = try await Self.prepareUnderSuperiors(tm, count: 6, rm: rm)
        try tm.checkpoint()
        let large = try Self.restartSize(tm)
        #expect(tm.restartRoom == large + large / 4)
        for superior in superiors {
            try await superior.commit()
            #expect(await superior.waitForOutcome() == .committed)
        }
        try tm.checkpoint()
        #expect(try tmCheckpoint(tm).transactions.isEmpty)
        #expect(try Self.restartSize(tm) < 4096)
        #expect(tm.restartRoom == 4096)
        #expect(log.info().reservedBytes == UInt64(log.core.reservationCost(4096)), "only the new room is reserved")
        #expect(rm.errors.isEmpty)
    }

    @Test("a checkpoint that outgrew its room gives the room back before its plain append, and fits a full log", .hangGuard)
    func outgrownRoomIsGivenBackFirst() async throws {
        let dir = TMScratch("room-outgrown")
        defer { dir.remove() }
        let (log, tm) = try dir.createOnline(log: Self.tinyLog)
        defer { try? log.close() }
        // The room still the 4096 bytes of a TM with nothing in flight; the snapshot grew past it.
        let superiors = try await Self.prepareUnderSuperiors(tm, count: 5)
        #expect(tm.restartRoom == 4096)
        _ = try Self.fill(log)
        // The bytes the room held (its record and the slack the log keeps for it) take the checkpoint.
        let lsn = try tm.checkpoint()
        #expect(try Self.restartSize(tm) > 4096)
        #expect(try #require(tm.stream).info().restartLSN == lsn)
        #expect(try tmCheckpoint(tm).transactions.count == 5)
        #expect(superiors.count == 5)
        #expect(tm.currentState == .online)
    }

    @Test("a checkpoint racing a stop that gave its room back throws closed and leaves nothing reserved")
    func checkpointRacingStopIsClosed() throws {
        let dir = TMScratch("room-stop")
        defer { dir.remove() }
        let (log, tm) = try dir.createOnline()
        defer { try? log.close() }
        #expect(tm.restartRoom > 0)
        let stream = try #require(tm.stream)
        let restart = try stream.info().restartLSN
        // The stop (a terminate, the log closed under the TM) lands between the snapshot and its write.
        tm.afterCheckpointSnapshotForTesting = { tm.stop() }
        expectLogError(.closed) { _ = try tm.checkpoint() }
        #expect(log.info().reservedBytes == 0)
        #expect(try stream.info().restartLSN == restart, "nothing written after the stop")
    }
}
