// Space management leftovers, the thirteenth review (docs/RELIABILITY.md, "Found by the thirteenth review
// (LogStore space leftovers)"). Each test failed before its fix.

import Foundation
import Testing
import TxLogTestSupport
@testable import LogStore

// `uncompressedTiny` (512 KiB containers, 4 KiB blocks, no compression) is SpaceTwelfthReviewTests'.

private func shrinkPolicy(_ percent: UInt8) -> LogPolicy {
    var p = LogPolicy()
    p.autoShrinkPercent = percent
    return p
}

@Suite("Auto-shrink runs when containers become removable without a base or tail moving")
struct ShrinkTriggerLeftoverTests {
    /// Reservations keep free containers from auto-shrink; releasing them made those containers
    /// removable, but no shrink check ran until some base or archive tail moved.
    @Test func shrinksOnceReservationsAreReleased() throws {
        let dir = FaultTestKit.temporaryPath("space13-shrink-release")
        defer { FaultTestKit.remove(dir) }
        let log = try LogStore.create(at: dir, options: uncompressedTiny(4))
        let s = try log.createStream("undo")
        var sizes: [Int] = []
        while log.core.lock.withLock({ log.core.freeContainerRemovableLocked() }), sizes.count < 100 {
            try s.reserve(recordSizes: [100_000])
            sizes.append(100_000)
        }
        try log.setPolicy(shrinkPolicy(50))
        // Three free of four is above 50 %, but the reservations need every free container.
        #expect(log.info().containers.count == 4)
        try s.release(recordSizes: sizes)
        #expect(log.info().containers.count == 2, "\(log.info().containers.map { "\($0.physicalID) \($0.state)" })")
        try log.append([UInt8](repeating: 1, count: 2000))
        try log.close()
    }

    /// A container freed by the writer's own container switch (the one the scan started in, when no
    /// stream had a base recorded: the only writing stream deleted, a new one whose first record opened
    /// the next container) was never checked: auto-shrink ran only after a base or tail moved, a stream
    /// was deleted, or a policy was set.
    @Test func shrinksWhenTheWritersContainerSwitchFreesAContainer() async throws {
        let dir = FaultTestKit.temporaryPath("space13-shrink-switch")
        defer { FaultTestKit.remove(dir) }
        let log = try LogStore.create(at: dir, options: uncompressedTiny(4))
        let a = try log.createStream("a")
        while a.lastLSN.container < 2 || a.lastLSN.blockOffset < 300_000 { _ = try a.append([UInt8](repeating: 3, count: 3000)) }
        #expect(a.lastLSN.container == 2)
        try await log.flush()
        try log.deleteStream("a")  // container 1 freed; 2 kept, the scan starts there
        let b = try log.createStream("b")
        let first = try b.append([UInt8](repeating: 4, count: 300_000))  // does not fit the rest of 2
        #expect(first.container == 3)
        try log.setPolicy(shrinkPolicy(50))  // 2 and 3 hold records: two free of four, not above 50 %
        #expect(log.info().containers.count == 4)
        let checks = LockedBox(0)
        log.core.shrankInBackgroundForTesting = { checks.withLock { $0 += 1 } }
        // The writer records the switch to 3; no base is recorded yet, so 2 is freed: three free of four.
        try await log.flush()
        let shrunk = await eventually { log.info().containers.count == 2 && checks.withLock { $0 } >= 1 }
        #expect(shrunk, "\(log.info().containers.map { "\($0.physicalID) \($0.state)" })")
        _ = try b.append([UInt8](repeating: 5, count: 2000))
        try log.close()
        let reopened = try LogStore.open(at: dir)
        #expect(reopened.info().containers.count == 2)
        try reopened.close()
    }
}

