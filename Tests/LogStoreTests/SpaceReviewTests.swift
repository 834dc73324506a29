// Space management and the archive tail at their edges: a read-only log's reservations, containers
// pending delete, a failed stream deletion, archive tails outside the log. Each test failed before its
// fix (docs/RELIABILITY.md, "Found by the sixth review").

import Foundation
import Testing
import TxLogTestSupport
@testable import LogStore

@Suite("Space review: reservations, pending deletes, archive tails")
struct SpaceReviewTests {
    /// A log of three 512 KiB containers whose first is pending delete: filled, left for the second,
    /// then removed while it still holds records.
    static func logWithAContainerPendingDelete(_ dir: String) throws -> (LogStore, first: UInt32) {
        let log = try LogStore.create(
            at: dir, options: LogCreateOptions(containerSize: 512 * 1024, containerCount: 3, blockSize: 4096, codec: .none))
        let first = try #require(log.info().containers.first { $0.logicalID == 1 }).physicalID
        while log.lastLSN.container < 2 { try log.append([UInt8](repeating: 7, count: 3000)) }
        try log.flush()
        try log.removeContainer(first)
        return (log, first)
    }

    /// `reserve` on a log opened read-only was granted (and counted), although every other call that
    /// changes the log throws `readOnly` there.
    @Test("reserve on a read-only log throws readOnly")
    func reserveOnReadOnlyLog() throws {
        let dir = FaultTestKit.temporaryPath("space-reserve-readonly")
        defer { FaultTestKit.remove(dir) }
        let log = try LogStore.create(at: dir, options: FaultTestKit.tinyOptions())
        _ = try log.createStream("undo")
        try log.close()
        let ro = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true))
        expectLogError(.readOnly) { try ro.defaultStream.reserve(recordSizes: [100]) }
        expectLogError(.readOnly) { try ro.openStream("undo").reserve(recordSizes: [100]) }
        #expect(try ro.defaultStream.info().reservedRecords == 0)
        try ro.close()
    }

    /// A container pending delete (removed while it held records) still counted toward the log's
    /// capacity: a reservation was granted that holds more than all but one of the containers the log
    /// keeps, the very case `reserve` refuses as pinning the log.
    @Test("reservations may not hold more than all but one container, not counting those pending delete")
    func reservationCapacityIgnoresPendingDelete() throws {
        let dir = FaultTestKit.temporaryPath("space-reserve-pending-delete")
        defer { FaultTestKit.remove(dir) }
        let (log, _) = try Self.logWithAContainerPendingDelete(dir)
        #expect(log.core.lock.withLock { log.core.keptContainerCountLocked() } == 2)
        let cdb = log.core.containerDataBytes
        let s = try log.createStream("undo")
        // More than one container's worth (all but one of the two kept), yet within the free space.
        let size = 1000
        let count = cdb / log.core.reservationCost(size) + 20
        expectLogError(.logFull) { try s.reserve(recordSizes: [Int](repeating: size, count: count)) }
        try log.close()
    }

    /// A `deleteStream` whose base-file update failed put the stream and its reservations back, but not
    /// the largest reserved record's cost it had reset: the reservation floor then had no slack per
    /// container boundary for the reservations it restored. (Released before the update, the space could
    /// also be reserved by another stream meanwhile.) Now they are released once the deletion is durable.
    @Test("a deleteStream that fails restores the reservation accounting it changed")
    func failedDeleteStreamRestoresReservationState() throws {
        let dir = FaultTestKit.temporaryPath("space-delete-restores")
        defer { FaultTestKit.remove(dir) }
        let io = FaultyFileIO()
        let log = try LogStore.create(at: dir, options: FaultTestKit.tinyOptions(), io: io)
        let s = try log.createStream("undo")
        try s.reserve(recordSizes: [100, 2000])
        let before = log.core.lock.withLock { (log.core.state.reservedTotal, log.core.state.maxReservedCost) }
        #expect(before.1 == log.core.reservationCost(2000))
        io.inject(.pwritev, pathContains: "txlog.base")
        #expect(throws: LogError.self) { try log.deleteStream("undo") }
        let after = log.core.lock.withLock { (log.core.state.reservedTotal, log.core.state.maxReservedCost) }
        #expect(after == before)
        #expect(try s.info().reservedRecords == 2)
        try? log.close()

        // A deletion that succeeds releases them.
        let dir2 = FaultTestKit.temporaryPath("space-delete-releases")
        defer { FaultTestKit.remove(dir2) }
        let log2 = try LogStore.create(at: dir2, options: FaultTestKit.tinyOptions())
        try log2.createStream("undo").reserve(recordSizes: [100, 2000])
        try log2.deleteStream("undo")
        #expect(log2.info().reservedBytes == 0)
        #expect(log2.core.lock.withLock { log2.core.state.maxReservedCost } == 0)
        try log2.close()
    }

    /// `setArchiveTail` checked only that the LSN was durable: an LSN inside a block (naming no record) was
    /// persisted, and `archiveExtents` then told a backup tool to start copying in the middle of a block.
    @Test("setArchiveTail refuses an LSN that names no record")
    func archiveTailNamingNoRecord() throws {
        let dir = FaultTestKit.temporaryPath("space-archive-no-record")
        defer { FaultTestKit.remove(dir) }
        let log = try LogStore.create(at: dir, options: FaultTestKit.tinyOptions())
        let s = try log.createStream("arch")
        var lsns: [LSN] = []
        for i in 0..<40 { lsns.append(try log.append(FaultTestKit.payload(i))) }
        try log.flush()
        let last = lsns[lsns.count - 1]
        // Inside the first block (a sector in), and a slot past the records of a block that has a successor.
        let inside = LSN(uncheckedContainer: last.container, blockOffset: UInt64(Format.containerDataStart + Format.sectorSize), slot: 0)
        let endOfBlock = try #require(zip(lsns, lsns.dropFirst()).first { $0.0.blockOffset != $0.1.blockOffset }?.0)
        let slot = LSN(uncheckedContainer: endOfBlock.container, blockOffset: endOfBlock.blockOffset, slot: endOfBlock.slot + 1)
        #expect(lsns[0] < inside && inside < last && slot < last && log.durableLSN >= last)
        expectLogError(.invalidArgument) { try log.setArchiveTail(inside) }
        expectLogError(.invalidArgument) { try s.setArchiveTail(slot) }
        expectLogError(.invalidArgument) { try log.setArchiveTail(.invalid) }
        #expect(log.info().archiveTail == .null)
        try log.setArchiveTail(last)
        try s.setArchiveTail(last)
        try log.setArchiveTail(.null)
        try log.close()
    }

    /// An archive tail below every container the log holds (in a container recycled long ago) was
    /// persisted: it names records the log no longer has, and the log-full message named it as pinning
    /// the tail.
    @Test("setArchiveTail refuses an LSN in a container already recycled")
    func archiveTailBelowTheLog() throws {
        let dir = FaultTestKit.temporaryPath("space-archive-below")
        defer { FaultTestKit.remove(dir) }
        let log = try LogStore.create(at: dir, options: LogCreateOptions(containerSize: 512 * 1024, containerCount: 3, blockSize: 4096, codec: .none))
        let old = try log.append([1, 2, 3])
        while log.lastLSN.container < 4 {
            var lsn = LSN.null
            for _ in 0..<20 { lsn = try log.append([UInt8](repeating: 7, count: 3000)) }
            try log.flush()
            try log.advanceBase(to: lsn)
        }
        let oldest = try #require(log.info().containers.filter { $0.logicalID != 0 }.map(\.logicalID).min())
        #expect(old.container < oldest)
        expectLogError(.invalidArgument) { try log.setArchiveTail(old) }
        expectLogError(.invalidArgument) { try log.defaultStream.setArchiveTail(old) }
        #expect(log.info().archiveTail == .null)
        try log.close()
    }

    /// CLFS's rule: an archive tail lies in the log's active region, [min(base, archive tails), last].
    /// One below the base (records released, no longer readable) and below every archive tail was persisted.
    @Test("setArchiveTail refuses an LSN below both the base and every archive tail")
    func archiveTailBelowTheBase() throws {
        let dir = FaultTestKit.temporaryPath("space-archive-below-base")
        defer { FaultTestKit.remove(dir) }
        let log = try LogStore.create(at: dir, options: FaultTestKit.tinyOptions())
        let s = try log.createStream("arch")
        var r: [LSN] = []
        for i in 0..<10 { r.append(try log.append(FaultTestKit.payload(i))) }
        try log.flush()
        try log.advanceBase(to: r[5])
        expectLogError(.invalidArgument) { try log.setArchiveTail(r[2]) }
        expectLogError(.invalidArgument) { try s.setArchiveTail(r[2]) }
        #expect(log.info().archiveTail == .null)
        try log.setArchiveTail(r[5])
        try log.advanceBase(to: r[8])
        try s.setArchiveTail(r[6])  // between the lowest archive tail and the base: still held
        expectLogError(.invalidArgument) { try log.setArchiveTail(r[4]) }
        #expect(log.info().archiveTail == r[5])
        try log.close()
    }

    /// `setPolicy` counted containers pending delete toward a raised minimum: it added none, and once
    /// recycling deleted them the log had fewer containers than its policy's minimum.
    @Test("setPolicy's raised minimum does not count containers pending delete")
    func setPolicyMinimumIgnoresPendingDelete() throws {
        let dir = FaultTestKit.temporaryPath("space-policy-pending-delete")
        defer { FaultTestKit.remove(dir) }
        let (log, first) = try Self.logWithAContainerPendingDelete(dir)
        var p = log.policy
        p.minContainers = 3
        try log.setPolicy(p)
        // Recycling passes the first container: it is deleted.
        try log.advanceBase(to: try log.append([1]))
        try log.flush()
        try log.advanceBase(to: log.lastLSN)
        #expect(!log.info().containers.contains { $0.physicalID == first })
        #expect(log.info().containers.count >= 3, "\(log.info().containers.count) containers, policy minimum 3")
        try log.close()
    }
}
