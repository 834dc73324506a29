// A sync whose writeback the device failed, then a reopen in the same boot (fsyncgate).
//
// Linux marks the pages of a failed writeback clean: they stay in the page cache, so reads still return
// them, but the device never got them, and a later fdatasync of the file succeeds without writing them.
// The log fails on the sync error (I5), and the contract says a reopen (a fresh recovery) continues. That
// recovery reads the failed batch from the page cache; its fdatasync of the tail then proves nothing.
// The simulated disk models this (`SimulatedDisk.loseWritebackAtNextFileSync`).

import Foundation
import Testing
@testable import LogStore

private typealias Kit = FaultTestKit

@Suite("Lost writeback: a failed sync, then a reopen in the same boot")
struct LostWritebackTests {
    /// The reopen read the failed batch back, synced the tail (a no-op: nothing dirty), and wrote the base
    /// file's durable watermark over those records; the records acknowledged next were written after them.
    /// A power loss then took the batch, never on the device: the open after it found a hole below the
    /// watermark and failed with `corrupt`, with the acknowledged records behind it.
    @Test("a reopen makes the recovered tail durable itself: acknowledged records after it survive a power loss")
    func reopenAfterLostContainerWriteback() throws {
        let disk = SimulatedDisk()
        try disk.makeDirectory("/sim")
        let dir = "/sim/log"
        var ledger = FaultLedger()
        let log = try LogStore.create(at: dir, options: Kit.tinyOptions(containers: 3), io: disk)
        #expect(ledger.round(log, count: 20) == nil)
        disk.loseWritebackAtNextFileSync()
        let e = ledger.round(log, count: 20)
        #expect(e?.code == .failed, "\(String(describing: e))")
        #expect(log.isFailed)
        _ = Kit.logError { try log.close() }

        // The same boot: the page cache still holds the batch whose sync failed.
        let again = try LogStore.open(at: dir, io: disk)
        #expect(try ledger.verify(again) == 40, "the reopen reads the failed batch from the page cache")
        #expect(ledger.round(again, count: 20) == nil)
        let acked = ledger.acked

        let afterPowerLoss = disk.crash(mode: .dropUnsynced, seed: 1)
        let reopened = Kit.logError {
            let log = try LogStore.open(at: dir, io: afterPowerLoss)
            defer { try? log.close() }
            #expect(try ledger.verify(log) >= acked)
        }
        #expect(reopened == nil, "acknowledged records lost after the power loss: \(String(describing: reopened))")
        try? again.close()
    }

    /// The same, when the reopen's own sync of the tail fails and loses its writeback: that open fails, and
    /// the next one must not trust the page cache either.
    @Test("a reopen whose own tail sync lost its writeback fails; the next reopen still makes the tail durable")
    func reopenWhoseTailSyncLostWriteback() throws {
        let disk = SimulatedDisk()
        try disk.makeDirectory("/sim")
        let dir = "/sim/log"
        var ledger = FaultLedger()
        let log = try LogStore.create(at: dir, options: Kit.tinyOptions(containers: 3), io: disk)
        #expect(ledger.round(log, count: 20) == nil)
        disk.loseWritebackAtNextFileSync()
        #expect(ledger.round(log, count: 20)?.code == .failed)
        _ = Kit.logError { try log.close() }
        disk.loseWritebackAtNextFileSync()
        let failedOpen = Kit.logError { _ = try LogStore.open(at: dir, io: disk) }
        #expect(failedOpen?.code == .io, "\(String(describing: failedOpen))")

        let again = try LogStore.open(at: dir, io: disk)
        #expect(ledger.round(again, count: 20) == nil)
        let acked = ledger.acked
        let afterPowerLoss = disk.crash(mode: .dropUnsynced, seed: 2)
        let reopened = Kit.logError {
            let log = try LogStore.open(at: dir, io: afterPowerLoss)
            defer { try? log.close() }
            #expect(try ledger.verify(log) >= acked)
        }
        #expect(reopened == nil, "acknowledged records lost after the power loss: \(String(describing: reopened))")
        try? again.close()
    }
}
