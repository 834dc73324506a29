// Reservations and a full log, the twelfth review (docs/RELIABILITY.md, "Found by the twelfth review
// (reservations, log full, growth, tails)"). Each test failed before its fix.

import Foundation
import Testing
import TxLogTestSupport
@testable import LogStore

/// 512 KiB containers, 4 KiB blocks, no compression: what a record takes in a block is what it takes on disk.
func uncompressedTiny(_ containers: Int) -> LogCreateOptions {
    LogCreateOptions(containerSize: 512 * 1024, containerCount: containers, blockSize: 4096, codec: .none)
}

@Suite("A reservation the free space cannot hold goes through the log-full path")
struct ReserveOnAFullLogTests {
    /// A log of two 512 KiB containers (4 KiB blocks, no compression) filled to its last container's end:
    /// no container free, under 1,200 bytes left, less than one small record's reservation needs.
    static func nearlyFullLog(_ dir: String) throws -> LogStore {
        let log = try LogStore.create(at: dir, options: uncompressedTiny(2))
        log.core.pinnersAheadDisabledForTesting = true  // the log-full path
        func free() -> Int { log.core.lock.withLock { log.core.freeBytesLocked() } }
        while log.lastLSN.container < 2 || free() > 8000 { try log.append([UInt8](repeating: 7, count: 3000)) }
        while free() > 1200 { try log.append([1]) }
        #expect(log.info().freeContainers == 0)
        return log
    }

    /// `reserve` threw `logFull` as soon as the free space was short, where a plain append in the same
    /// place grows the log within its policy: on an auto-grow log a KV store's prepare (which reserves
    /// room for its outcome record) voted no whenever the log's last container was nearly full.
    @Test func reserveGrowsTheLogWithinPolicy() throws {
        let dir = FaultTestKit.temporaryPath("space12-reserve-grows")
        defer { FaultTestKit.remove(dir) }
        let log = try Self.nearlyFullLog(dir)
        var p = LogPolicy()
        p.autoGrow = true
        p.growthIncrement = 1
        p.maxContainers = 3
        try log.setPolicy(p)
        let s = try log.createStream("undo")
        let e = FaultTestKit.logError { try s.reserve(recordSizes: [100]) }
        #expect(e == nil, "reserve on a log that may grow: \(String(describing: e))")
        #expect(log.info().containers.count == 3)
        #expect(try s.info().reservedRecords == (e == nil ? 1 : 0))
        // At the policy's maximum it is `logFull` again, naming the reservation.
        let big = log.core.containerDataBytes / 2
        let full = FaultTestKit.logError { try s.reserve(recordSizes: [big, big]) }
        #expect(full?.code == .logFull)
        #expect(full?.message.contains("reserv") == true, "\(String(describing: full))")
        #expect(log.info().containers.count == 3)
        try s.append([UInt8](repeating: 2, count: 100), usingReservation: true)
        try log.close()
    }

    /// Nor did `reserve` ask the streams that pin the tail to move (the TM's checkpoint), which a plain
    /// append in the same place does.
    @Test func reserveAsksTheTailPinnedStreams() throws {
        let dir = FaultTestKit.temporaryPath("space12-reserve-pinned")
        defer { FaultTestKit.remove(dir) }
        let log = try Self.nearlyFullLog(dir)
        let calls = LockedBox(0)
        let d = log.defaultStream
        d.onTailPinned { _ in
            calls.withLock { $0 += 1 }
            try? d.advanceBase(to: d.lastLSN)
        }
        let s = try log.createStream("undo")
        let e = FaultTestKit.logError { try s.reserve(recordSizes: [100]) }
        #expect(e == nil, "reserve on a log whose tail-pinned stream can move: \(String(describing: e))")
        #expect(calls.snapshot == 1)
        #expect(log.info().freeContainers == 1)
        try log.close()
    }