@Suite("Auto-shrink racing another shrink")
struct ShrinkRaceTests {
    /// Auto-shrink chose its container under the log's lock and removed it under a later hold, checking
    /// only the format's minimum of two. A second shrink in between (another trigger on another thread;
    /// here a base moved from the hook, on the same thread) removed a container freed meanwhile, and the
    /// first then removed its own: the log went below the policy's minimum.
    @Test func racingShrinksKeepThePolicysMinimum() throws {
        let dir = FaultTestKit.temporaryPath("space13-shrink-race")
        defer { FaultTestKit.remove(dir) }
        let log = try LogStore.create(at: dir, options: uncompressedTiny(4))
        let record = [UInt8](repeating: 7, count: 2000)
        var last = try log.append(record)
        while last.container < 4 { last = try log.append(record) }
        try log.advanceBase(to: last)  // containers 1 to 3 freed (no auto-shrink yet)
        while last.container < 5 { last = try log.append(record) }
        try log.flush()
        // Container 4 and 5 hold records, two are free. Half free is above 40 %: a shrink chooses the
        // free container with the highest id; while it has not removed it yet, the base moves past 4.
        #expect(log.info().freeContainers == 2)
        let moved = LockedBox(false)
        let target = last
        log.core.beforeShrinkRemovesForTesting = { _ in
            let first = moved.withLock { was in
                defer { was = true }
                return !was
            }
            guard first else { return }
            try? log.advanceBase(to: target)  // frees 4, and shrinks: one container removed, three left
        }
        var p = LogPolicy()
        p.minContainers = 3
        p.autoShrinkPercent = 40
        try log.setPolicy(p)
        #expect(moved.withLock { $0 })
        #expect(log.info().containers.count == 3, "\(log.info().containers.map { "\($0.physicalID) \($0.state)" })")
        _ = try log.append(record)
        try log.close()
    }
}

@Suite("Auto-shrink during a full log's append")
struct ShrinkDuringLogFullTests {
    /// A log that may grow to five containers and shrink above 50 % free, with reservations outstanding
    /// and a tail-pinned handler that moves the base. When the log filled up at five containers, the
    /// handler's base move freed three, its auto-shrink check removed them (the reservations still fit),
    /// and the append, whose growth was done, found the reservations' floor still in its way: `logFull`,
    /// with the policy allowing three more containers.
    @Test func handlersBaseMoveDoesNotShrinkTheRoomAwayFromTheAppend() throws {
        let dir = FaultTestKit.temporaryPath("space13-shrink-logfull")
        defer { FaultTestKit.remove(dir) }
        let log = try LogStore.create(at: dir, options: uncompressedTiny(2))
        log.core.pinnersAheadDisabledForTesting = true  // the handlers from the log-full path
        var p = LogPolicy()
        p.autoGrow = true
        p.growthIncrement = 1
        p.maxContainers = 5
        p.autoShrinkPercent = 50
        try log.setPolicy(p)
        let undo = try log.createStream("undo")
        try undo.reserve(recordSizes: [Int](repeating: 100_000, count: 6))
        let d = log.defaultStream
        d.onTailPinned { _ in try? d.advanceBase(to: d.lastLSN) }
        var error: LogError?
        while error == nil, log.lastLSN.container < 12 {
            do { _ = try log.append([UInt8](repeating: 1, count: 3000)) } catch let e as LogError { error = e }
        }
        #expect(error == nil, "\(String(describing: error)) at \(log.lastLSN), \(log.info().containers.count) containers")
        for _ in 0..<6 { _ = try undo.append([UInt8](repeating: 2, count: 100_000), usingReservation: true) }
        try log.close()
    }
}

@Suite("A release must name sizes the stream has reserved")
struct ReleaseMatchesReservationsTests {
    /// `release` checked only the stream's record count and byte total: sizes never reserved were
    /// accepted. Releasing [500] from [10, 10] left one reserved record with 128 bytes, too few for any
    /// record: it could be neither used nor released, and held its bytes (and the floor's slack per
    /// container boundary) until the log closed.
    @Test func releaseOfSizesNotReservedIsRefused() throws {
        let dir = FaultTestKit.temporaryPath("space13-release-mismatch")
        defer { FaultTestKit.remove(dir) }
        let log = try LogStore.create(at: dir, options: uncompressedTiny(2))
        let s = try log.createStream("undo")
        try s.reserve(recordSizes: [10, 10])
        let before = try s.info()
        let reserved = log.info().reservedBytes
        expectLogError(.invalidArgument) { try s.release(recordSizes: [500]) }
        expectLogError(.invalidArgument) { try s.release(recordSizes: [10, 10, 10]) }
        expectLogError(.invalidArgument) { try s.release(recordSizes: [10, 0]) }
        #expect(try s.info() == before)
        #expect(log.info().reservedBytes == reserved)
        // Both reservations are whole: one used, the other given back.
        _ = try s.append([UInt8](repeating: 1, count: 10), usingReservation: true)
        try s.release(recordSizes: [10])
        #expect(try s.info().reservedRecords == 0)
        #expect(log.info().reservedBytes == 0)
        try log.close()
    }

