// Space management at its edges: archive tails, policies, reservations, and close() racing container
// adds. Each test failed before its fix (docs/RELIABILITY.md, "Found by the fifth review").

import Foundation
import Testing
import TxLogTestSupport
@testable import LogStore

@Suite("Space management: archive tails, policies, reservations")
struct SpaceManagementTests {
    /// An archive tail above the durable LSN was accepted and written to the base file as given: after a
    /// crash that dropped those records it named a position the log reuses for other records.
    @Test("setArchiveTail refuses an LSN that is not durable yet")
    func archiveTailAboveDurable() throws {
        let dir = FaultTestKit.temporaryPath("space-archive-durable")
        defer { FaultTestKit.remove(dir) }
        let log = try LogStore.create(at: dir, options: FaultTestKit.tinyOptions())
        let s = try log.createStream("arch")
        let first = try log.append([1, 2, 3])
        let second = try s.append([4, 5, 6])
        #expect(log.durableLSN < first)
        expectLogError(.invalidArgument) { try log.setArchiveTail(first) }
        expectLogError(.invalidArgument) { try s.setArchiveTail(second) }
        #expect(log.info().archiveTail == .null)
        try log.flush()
        try log.setArchiveTail(first)
        try s.setArchiveTail(second)
        try log.close()
    }

    /// setPolicy saved the new policy, then added the containers its minimum needed: an add that failed
    /// threw with the new policy in force and in the base file.
    @Test("setPolicy whose required container add fails leaves the old policy in force")
    func setPolicyAddFails() throws {
        let dir = FaultTestKit.temporaryPath("space-policy-add")
        defer { FaultTestKit.remove(dir) }
        let io = FaultyFileIO()
        let log = try LogStore.create(at: dir, options: FaultTestKit.tinyOptions(containers: 2), io: io)
        let old = log.policy
        var p = old
        p.minContainers = 4
        p.maxContainers = 8
        io.inject(.open, pathContains: "container-")
        expectLogError(.io) { try log.setPolicy(p) }
        #expect(log.policy == old)
        #expect(!log.isFailed)
        #expect(log.info().containers.count == 2)
        try log.close()
        let again = try LogStore.open(at: dir)
        #expect(again.policy == old)
        try again.setPolicy(p)
        #expect(again.policy == p)
        #expect(again.info().containers.count == 4)
        try again.close()
    }

    /// A record appended `usingReservation` only had to fit the stream's reserved bytes, not any reserved
    /// record: three 100-byte records reserved let one 300-byte record through.
    @Test("an append usingReservation larger than any reserved record is refused")
    func reservedAppendLargerThanReserved() throws {
        let dir = FaultTestKit.temporaryPath("space-reserve-larger")
        defer { FaultTestKit.remove(dir) }
        let log = try LogStore.create(at: dir, options: FaultTestKit.tinyOptions())
        let s = try log.createStream("undo")
        try s.reserve(recordSizes: [100, 100, 100])
        expectLogError(.invalidArgument) { try s.append([UInt8](repeating: 1, count: 300), usingReservation: true) }
        #expect(try s.info().reservedRecords == 3)
        try s.append([UInt8](repeating: 1, count: 100), usingReservation: true)
        try s.append([UInt8](repeating: 1, count: 60), usingReservation: true)
        #expect(try s.info().reservedRecords == 1)
        try log.close()
    }

