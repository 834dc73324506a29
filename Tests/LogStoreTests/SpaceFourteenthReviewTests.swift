// Space and read-only leftovers, the fourteenth review (docs/RELIABILITY.md, "Found by the fourteenth
// review (LogStore space and read-only leftovers)"). Each test failed before its fix.

import Foundation
import Testing
import TxLogTestSupport
@testable import LogStore

// `uncompressedTiny` (512 KiB containers, 4 KiB blocks, no compression) is SpaceTwelfthReviewTests'.

private let record = [UInt8](repeating: 7, count: 3000)

/// Appends records of 3000 bytes until the log's last record is in logical container `container` or an
/// append throws; returns that error. SpaceSixteenthReviewTests uses it too.
func fillWith3000ByteRecords(_ log: LogStore, to container: UInt32) -> LogError? {
    while log.lastLSN.container < container {
        do { _ = try log.append(record) } catch let e as LogError { return e } catch { return LogError(.io, "\(error)") }
    }
    return nil
}

private func describe(_ log: LogStore) -> String {
    "\(log.info().containers.map { "\($0.physicalID):\($0.state)" }) at \(log.lastLSN)"
}

/// A log of `containers` tiny containers that auto-grows by `increment` up to `max`; the tail-pinned
/// handlers only from the log-full path.
private func growingLog(_ dir: String, containers: Int, increment: UInt32, max: UInt32) throws -> (LogStore, LogPolicy) {
    let log = try LogStore.create(at: dir, options: uncompressedTiny(containers))
    log.core.pinnersAheadDisabledForTesting = true
    var p = LogPolicy()
    p.autoGrow = true
    p.growthIncrement = increment
    p.maxContainers = max
    try log.setPolicy(p)
    return (log, p)
}

/// True once: for hooks that act on their first call only.
private func firstCall(_ box: LockedBox<Bool>) -> Bool {
    box.withLock { was in
        defer { was = true }
        return !was
    }
}

@Suite("Auto-grow's maximum counts the containers the log keeps")
struct GrowthCountsKeptContainersTests {
    /// A log at its policy's maximum of three containers, one of them pending delete (removed while it
    /// held records the base still pins): auto-grow counted that one, added none and the append said
    /// `logFull`, where the log keeps two, and once recycling deletes it would be below the maximum.
    @Test func growsBesideAContainerPendingDelete() throws {
        let dir = FaultTestKit.temporaryPath("space14-grow-pending")
        defer { FaultTestKit.remove(dir) }
        let (log, _) = try growingLog(dir, containers: 3, increment: 1, max: 3)
        let first = try #require(log.info().containers.first { $0.logicalID == 1 }).physicalID
        #expect(fillWith3000ByteRecords(log, to: 2) == nil)
        try log.flush()
        try log.removeContainer(first)
        let error = fillWith3000ByteRecords(log, to: 4)
        #expect(error == nil, "\(String(describing: error)): \(describe(log))")
        #expect(log.info().containers.count == 4, "\(describe(log))")
        #expect(log.info().containers.filter { $0.state != .pendingDelete }.count == 3)
        // The maximum still holds for the containers kept.
        #expect(fillWith3000ByteRecords(log, to: 5)?.code == .logFull, "\(describe(log))")
        #expect(log.info().containers.filter { $0.state != .pendingDelete }.count == 3)
        try log.close()
    }
}

@Suite("setPolicy lowering the maximum while auto-grow prepares its containers")
struct GrowthRacingSetPolicyTests {
    /// Auto-grow decided to add two containers (maximum four) and, while it prepared their files, a
    /// `setPolicy` lowered the maximum to three: both were named, and the log kept four containers, over
    /// the maximum in force, with nothing to bring it down.
    @Test func loweredMaximumHoldsForGrowthInFlight() throws {
        let dir = FaultTestKit.temporaryPath("space14-grow-setpolicy")
        defer { FaultTestKit.remove(dir) }
        let (log, p) = try growingLog(dir, containers: 2, increment: 2, max: 4)
        var lowered = p
        lowered.maxContainers = 3
        let fired = LockedBox(false)
        log.core.beforeGrowthNamedForTesting = { [lowered] in
            guard firstCall(fired) else { return }
            try? log.setPolicy(lowered)
        }
        let error = fillWith3000ByteRecords(log, to: 3)
        #expect(fired.withLock { $0 })
        #expect(error == nil, "\(String(describing: error)): \(describe(log))")
        #expect(log.policy.maxContainers == 3)
        #expect(log.info().containers.count == 3, "\(describe(log))")
        #expect(fillWith3000ByteRecords(log, to: 4)?.code == .logFull, "\(describe(log))")
        #expect(try log.strayFiles().isEmpty, "the container prepared beyond the maximum is unlinked")
        try log.close()
        let reopened = try LogStore.open(at: dir)
        #expect(reopened.info().containers.count == 3)
        try reopened.close()
    }
}

