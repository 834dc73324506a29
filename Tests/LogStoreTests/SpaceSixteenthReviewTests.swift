// Space leftovers, the sixteenth review (docs/RELIABILITY.md, "Found by the sixteenth review (space and
// TM leftovers)"). Each test failed before its fix.

import Foundation
import Testing
import TxLogTestSupport
@testable import LogStore

// `uncompressedTiny` (512 KiB containers, 4 KiB blocks, no compression) is SpaceTwelfthReviewTests';
// `fillWith3000ByteRecords` is SpaceFourteenthReviewTests'.

private func shrinkPolicy(_ percent: UInt8) -> LogPolicy {
    var p = LogPolicy()
    p.autoShrinkPercent = percent
    return p
}

/// Waits until every auto-shrink check queued on the deletion queue (`shrinkInBackground`) has run.
private func backgroundShrinksDone(_ log: LogStore) async {
    await onOwnThread { log.core.deletions.wait() }
}

@Suite("An auto-shrink check held back runs once what held it back ends, not only at the next trigger")
struct DeferredShrinkTests {
    /// A full log of three containers whose tail-pinned handler frees the two oldest. The handler's base
    /// move checked auto-shrink while the append was in the log-full path, which keeps every container
    /// (the append needs the room); the append then took one, and one of three stayed free, above the
    /// policy's 20 %, for as long as no base moved again: an idle log kept it for good.
    @Test func shrinkHeldBackByTheLogFullPathRunsAfterIt() async throws {
        let dir = FaultTestKit.temporaryPath("space16-shrink-after-full")
        defer { FaultTestKit.remove(dir) }
        let log = try LogStore.create(at: dir, options: uncompressedTiny(3))
        log.core.pinnersAheadDisabledForTesting = true  // the handlers from the log-full path only
        #expect(fillWith3000ByteRecords(log, to: 3) == nil)
        let firstInThird = log.lastLSN
        try log.setPolicy(shrinkPolicy(20))  // nothing free yet
        #expect(log.info().containers.count == 3)
        let d = log.defaultStream
        d.onTailPinned { _ in try? d.advanceBase(to: firstInThird) }  // frees containers 1 and 2
        #expect(fillWith3000ByteRecords(log, to: 4) == nil)
        await backgroundShrinksDone(log)
        #expect(log.info().containers.count == 2, "\(log.info().containers.map { "\($0.physicalID):\($0.state)" })")
        _ = try log.append([UInt8](repeating: 7, count: 3000))
        try log.close()
        let reopened = try LogStore.open(at: dir)
        #expect(reopened.info().containers.count == 2)
        try reopened.close()
    }

    /// A reservation of one large record keeps both free containers of three (removing one would leave
    /// less free space than its floor): the policy's check keeps them. A reserved append then used the
    /// reservation up, and nothing checked again: two of three stayed free, above 30 %, until a base
    /// moved or a reservation was released.
    @Test func shrinkHeldBackByAReservationRunsOnceItIsUsed() async throws {
        let dir = FaultTestKit.temporaryPath("space16-shrink-after-reserved")
        defer { FaultTestKit.remove(dir) }
        let log = try LogStore.create(at: dir, options: uncompressedTiny(3))
        let d = log.defaultStream
        try d.reserve(recordSizes: [370_000])
        try log.setPolicy(shrinkPolicy(30))
        #expect(log.info().containers.count == 3, "the reservation needs both free containers")
        _ = try d.append([1, 2, 3], usingReservation: true)  // uses up the whole reservation
        #expect(log.info().reservedBytes == 0)
        await backgroundShrinksDone(log)
        #expect(log.info().containers.count == 2, "\(log.info().containers.map { "\($0.physicalID):\($0.state)" })")
        try log.close()
    }
}

@Suite("A reservation the log could never hold, even grown to its policy's maximum, is refused before it grows")
struct ReservationNeverFitsTests {
    /// Records of 200,000 bytes cost 200,600 bytes each. Grown to six 512 KiB containers, the log has at
    /// most 3,121,088 bytes free (every container free but the one written, and that one empty), and the
    /// reservations' floor asks for the reserved bytes and six records of slack: nine records fit
    /// (3,009,000), ten (3,209,600) never do, though ten are well within all but one container
    /// (2,600,960), the only bound checked before: auto-grow took the log to six containers, and the
    /// reservation was refused anyway. Both maximums: by count, and by size.
    @Test(arguments: [false, true]) func largeRecordsBeyondTheGrownLogsFloor(bySize: Bool) throws {
        let dir = FaultTestKit.temporaryPath("space16-never-fits-\(bySize)")
        defer { FaultTestKit.remove(dir) }
        let log = try LogStore.create(at: dir, options: uncompressedTiny(2))
        var p = LogPolicy()
        p.autoGrow = true
        p.growthIncrement = 1
        if bySize { p.maxSizeBytes = 6 * 512 * 1024 } else { p.maxContainers = 6 }
        try log.setPolicy(p)
        let s = try log.createStream("s")
        #expect(log.core.reservationCost(200_000) == 200_600)
        expectLogError(.logFull) { try s.reserve(recordSizes: [Int](repeating: 200_000, count: 10)) }
        #expect(log.info().containers.count == 2)
        #expect(log.info().reservedBytes == 0)
        // Nine fit the grown log: it grows to the six they need.
        try s.reserve(recordSizes: [Int](repeating: 200_000, count: 9))
        #expect(log.info().containers.count == 6)
        try log.close()
    }
}
