// Space management and the stream table, found by the ninth review (docs/RELIABILITY.md, "Found by the
// ninth review"). Each test failed before its fix.

import Foundation
import Testing
import TxLogTestSupport
@testable import LogStore

@Suite("A base file's deleted stream entries are no streams")
struct DeletedStreamEntryTests {
    /// A log with stream "a" (one durable record), closed, whose base file then gains an entry of an
    /// older stream "a" flagged deleted (docs/format/base-file.md allows the name twice then).
    static func logWithADeletedEntry(_ dir: String) throws -> (a: UInt16, first: LSN) {
        let log = try LogStore.create(at: dir, options: LogCreateOptions(containerSize: 512 * 1024, containerCount: 3, blockSize: 4096, codec: .none))
        let a = try log.createStream("a")
        let first = try a.append([1, 2, 3])
        try log.close()
        try LogicalIDLimitTests.rewriteBase(dir) { r in
            r.streams.append(StreamEntry(id: r.nextStreamID, flags: StreamEntry.deletedFlag, name: "a", base: first, last: first))
            r.nextStreamID += 1
        }
        return (a.id, first)
    }

    /// Open loaded a deleted entry as a live stream: it was listed, its name could open it instead of the
    /// live stream, it pinned the log with its base, and the next base-file update wrote the name twice
    /// without the flag, so every later open failed with `corrupt` (both slots).
    @Test func openIgnoresADeletedEntry() throws {
        let dir = FaultTestKit.temporaryPath("ninth-deleted-entry")
        defer { FaultTestKit.remove(dir) }
        let (a, _) = try Self.logWithADeletedEntry(dir)
        let log = try LogStore.open(at: dir)
        #expect(log.streams().map(\.name) == ["", "a"])
        #expect(try log.openStream("a").id == a)
        // Past several container switches (base-file updates) and recycling: nothing pins the log.
        for i in 1...600 {
            try log.append([UInt8](repeating: 1, count: 3000))
            if i % 50 == 0 {
                try log.defaultStream.advanceBase(to: log.lastLSN)
                try log.openStream("a").advanceBase(to: log.lastLSN)
            }
        }
        let next = log.core.lock.withLock { log.core.state.nextStreamID }
        try log.close()
        let again = try LogStore.open(at: dir)
        #expect(again.streams().map(\.name) == ["", "a"])
        #expect(try again.createStream("b").id == next, "the deleted stream's id is not reused")
        try again.close()
    }

    /// A read-only log's refresh put the deleted entry in force the same way.
    @Test func refreshIgnoresADeletedEntry() throws {
        let dir = FaultTestKit.temporaryPath("ninth-deleted-entry-refresh")
        defer { FaultTestKit.remove(dir) }
        let log = try LogStore.create(at: dir, options: LogCreateOptions(containerSize: 512 * 1024, containerCount: 3, blockSize: 4096, codec: .none))
        let a = try log.createStream("a")
        let first = try a.append([1, 2, 3])
        try log.close()
        let reader = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true))
        try LogicalIDLimitTests.rewriteBase(dir) { r in
            r.streams.append(StreamEntry(id: r.nextStreamID, flags: StreamEntry.deletedFlag, name: "a", base: first, last: first))
            r.nextStreamID += 1
        }
        #expect(try reader.refresh())
        #expect(reader.streams().map(\.name) == ["", "a"])
        #expect(try reader.openStream("a").id == a.id)
        try reader.close()
    }
}

@Suite("A stream's last LSN survives container switches the appends ran ahead of")
struct StreamLastAcrossSwitchesTests {
    /// The base file records a stream's last record below the scan start (recovery scans from there). It
    /// knew only the stream's last record and its last one in the container before: with appends two
    /// containers ahead of the writer's container switch, it recorded the stream's old value (here null),
    /// and after a crash there (the blocks after the switch never written) the stream's `lastLSN` was null,
    /// although its acknowledged records read back. (A TM takes a stream with a null `lastLSN` for an empty
    /// one, and a KV checkpoint covers through it.)
    @Test func lastLSNAfterACrashBehindAppendsTwoContainersAhead() throws {
        let dir = FaultTestKit.temporaryPath("ninth-stream-last")
        defer { FaultTestKit.remove(dir) }
        let io = FaultyFileIO()
        let log = try LogStore.create(
            at: dir, options: LogCreateOptions(containerSize: 512 * 1024, containerCount: 5, blockSize: 4096, codec: .none), io: io)
        let s = try log.createStream("s")
        let t = try log.createStream("t")
        var acknowledged = LSN.null
        for _ in 0..<3 { acknowledged = try s.append([UInt8](repeating: 5, count: 100)) }
        try log.flush()
        // Nothing flushed from here: the writer's next batch records the switches to containers 2 and 3.
        let filler = [UInt8](repeating: 1, count: 3000)
        while log.lastLSN.container < 2 { try t.append(filler) }
        try s.append([1])
        while log.lastLSN.container < 3 { try t.append(filler) }
        try s.append([2])
        // The crash: container 2's blocks are never written (after the base file recorded the switch to it).
        let physical = try #require(log.info().containers.first { $0.logicalID == 2 }).physicalID
        io.inject(.pwritev, pathContains: ContainerFiles.name(physicalID: physical))
        #expect(throws: LogError.self) { try log.flush() }
        try? log.close()

        let again = try LogStore.open(at: dir)
        let reopened = try again.openStream("s")
        #expect(reopened.lastLSN == acknowledged)
        #expect(try reopened.read(acknowledged).data == [UInt8](repeating: 5, count: 100))
        try again.close()
    }
}