    /// With nothing to make room (no growth, no handler) the reservation is still refused, with
    /// `logFull`, and nothing is counted.
    @Test func reserveWithNoWayToMakeRoomIsLogFull() throws {
        let dir = FaultTestKit.temporaryPath("space12-reserve-full")
        defer { FaultTestKit.remove(dir) }
        let log = try Self.nearlyFullLog(dir)
        let s = try log.createStream("undo")
        let e = FaultTestKit.logError { try s.reserve(recordSizes: [100]) }
        #expect(e?.code == .logFull)
        #expect(e?.message.contains("reserv") == true, "\(String(describing: e))")
        #expect(log.info().reservedBytes == 0)
        #expect(try s.info().reservedRecords == 0)
        #expect(!log.isFailed)
        try log.close()
    }
}

@Suite("Reservations at their edges: a log filled by them, a reopen")
struct ReservationEdgeTests {
    /// Reservations of mixed sizes (empty records, small ones, records larger than a block) taken until
    /// the log refuses one, then plain appends until the log is full: every reserved record still fits,
    /// also with a flush after each (every record sealed in a block of its own, the padding at its
    /// worst), across the containers' ends.
    @Test func reservationsFillingTheLogAllFit() throws {
        let dir = FaultTestKit.temporaryPath("space12-reserve-fill")
        defer { FaultTestKit.remove(dir) }
        let log = try LogStore.create(at: dir, options: uncompressedTiny(3))
        let s = try log.createStream("undo")
        let cycle = [10, 3000, 700, 5000, 0, 2047]
        var reserved: [Int] = []
        while true {
            let size = cycle[reserved.count % cycle.count]
            guard FaultTestKit.logError({ try s.reserve(recordSizes: [size]) }) == nil else { break }
            reserved.append(size)
        }
        #expect(reserved.count > 50)
        var plain = 0
        while FaultTestKit.logError({ try log.append([UInt8](repeating: 7, count: 1000)) }) == nil { plain += 1 }
        #expect(plain > 0)
        // Largest first: the most tail a record can leave behind at a container's end.
        for (k, size) in reserved.sorted(by: >).enumerated() {
            let e = FaultTestKit.logError {
                try s.append([UInt8](repeating: UInt8(k & 0xff), count: size), usingReservation: true)
                try log.flush()
            }
            #expect(e == nil, "reserved append #\(k) of \(size) bytes: \(String(describing: e))")
            if e != nil { break }
        }
        #expect(try s.info().reservedRecords == 0)
        #expect(log.info().reservedBytes == 0)
        try log.close()
    }

    /// Reservations are not persisted: a reopened log has none, and the space they held is free.
    @Test func reservationsDoNotOutliveTheOpen() throws {
        let dir = FaultTestKit.temporaryPath("space12-reserve-reopen")
        defer { FaultTestKit.remove(dir) }
        var log = try LogStore.create(at: dir, options: FaultTestKit.tinyOptions(containers: 2))
        let s = try log.createStream("undo")
        try s.reserve(recordSizes: [100, 200])
        try log.defaultStream.reserve(recordSizes: [300])
        #expect(log.info().reservedBytes > 0)
        try log.close()
        log = try LogStore.open(at: dir)
        #expect(log.info().reservedBytes == 0)
        #expect(try log.openStream("undo").info().reservedRecords == 0)
        expectLogError(.invalidArgument) { try log.openStream("undo").append([1], usingReservation: true) }
        try log.close()
    }
}

@Suite("A log the archive tail keeps full")
struct ArchiveTailFullTests {
    /// The archive tail behind the base pins the log: appends get `logFull` naming it once the base has
    /// moved (the handler moved it), and moving the tail lets the containers go and the appends on.
    @Test func archiveTailPinsUntilItMoves() throws {
        let dir = FaultTestKit.temporaryPath("space12-archive-full")
        defer { FaultTestKit.remove(dir) }
        let log = try LogStore.create(at: dir, options: uncompressedTiny(3))
        log.core.pinnersAheadDisabledForTesting = true  // the handler from the full log's append
        let first = try log.append([UInt8](repeating: 0, count: 100))
        try log.flush()
        try log.setArchiveTail(first)
        let d = log.defaultStream
        d.onTailPinned { _ in try? d.advanceBase(to: d.lastLSN) }
        var last = first
        var error: LogError?
        while error == nil {
            do { last = try log.append([UInt8](repeating: 5, count: 2000)) } catch let e as LogError { error = e }
        }
        #expect(error?.code == .logFull)
        #expect(error?.message.contains("archive tail") == true, "\(String(describing: error))")
        #expect(log.baseLSN == last, "the handler moved the base")
        #expect(!log.info().containers.filter { $0.state == .pendingArchive }.isEmpty)
        #expect(log.archiveExtents().first?.startOffset == first.blockOffset)
        try log.flush()
        try log.setArchiveTail(last)
        #expect(log.info().freeContainers > 0)
        try log.append([UInt8](repeating: 6, count: 2000))
        #expect(!log.isFailed)
        try log.close()
    }
}

