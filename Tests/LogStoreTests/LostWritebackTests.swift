// A sync whose writeback the device failed, then a reopen in the same boot (fsyncgate).
//
// Linux marks the pages of a failed writeback clean: they stay in the page cache, so reads still return
// them, but the device never got them, and a later fdatasync of the file succeeds without writing them.
// The log fails on the sync error (I5), and the contract says a reopen (a fresh recovery) continues. That
// recovery reads the failed batch from the page cache; its fdatasync of the tail then proves nothing.
// The simulated disk models this (`SimulatedDisk.loseWritebackAtNextFileSync`).

import Foundation
import Testing
import TxLogTestSupport
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
        let (disk, dir, ledger0) = try Self.sessionWhoseSyncLostItsWriteback()
        var ledger = ledger0

        // The same boot: the page cache still holds the batch whose sync failed.
        let again = try LogStore.open(at: dir, io: disk)
        #expect(try ledger.verify(again) == 40, "the reopen reads the failed batch from the page cache")
        try Self.acknowledgeThenLosePower(again, disk, dir, &ledger, seed: 1)
    }

    /// A log on a simulated disk with 20 records acknowledged, then 20 whose flush failed because the
    /// container's sync lost its writeback; the failed log closed.
    static func sessionWhoseSyncLostItsWriteback() throws -> (SimulatedDisk, String, FaultLedger) {
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
        return (disk, dir, ledger)
    }

    /// Acknowledges 20 more records on `log`, cuts the power, and checks that the open after it reads
    /// every acknowledged record.
    static func acknowledgeThenLosePower(_ log: LogStore, _ disk: SimulatedDisk, _ dir: String, _ ledger: inout FaultLedger, seed: UInt64) throws {
        defer { try? log.close() }
        #expect(ledger.round(log, count: 20) == nil)
        let afterPowerLoss = disk.crash(mode: .dropUnsynced, seed: seed)
        let reopened = Kit.logError {
            let survivor = try LogStore.open(at: dir, io: afterPowerLoss)
            defer { try? survivor.close() }
            try ledger.verify(survivor)
        }
        #expect(reopened == nil, "acknowledged records lost after the power loss: \(String(describing: reopened))")
    }

    /// The same, when the reopen's own sync of the tail fails and loses its writeback: that open fails, and
    /// the next one must not trust the page cache either.
    @Test("a reopen whose own tail sync lost its writeback fails; the next reopen still makes the tail durable")
    func reopenWhoseTailSyncLostWriteback() throws {
        let (disk, dir, ledger0) = try Self.sessionWhoseSyncLostItsWriteback()
        var ledger = ledger0
        disk.loseWritebackAtNextFileSync()
        let failedOpen = Kit.logError { _ = try LogStore.open(at: dir, io: disk) }
        #expect(failedOpen?.code == .io, "\(String(describing: failedOpen))")

        try Self.acknowledgeThenLosePower(try LogStore.open(at: dir, io: disk), disk, dir, &ledger, seed: 2)
    }

    /// Every file sync of the metadata workload (`MetadataPowerLossTests`) in turn loses its writeback;
    /// the log is then reopened and closed in the same boot, and the power cut: every change and record
    /// the workload had acknowledged is there (`MetaChecker`), and so is what the reopen found.
    @Test("a lost writeback at every file sync of the metadata workload, a reopen in the same boot, then a power loss: nothing acknowledged is lost")
    func lostWritebackAtEveryFileSyncOfTheMetadataWorkload() async {
        let (points, problems) = await onOwnThread { () -> (Int, [String]) in
            var problems: [String] = []
            var points = 0
            var n = 1
            while n < 400 {
                let disk = SimulatedDisk()
                disk.loseWritebackAtFileSync(n)
                let L = MetaWorkload.run(disk)
                guard disk.lostWritebacks > 0 else { break }
                points += 1
                if L.created {
                    do {
                        let again = try LogStore.open(at: MetaWorkload.directory, io: disk)
                        try again.close()
                    } catch { problems.append("file sync #\(n): the reopen in the same boot failed: \(error)") }
                }
                problems += MetaChecker.check(disk.crash(mode: .dropUnsynced, seed: 0), L).map { "file sync #\(n) (\(L.error ?? "no error")): \($0)" }
                n += 1
            }
            return (points, problems)
        }
        print("[lost writeback] \(points) file syncs, \(problems.count) problems")
        #expect(points > 20)
        for p in problems.prefix(20) { Issue.record(Comment(rawValue: p)) }
    }
}