@Suite("A base set while recycling frees its container is refused")
struct BaseRacingRecyclingTests {
    /// A closed log of three 512 KiB containers: stream "a" fills container 1 and starts container 2,
    /// stream "e" has no records (so its base pins nothing). Reopened through `io`, nothing read yet.
    static func reopened(_ dir: String, io: any FileIO) throws -> (LogStore, a: LogStream, e: LogStream) {
        let log = try LogStore.create(at: dir, options: LogCreateOptions(containerSize: 512 * 1024, containerCount: 3, blockSize: 4096, codec: .none))
        let a = try log.createStream("a")
        _ = try log.createStream("e")
        while log.lastLSN.container < 2 { try a.append([UInt8](repeating: 1, count: 3000)) }
        try a.append([2])
        try log.close()
        let again = try LogStore.open(at: dir, options: LogOpenOptions(), io: io)
        return (again, try again.openStream("a"), try again.openStream("e"))
    }

    static let first = LSN(uncheckedContainer: 1, blockOffset: UInt64(Format.containerDataStart), slot: 0)

    /// What a racing test saw: whether the parked call parked, whether container 1 is gone, the racing
    /// call's error (nil: it succeeded), and the error of reading the log from its base (then after a reopen).
    struct Outcome: Sendable {
        var parked = false
        var recycled = false
        var raced: LogError?
        var readError: String?
        var readErrorAfterReopen: String?
        var archiveTail = LSN.null
        var archiveTailAfterReopen = LSN.null
    }

    /// Runs `call` on a thread of its own until it returns, with a bound.
    static func run(_ call: @escaping @Sendable () throws -> Void) -> LogError? {
        let result = LockedBox<Result<Void, LogError>?>(nil)
        Thread {
            do { try call(); result.withLock { $0 = .success(()) } } catch let e as LogError {
                result.withLock { $0 = .failure(e) }
            } catch { result.withLock { $0 = .failure(LogError(.io, "\(error)")) } }
        }.start()
        for _ in 0..<60_000 where result.snapshot == nil { usleep(1000) }
        if case .failure(let e) = result.snapshot { return e }
        return nil
    }

    /// Reads the whole log from its base, closes it, and again after a reopen.
    static func readFromTheBase(_ log: LogStore, _ dir: String, into o: inout Outcome) throws {
        do {
            var c = try log.records()
            while try c.next() != nil {}
        } catch { o.readError = "\(error)" }
        o.archiveTail = log.info().archiveTail
        try log.close()
        let again = try LogStore.open(at: dir)
        do {
            var c = try again.records()
            while try c.next() != nil {}
        } catch { o.readErrorAfterReopen = "\(error)" }
        o.archiveTailAfterReopen = again.info().archiveTail
        try again.close()
    }

    /// `advanceBase` of a stream with no base checked the oldest container before it looked the record up:
    /// recycling that freed the container meanwhile (another stream's base moving on) left the stream's
    /// base, and so the log's, below the oldest container, and reading the log from its base threw
    /// notFound, also after reopen.
    @Test func recycledWhileTheRecordIsLookedUp() async throws {
        let o: Outcome = try await onOwnThread {
            let dir = FaultTestKit.temporaryPath("ninth-base-race-read")
            defer { FaultTestKit.remove(dir) }
            let io = ParkingIO(parkAt: .containerRead)
            let (log, a, e) = try Self.reopened(dir, io: io)
            var o = Outcome()
            io.arm()
            let racing = LockedBox<LogError??>(nil)
            Thread {
                let r = Self.run { try e.advanceBase(to: Self.first) }
                racing.withLock { $0 = .some(r) }
            }.start()
            o.parked = io.entered.wait(timeout: .now() + 60) == .success
            try a.advanceBase(to: a.lastLSN)  // container 1 is recycled
            o.recycled = !log.info().containers.contains { $0.logicalID == 1 }
            io.release.signal()
            for _ in 0..<60_000 where racing.snapshot == nil { usleep(1000) }
            o.raced = racing.snapshot ?? nil
            try Self.readFromTheBase(log, dir, into: &o)
            return o
        }
        #expect(o.parked && o.recycled)
        #expect(o.raced?.code == .invalidArgument, "the base was set in a recycled container")
        #expect(o.readError == nil)
        #expect(o.readErrorAfterReopen == nil)
    }