@Suite("Auto-shrink between the log-full path and the append's retry")
struct ShrinkBeforeLogFullRetryTests {
    /// A full log of three containers whose tail-pinned handler frees the oldest one. The log-full path
    /// returned (room made) and let auto-shrink go again; a shrink (here a `setPolicy` from the test
    /// hook, as any base move on another thread would) removed the freed container before the append's
    /// retry, and the append said `logFull` with the handlers already called twice.
    @Test func shrinkWaitsForTheRetry() throws {
        let dir = FaultTestKit.temporaryPath("space14-shrink-retry")
        defer { FaultTestKit.remove(dir) }
        let (log, p) = try Self.fullLogWhoseHandlerFreesOneContainer(dir)
        let fired = LockedBox(false)
        log.core.afterLogFullHandledForTesting = { [p] in
            guard firstCall(fired) else { return }
            try? log.setPolicy(p)  // checks auto-shrink: one free of three is above 20 %
        }
        let error = fillWith3000ByteRecords(log, to: 4)
        #expect(fired.withLock { $0 })
        #expect(error == nil, "\(String(describing: error)): \(describe(log))")
        #expect(log.lastLSN.container == 4)
        #expect(log.core.lock.withLock { log.core.state.makingRoom } == 0)
        try log.close()
    }

    /// The same window for a reservation the full log could not hold.
    @Test func shrinkWaitsForTheReservationsRetry() throws {
        let dir = FaultTestKit.temporaryPath("space14-shrink-retry-reserve")
        defer { FaultTestKit.remove(dir) }
        let (log, p) = try Self.fullLogWhoseHandlerFreesOneContainer(dir)
        // Fill the last container to its end: a small reservation no longer fits.
        while log.core.lock.withLock({ log.core.freeBytesLocked() }) > 3000 { _ = try log.append([UInt8](repeating: 1, count: 500)) }
        #expect(log.lastLSN.container == 3)
        let fired = LockedBox(false)
        log.core.afterLogFullHandledForTesting = { [p] in
            guard firstCall(fired) else { return }
            try? log.setPolicy(p)
        }
        #expect(throws: Never.self) { try log.defaultStream.reserve(recordSizes: [5000]) }
        #expect(fired.withLock { $0 })
        #expect(log.core.lock.withLock { log.core.state.makingRoom } == 0)
        try log.close()
    }

    /// Three containers holding records, auto-shrink above 20 % free, and a tail-pinned handler that frees
    /// the first container only.
    static func fullLogWhoseHandlerFreesOneContainer(_ dir: String) throws -> (LogStore, LogPolicy) {
        let log = try LogStore.create(at: dir, options: uncompressedTiny(3))
        log.core.pinnersAheadDisabledForTesting = true
        #expect(fillWith3000ByteRecords(log, to: 2) == nil)
        let firstInSecond = log.lastLSN
        #expect(fillWith3000ByteRecords(log, to: 3) == nil)
        // Nothing is free now: the policy shrinks nothing yet.
        var p = LogPolicy()
        p.autoShrinkPercent = 20
        try log.setPolicy(p)
        #expect(log.info().containers.count == 3)
        let d = log.defaultStream
        d.onTailPinned { _ in try? d.advanceBase(to: firstInSecond) }  // frees the first container only
        return (log, p)
    }
}

@Suite("A read-only view lets go of the cached blocks of containers the writer recycled")
struct ReadOnlyCacheReleaseTests {
    /// The writer drops the cached blocks of a container it recycles; a read-only view's `refresh()` put
    /// the new container table in force but kept them: no read could reach them (a read looks its
    /// container up first, `notFound`), and they held the cache's memory until newer blocks pushed them out.
    @Test func refreshDropsTheBlocksOfRecycledContainers() throws {
        let dir = FaultTestKit.temporaryPath("space14-ro-cache")
        defer { FaultTestKit.remove(dir) }
        let writer = try LogStore.create(at: dir, options: uncompressedTiny(3))
        defer { try? writer.close() }
        writer.core.pinnersAheadDisabledForTesting = true
        var inFirst: [LSN] = []
        var firstInSecond = try writer.append(record)
        while firstInSecond.container == 1 {
            inFirst.append(firstInSecond)
            firstInSecond = try writer.append(record)
        }
        let first = try #require(inFirst.first)
        try writer.flush()
        let reader = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true))
        defer { try? reader.close() }
        for lsn in inFirst { #expect(try reader.read(lsn).lsn == lsn) }  // caches the first container's blocks
        #expect(reader.info().readCacheBytes > 0)
        try writer.advanceBase(to: firstInSecond)  // recycles the first container
        #expect(fillWith3000ByteRecords(writer, to: 4) == nil)  // and writes it again, as logical container 4
        try writer.flush()
        #expect(try reader.refresh())
        expectLogError(.notFound) { _ = try reader.read(first) }
        // Only blocks of the first container were cached.
        #expect(reader.info().readCacheBytes == 0)
        let again = try reader.read(firstInSecond)
        #expect(again.lsn == firstInSecond)
    }
}