@Suite("Auto-shrink after every change that frees containers")
struct AutoShrinkTriggerTests {
    enum Unpin: String, CaseIterable, Sendable { case archiveTailMoves, pinningStreamDeleted }

    /// Auto-shrink ran after a base moved (`advanceBase`, a restart area's new base) but not after the
    /// other changes that free containers: an archive tail moving past them, or the deletion of the
    /// stream that pinned them. The log kept every freed container, above the policy's percentage,
    /// until some base moved again.
    @Test(arguments: Unpin.allCases)
    func shrinksOnceFreed(_ how: Unpin) throws {
        let dir = FaultTestKit.temporaryPath("space12-shrink-\(how.rawValue)")
        defer { FaultTestKit.remove(dir) }
        let log = try LogStore.create(at: dir, options: uncompressedTiny(4))
        let lag = try log.createStream("lag")
        let first = try lag.append([UInt8](repeating: 0, count: 100))
        try log.flush()
        if how == .archiveTailMoves {
            try log.setArchiveTail(first)
            try lag.advanceBase(to: first)
        }
        var last = first
        while log.lastLSN.container < 3 { last = try log.append([UInt8](repeating: 5, count: 2000)) }
        try log.flush()
        try log.advanceBase(to: last)
        if how == .archiveTailMoves { try lag.advanceBase(to: last) }
        // Containers 1 and 2 are held (pending archive, or by the lagging stream's base): one free of four.
        #expect(log.info().containers.count == 4)
        #expect(log.info().freeContainers == 1)
        var p = LogPolicy()
        p.autoShrinkPercent = 50
        try log.setPolicy(p)  // one free of four is not above 50 %: nothing removed
        #expect(log.info().containers.count == 4)
        switch how {
        case .archiveTailMoves: try log.setArchiveTail(last)
        case .pinningStreamDeleted: try log.deleteStream("lag")
        }
        // Three free of four is above 50 %: shrunk to the minimum, two (one free of two is not above it).
        #expect(log.info().containers.count == 2, "\(log.info().containers.map { "\($0.physicalID) \($0.state)" })")
        try log.append([UInt8](repeating: 6, count: 2000))
        try log.close()
    }
}

@Suite("Auto-grow goes on while one growth step is not enough")
struct GrowthStepsTests {
    /// An append (or a reservation) that found the log full grew it once, on its first try only. With
    /// reservations outstanding, a large plain append may need more than one step (each added container
    /// also adds one reserved record of slack for its boundary): it got `logFull` after one step, with the
    /// policy allowing more.
    @Test func appendGrowsMoreThanOneStep() throws {
        let dir = FaultTestKit.temporaryPath("space12-growth-steps")
        defer { FaultTestKit.remove(dir) }
        let log = try LogStore.create(at: dir, options: uncompressedTiny(2))
        var p = LogPolicy()
        p.autoGrow = true
        p.growthIncrement = 1
        p.maxContainers = 8
        try log.setPolicy(p)
        let s = try log.createStream("undo")
        try s.reserve(recordSizes: [200_000])
        let record = [UInt8](repeating: 9, count: 300_000)
        try log.append(record)  // fits the first container
        #expect(log.info().containers.count == 2)
        // Moves to the next container: one step (three containers) leaves less than the reservations'
        // floor, two steps leave enough.
        let e = FaultTestKit.logError { try log.append(record) }
        #expect(e == nil, "\(String(describing: e))")
        #expect(log.info().containers.count == 4)
        try s.append([UInt8](repeating: 1, count: 200_000), usingReservation: true)
        try log.close()
    }
}