    /// The same with the recycling decided by a base-file update already under way (parked in its write)
    /// when the base is set: a check under the log's lock alone would still pass then.
    @Test func recycledByAnUpdateUnderWay() async throws {
        let o: Outcome = try await onOwnThread {
            let dir = FaultTestKit.temporaryPath("ninth-base-race-update")
            defer { FaultTestKit.remove(dir) }
            let io = ParkingIO(parkAt: .baseWrite)
            let (log, a, e) = try Self.reopened(dir, io: io)
            var o = Outcome()
            io.arm()
            let recycler = LockedBox<LogError??>(nil)
            Thread {
                let r = Self.run { try a.advanceBase(to: a.lastLSN) }
                recycler.withLock { $0 = .some(r) }
            }.start()
            o.parked = io.entered.wait(timeout: .now() + 60) == .success
            let racing = LockedBox<LogError??>(nil)
            Thread {
                let r = Self.run { try e.advanceBase(to: Self.first) }
                racing.withLock { $0 = .some(r) }
            }.start()
            io.release.signal()
            for _ in 0..<60_000 where recycler.snapshot == nil || racing.snapshot == nil { usleep(1000) }
            o.recycled = !log.info().containers.contains { $0.logicalID == 1 }
            o.raced = racing.snapshot ?? nil
            try Self.readFromTheBase(log, dir, into: &o)
            return o
        }
        #expect(o.parked && o.recycled)
        #expect(o.raced != nil, "the base was set in a recycled container")
        #expect(o.readError == nil)
        #expect(o.readErrorAfterReopen == nil)
    }
}

@Suite("An archive tail set while recycling frees its container is refused")
struct ArchiveTailRacingRecyclingTests {
    /// `setArchiveTail` checked the active region again under the log's lock only: a base-file update
    /// under way (here parked in its write) that had decided, without the tail, to free the tail's
    /// container freed it after the tail was set. The tail then named records already gone, and
    /// `archiveExtents` gave a backup tool nothing to copy for them.
    @Test func recycledByAnUpdateUnderWay() async throws {
        typealias B = BaseRacingRecyclingTests
        let o: B.Outcome = try await onOwnThread {
            let dir = FaultTestKit.temporaryPath("ninth-archive-race")
            defer { FaultTestKit.remove(dir) }
            let io = ParkingIO(parkAt: .baseWrite)
            let (log, a, _) = try B.reopened(dir, io: io)
            var o = B.Outcome()
            io.arm()
            let recycler = LockedBox<LogError??>(nil)
            Thread {
                let r = B.run { try a.advanceBase(to: a.lastLSN) }
                recycler.withLock { $0 = .some(r) }
            }.start()  // frees container 1
            o.parked = io.entered.wait(timeout: .now() + 60) == .success
            let racing = LockedBox<LogError??>(nil)
            Thread {
                let r = B.run { try log.setArchiveTail(B.first) }
                racing.withLock { $0 = .some(r) }
            }.start()
            // Before the fix the tail is set at once (then the call waits for the update); after it, the
            // call waits for the update first. Either way the update is let go within a second.
            for _ in 0..<1000 where log.core.lock.withLock({ log.core.state.archiveTail }) != B.first { usleep(1000) }
            io.release.signal()
            for _ in 0..<60_000 where recycler.snapshot == nil || racing.snapshot == nil { usleep(1000) }
            o.recycled = !log.info().containers.contains { $0.logicalID == 1 }
            o.raced = racing.snapshot ?? nil
            try B.readFromTheBase(log, dir, into: &o)
            return o
        }
        #expect(o.parked && o.recycled)
        if let e = o.raced { #expect(e.code == .invalidArgument) }
        #expect(o.archiveTail == .null, "the tail \(o.archiveTail) names a container already recycled")
        #expect(o.archiveTailAfterReopen == .null)
    }
}