    /// A reserved append takes the smallest reserved size that fits it, and what is left is exactly the
    /// other sizes: the ones a release names.
    @Test func reservedAppendTakesTheSmallestSizeThatFits() throws {
        let dir = FaultTestKit.temporaryPath("space13-release-after-use")
        defer { FaultTestKit.remove(dir) }
        let log = try LogStore.create(at: dir, options: uncompressedTiny(2))
        let s = try log.createStream("undo")
        try s.reserve(recordSizes: [2000, 100])
        _ = try s.append([UInt8](repeating: 1, count: 50), usingReservation: true)  // takes the 100
        expectLogError(.invalidArgument) { try s.release(recordSizes: [100]) }
        #expect(try s.info().reservedRecords == 1)
        #expect(try s.info().reservedBytes == log.core.reservationCost(2000))
        try s.release(recordSizes: [2000])
        #expect(log.info().reservedBytes == 0)
        try log.close()
    }
}

@Suite("A stream pinning the tail through its archive tail is asked to move that tail")
struct ArchiveTailPinnedHandlerTests {
    /// A log of three containers whose default stream's handler moves its base: the stream "archive"
    /// (no records of its own) pins the tail through its archive tail alone.
    static func logPinnedByAnArchiveTail(_ dir: String) throws -> (LogStore, LogStream) {
        let log = try LogStore.create(at: dir, options: uncompressedTiny(3))
        log.core.pinnersAheadDisabledForTesting = true  // the handlers from the log-full path
        let first = try log.append([UInt8](repeating: 0, count: 100))
        try log.flush()
        let archive = try log.createStream("archive")
        try archive.setArchiveTail(first)
        let d = log.defaultStream
        d.onTailPinned { _ in try? d.advanceBase(to: d.lastLSN) }
        return (log, archive)
    }

    /// The stream's tail-pinned handler was called with the LSN its base should reach, though its base
    /// pinned nothing, and nothing told it to move its archive tail: the log stayed full.
    @Test func archiveTailHandlerIsCalledInsteadOfTheBaseHandler() throws {
        let dir = FaultTestKit.temporaryPath("space13-archive-pinned")
        defer { FaultTestKit.remove(dir) }
        let (log, archive) = try Self.logPinnedByAnArchiveTail(dir)
        let baseCalls = LockedBox(0)
        let targets = LockedBox<[LSN]>([])
        archive.onTailPinned { _ in baseCalls.withLock { $0 += 1 } }
        archive.onArchiveTailPinned { target in
            targets.withLock { $0.append(target) }
            // Archived up to the newest record (a backup tool copied `archiveExtents`): the tail moves there.
            try? log.flush()
            try? archive.setArchiveTail(log.defaultStream.lastLSN)
        }
        var error: LogError?
        while error == nil, log.lastLSN.container < 9 {
            do { _ = try log.append([UInt8](repeating: 5, count: 2000)) } catch let e as LogError { error = e }
        }
        #expect(error == nil, "\(String(describing: error))")
        #expect(!targets.withLock { $0 }.isEmpty)
        #expect(targets.withLock { $0 }.allSatisfy { $0 != .null })
        #expect(baseCalls.withLock { $0 } == 0, "the base handler of a stream whose base pins nothing")
        try log.close()
    }

    /// With no handler to move it, `logFull` names the stream's archive tail as what pins the tail.
    @Test func logFullNamesTheArchiveTail() throws {
        let dir = FaultTestKit.temporaryPath("space13-archive-pinned-full")
        defer { FaultTestKit.remove(dir) }
        let (log, _) = try Self.logPinnedByAnArchiveTail(dir)
        var error: LogError?
        while error == nil, log.lastLSN.container < 9 {
            do { _ = try log.append([UInt8](repeating: 5, count: 2000)) } catch let e as LogError { error = e }
        }
        #expect(error?.code == .logFull)
        #expect(error?.message.contains("archive (archive tail)") == true, "\(String(describing: error))")
        try log.close()
    }
}