    /// The reservation floor keeps one largest reserved record of slack per container boundary. A reserved
    /// append of a record larger than every reserved one moved to the next container and left more of
    /// the current one unused than that: the stream's later reserved appends then got `logFull`.
    @Test("a record larger than every reserved one cannot take the room other reserved records were promised")
    func largerReservedAppendCannotTakeReservedRoom() throws {
        let dir = FaultTestKit.temporaryPath("space-reserve-guarantee")
        defer { FaultTestKit.remove(dir) }
        let log = try LogStore.create(
            at: dir, options: LogCreateOptions(containerSize: 512 * 1024, containerCount: 3, blockSize: 4096, codec: .none))
        let s = try log.createStream("undo")
        let small = 50_000
        let d = Int(Format.containerDataEnd(size: 512 * 1024)) - Format.containerDataStart
        let perRecord = log.core.reservationCost(small)
        let count = d / perRecord + 2
        try s.reserve(recordSizes: [Int](repeating: small, count: count))
        // Fill the log with plain appends until they are refused.
        var filled = 0
        while true {
            do { try log.append([UInt8](repeating: 7, count: 3000)) } catch let e as LogError where e.code == .logFull { break }
            filled += 1
        }
        #expect(filled > 0)
        // One big record "using the reservation" (it fits the reserved bytes, not any reserved record).
        var big = 0
        do {
            try s.append([UInt8](repeating: 9, count: 250_000), usingReservation: true)
            big = 1
        } catch let e as LogError where e.code == .invalidArgument {}
        #expect(big == 0, "a record larger than every reserved one was appended with the reservation")
        // Every reserved record the stream still has bytes for must still fit.
        var failures: [String] = []
        while let info = try? s.info(), info.reservedRecords > 0, info.reservedBytes >= perRecord {
            do { try s.append([UInt8](repeating: 3, count: small), usingReservation: true) } catch { failures.append("\(error)"); break }
        }
        #expect(failures.isEmpty, "a reserved append failed: \(failures)")
        try log.close()
    }

    /// An append checked its reservation, then waited for back-pressure (the lock released): a release
    /// meanwhile gave the reservation back, and the append consumed it anyway. The stream's reserved
    /// records and bytes went negative.
    @Test("a reserved append that waits for back-pressure rechecks its reservation")
    func reservedAppendWaitingForBackPressure() throws {
        let dir = FaultTestKit.temporaryPath("space-reserve-backpressure")
        defer { FaultTestKit.remove(dir) }
        let io = ParkingIO(parkAt: .containerSync)
        var open = LogOpenOptions()
        open.groupCommit.maxDirtyBytes = 0
        let log = try LogStore.create(at: dir, options: FaultTestKit.tinyOptions(), openOptions: open, io: io)
        let s = try log.createStream("undo")
        try s.reserve(recordSizes: [100])
        io.arm()
        let flusher = Thread { _ = try? log.flush(upTo: try log.append([1, 2, 3])) }
        flusher.start()
        io.entered.wait()  // a sealed block is held in the sync: every append now waits for back-pressure
        let result = LockedBox<String>("running")
        let appender = Thread {
            do { _ = try s.append([UInt8](repeating: 5, count: 100), usingReservation: true); result.withLock { $0 = "appended" } } catch {
                result.withLock { $0 = "threw \(error)" }
            }
        }
        appender.start()
        usleep(200_000)  // let the appender pass its checks and wait (if it has not, the test proves nothing)
        try s.release(recordSizes: [100])
        io.release.signal()
        while !appender.isFinished || !flusher.isFinished { usleep(1000) }
        let info = try s.info()
        #expect(info.reservedRecords == 0 && info.reservedBytes == 0, "\(info), appender \(result.snapshot)")
        #expect(result.snapshot.contains("invalid-argument"), "\(result.snapshot)")
        try log.close()
    }
}

