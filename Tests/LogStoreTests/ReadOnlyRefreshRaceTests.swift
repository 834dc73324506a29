// `LogStore.refresh()` racing its writer and its own readers: a writer that moves on between the refresh's
// read of the base file and its scan of the blocks, and a read in progress while a refresh puts in force a
// table where the writer recycled the container being read.

import Foundation
import Testing
import TxLogTestSupport
@testable import LogStore

@Suite("Read-only refresh racing the writer and the reader's own reads")
struct ReadOnlyRefreshRaceTests {
    /// A cursor's block read in progress (its descriptor taken, the bytes not read yet) when the writer
    /// recycles that container and a refresh puts the new table in force: the records are gone, which is
    /// `notFound`, not damage, and never the new cycle's bytes.
    @Test("a read in progress across a refresh that recycled its container is notFound, not corrupt")
    func readAcrossRecyclingRefresh() async throws {
        let dir = LogTestKit.temporaryPath("refresh-race-read")
        defer { LogTestKit.remove(dir) }
        let writer = try LogStore.create(at: dir, options: LogTestKit.options(containerSize: 512 * 1024, containerCount: 2, blockSize: 4096, codec: .none))
        var n = 0
        func write(_ count: Int) throws {
            for _ in 0..<count {
                _ = try writer.append(LogTestKit.randomPayload(n, length: 1000))
                n += 1
            }
            try writer.flush()
        }
        try write(100)
        let io = ParkingIO(parkAt: .containerRead)
        let reader = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true), io: io)
        // The cursor has read the first block; it reads the second from the container (parked there).
        var parkedCursor = try reader.records()
        let first = try #require(try parkedCursor.next())
        io.arm()
        let reading = Task(executorPreference: OwnThreadExecutor()) { [parkedCursor] () -> Result<LogRecord?, any Error> in
            var c = parkedCursor
            return Result { while let r = try c.next() { if r.lsn.blockLSN != first.lsn.blockLSN { return r } }; return nil }
        }
        await onOwnThread { io.entered.wait() }
        // Logical container 1's file becomes logical 3, written over.
        while writer.lastLSN.container < 2 { try write(20) }
        try writer.advanceBase(to: writer.lastLSN)
        while writer.lastLSN.container < 3 { try write(20) }
        try write(60)
        #expect(writer.info().containers.contains { $0.physicalID == 0 && $0.logicalID == 3 })
        #expect(try reader.refresh())
        io.release.signal()
        switch await reading.value {
        case .success(let r): Issue.record("read \(String(describing: r.map(\.lsn))) from a recycled container")
        case .failure(let e as LogError): #expect(e.code == .notFound, "\(e)")
        case .failure(let e): Issue.record("\(e)")
        }
        try reader.close()
        try writer.close()
    }

    /// A stream the writer creates and writes to after a refresh read the base file but before it scanned
    /// the blocks: that refresh finds the records but not the stream. The next one learns of the stream
    /// from the base file; the records must count for it as after a reopen.
    @Test("a stream created and written while a refresh scanned: the next refresh knows its records, as a reopen does")
    func streamCreatedDuringRefresh() async throws {
        let dir = LogTestKit.temporaryPath("refresh-race-stream")
        defer { LogTestKit.remove(dir) }
        let writer = try LogStore.create(at: dir, options: LogTestKit.options(containerSize: 1 << 20, containerCount: 2, blockSize: 4096, codec: .none))
        _ = try writer.append(LogTestKit.randomPayload(0, length: 100))
        try await writer.flush()
        let io = ParkingIO(parkAt: .containerRead)
        let reader = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true), io: io)
        io.arm()
        let refreshing = Task(executorPreference: OwnThreadExecutor()) { () -> Result<Bool, any Error> in Result { try reader.refresh() } }
        await onOwnThread { io.entered.wait() }
        let s = try writer.createStream("s")
        var lsns: [LSN] = []
        for i in 0..<3 { lsns.append(try s.append(LogTestKit.randomPayload(i, length: 100))) }
        try await writer.flush()
        io.release.signal()
        _ = try await refreshing.value.get()
        #expect(try reader.refresh())
        let fresh = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true))
        let viaReopen = fresh.streams().first { $0.name == "s" }
        let viaRefresh = reader.streams().first { $0.name == "s" }
        #expect(viaReopen?.lastLSN == lsns.last)
        #expect(viaRefresh?.lastLSN == viaReopen?.lastLSN)
        #expect(viaRefresh?.baseLSN == viaReopen?.baseLSN)
        var cursor = try reader.openStream("s").records()
        var seen: [LSN] = []
        while let r = try cursor.next() { seen.append(r.lsn) }
        #expect(seen == lsns)
        try fresh.close()
        try reader.close()
        try writer.close()
    }

    /// The log's directory removed, or replaced by another log created at its path, under a read-only log:
    /// its open descriptors still read the old files, so a refresh that read the base file through the
    /// descriptor of the open found nothing moved, for ever (`txlog dump --follow` then followed a log
    /// that no longer existed, where it used to stop when its reopen failed).
    @Test("a log directory removed or replaced under a read-only log: refresh() says so, never 'nothing moved'")
    func directoryRemovedOrReplaced() throws {
        let dir = LogTestKit.temporaryPath("refresh-race-removed")
        defer { LogTestKit.remove(dir) }
        let options = LogTestKit.options(containerSize: 1 << 20, containerCount: 2, blockSize: 4096, codec: .none)
        let writer = try LogStore.create(at: dir, options: options)
        let lsn = try writer.append(LogTestKit.randomPayload(0, length: 100))
        try writer.close()
        let reader = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true))
        LogTestKit.remove(dir)
        expectLogError(.notFound) { _ = try reader.refresh() }
        #expect(reader.lastLSN == lsn)
        let other = try LogStore.create(at: dir, options: options)
        for i in 0..<5 { _ = try other.append(LogTestKit.randomPayload(i + 1, length: 100)) }
        try other.close()
        expectLogError(.invalidState) { _ = try reader.refresh() }
        #expect(reader.lastLSN == lsn)
        #expect(try reader.read(lsn).data == LogTestKit.randomPayload(0, length: 100))
        try reader.close()
    }

    /// A read-only open reads the base file, then opens the containers it names; a live writer that
    /// removes one of them in between (its base file no longer names it, then the file is deleted) made
    /// the open fail with `notFound`, where a read-only open works while another process writes the log
    /// (a refresh starts over in that case).
    @Test("a read-only open racing the removal of a container it is about to open starts over, never notFound")
    func openAcrossContainerRemoval() async throws {
        let dir = LogTestKit.temporaryPath("ro-open-removal")
        defer { LogTestKit.remove(dir) }
        let writer = try LogStore.create(at: dir, options: LogTestKit.options(containerSize: 512 * 1024, containerCount: 3, blockSize: 4096, codec: .none))
        let lsn = try writer.append(LogTestKit.randomPayload(0, length: 100))
        try await writer.flush()
        let free = try #require(writer.info().containers.filter { $0.logicalID == 0 }.map(\.physicalID).max())
        let io = ParkingIO(parkAt: .containerOpen)
        io.arm()
        let opening = Task(executorPreference: OwnThreadExecutor()) { () -> Result<LogStore, any Error> in
            Result { try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true), io: io) }
        }
        await onOwnThread { io.entered.wait() }
        try await onOwnThread { try writer.removeContainer(free) }
        io.release.signal()
        switch await opening.value {
        case .success(let reader):
            #expect(try reader.read(lsn).data == LogTestKit.randomPayload(0, length: 100))
            #expect(!reader.info().containers.contains { $0.physicalID == free })
            try reader.close()
        case .failure(let e): Issue.record("\(e)")
        }
        try writer.close()
    }
}