@Suite("close() racing container adds and removals")
struct CloseRacingContainerChangesTests {
    /// close() returned while an addContainer was still creating its file. The log was opened again and
    /// a container added under the same (unpersisted) physical id; the first add then failed with
    /// `closed` and unlinked "its" file: the reopened log's new container, and the next open failed
    /// (`notFound`). Now close() waits for the add.
    @Test func addInFlightDuringCloseNeverDeletesAReopenedLogsContainer() throws {
        let dir = FaultTestKit.temporaryPath("close-race-add-reopen")
        defer { FaultTestKit.remove(dir) }
        let io = ParkingIO(parkAt: .directorySync)
        let log = try LogStore.create(at: dir, options: FaultTestKit.tinyOptions(), io: io)
        try log.flush(upTo: try log.append([1, 2, 3]))
        io.arm()
        let added = LockedBox<String>("running")
        let adder = Thread {
            do { let p = try log.addContainer(); added.withLock { $0 = "added \(p)" } } catch { added.withLock { $0 = "threw \(error)" } }
        }
        adder.start()
        io.entered.wait()  // the add has created its file and syncs the directory
        let closer = Thread { try? log.close() }
        closer.start()
        usleep(300_000)
        var reopened: LogStore?
        var second: UInt32?
        if closer.isFinished {
            // close() returned with the add still in flight: the log is free to be opened again.
            reopened = try LogStore.open(at: dir)
            second = try reopened?.addContainer()
        }
        io.release.signal()
        while !adder.isFinished || !closer.isFinished { usleep(1000) }
        if reopened == nil {
            reopened = try LogStore.open(at: dir)
            second = try reopened?.addContainer()
        }
        let again = try #require(reopened)
        for c in again.info().containers {
            #expect(FileManager.default.fileExists(atPath: c.path), "container \(c.physicalID) (\(c.path)) is gone; first add: \(added.snapshot), second: \(String(describing: second))")
        }
        try again.close()
        let third = try LogStore.open(at: dir)
        try third.close()
        #expect(io.open.isEmpty, "descriptors leaked: \(io.open)")
    }
}

@Suite("A log whose free space is reserved still grows and asks the tail-pinned streams")
struct ReservedLogFullTests {
    // With any reservation outstanding (a KV store holds one per prepared transaction), a plain append
    // that reached the reservation floor threw `logFull` at once: the log never grew within its policy
    // and never called the tail-pinned handlers (the TM's checkpoint) at the end of its last container.

    @Test func autoGrowsWithReservationsOutstanding() throws {
        let dir = FaultTestKit.temporaryPath("space-reserved-grow")
        defer { FaultTestKit.remove(dir) }
        let log = try LogStore.create(at: dir, options: LogCreateOptions(containerSize: 512 * 1024, containerCount: 2, blockSize: 4096, codec: .none))
        var p = LogPolicy()
        p.autoGrow = true
        p.growthIncrement = 1
        p.maxContainers = 4
        try log.setPolicy(p)
        let s = try log.createStream("undo")
        try s.reserve(recordSizes: [100])
        var error: LogError?
        while error == nil {
            do { try log.append([UInt8](repeating: 7, count: 3000)) } catch let e as LogError { error = e }
        }
        #expect(error?.code == .logFull)
        #expect(log.info().containers.count == 4, "auto-grow stopped at \(log.info().containers.count) containers: \(String(describing: error))")
        try s.append([UInt8](repeating: 1, count: 100), usingReservation: true)
        try log.close()
    }

    @Test func asksTailPinnedStreamsWithReservationsOutstanding() throws {
        let dir = FaultTestKit.temporaryPath("space-reserved-pinned")
        defer { FaultTestKit.remove(dir) }
        let log = try LogStore.create(at: dir, options: LogCreateOptions(containerSize: 512 * 1024, containerCount: 3, blockSize: 4096, codec: .none))
        log.core.pinnersAheadDisabledForTesting = true  // the handlers from the log-full path
        let s = try log.createStream("undo")
        try s.reserve(recordSizes: [100])
        let calls = LockedBox(0)
        let d = log.defaultStream
        d.onTailPinned { _ in
            calls.withLock { $0 += 1 }
            try? d.advanceBase(to: d.lastLSN)
        }
        for _ in 0..<1000 { try log.append([UInt8](repeating: 7, count: 3000)) }  // about six containers' worth
        #expect(calls.snapshot > 0)
        try s.append([UInt8](repeating: 1, count: 100), usingReservation: true)
        try log.close()
    }
}
