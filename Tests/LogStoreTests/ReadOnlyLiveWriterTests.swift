// A read-only log beside a live writer: what it may claim durable (it cannot see the writer's fdatasync),
// what a catch-up may call its end (it cannot tell a block being written from a torn one), and a log
// replaced at its path by a copy of itself (the same log id, other files).

import Foundation
import Synchronization
import Testing
import TxLogTestSupport
@testable import LogStore

@Suite("Read-only logs beside a live writer")
struct ReadOnlyLiveWriterTests {
    static func payload(_ i: Int) -> [UInt8] { LogTestKit.randomPayload(i, length: 300) }
    static let options = LogTestKit.options(containerSize: 1 << 20, containerCount: 2, blockSize: 4096, codec: .none)

    /// The writer's blocks are written but its fdatasync has not returned: a read-only open or refresh that
    /// reads them must not call them durable (it said `durableLSN == lastLSN`, the last block it read).
    @Test("a read-only log's durableLSN is what the base file and the blocks' hints prove, never what the writer has not synced")
    func durableLSNIsOnlyWhatIsProven() async throws {
        let dir = LogTestKit.temporaryPath("ro-durable")
        defer { LogTestKit.remove(dir) }
        let seen = try await onOwnThread { () throws -> (writer: LSN, refreshed: LSN, opened: LSN, last: LSN, flushed: LSN, after: LSN) in
            let io = ParkingIO(parkAt: .containerSync)
            let writer = try LogStore.create(at: dir, options: Self.options, io: io)
            var lsns: [LSN] = []
            for i in 0..<10 { lsns.append(try writer.append(Self.payload(i))) }
            try writer.flush()
            let reader = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true))
            for i in 10..<20 { lsns.append(try writer.append(Self.payload(i))) }
            io.arm()
            let flusher = Thread { try? writer.flush() }
            flusher.start()
            io.entered.wait()  // the blocks are written, their fdatasync is in progress
            let writerDurable = writer.durableLSN
            _ = try reader.refresh()
            let refreshed = reader.durableLSN
            let last = reader.lastLSN
            let fresh = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true))
            let opened = fresh.durableLSN
            try fresh.close()
            io.release.signal()
            while !flusher.isFinished { usleep(1000) }
            // Durable now, and the base file says so once the writer closes cleanly.
            try writer.close()
            _ = try reader.refresh()
            let after = reader.durableLSN
            try reader.close()
            return (writerDurable, refreshed, opened, last, lsns[19], after)
        }
        #expect(seen.last == seen.flushed, "the reader reads the written blocks")
        #expect(seen.refreshed <= seen.writer, "refresh: durableLSN \(seen.refreshed) above the writer's \(seen.writer)")
        #expect(seen.opened <= seen.writer, "open: durableLSN \(seen.opened) above the writer's \(seen.writer)")
        #expect(seen.after == seen.flushed, "after a clean close everything read is durable")
    }

    /// `flush` on a read-only log cannot make anything durable: it is `readOnly` beyond what the log proves
    /// durable (and never waits for a writer thread the log does not have).
    @Test("flush and whenDurable on a read-only log beyond its durableLSN: readOnly, never a wait")
    func flushOnReadOnly() async throws {
        let dir = LogTestKit.temporaryPath("ro-flush")
        defer { LogTestKit.remove(dir) }
        let writer = try LogStore.create(at: dir, options: Self.options)
        var lsns: [LSN] = []
        for i in 0..<3 { lsns.append(try writer.append(Self.payload(i))) }
        try await writer.flush()
        let last = lsns[2]
        // The writer's first flush: its block's hint is null and the base file's watermark too.
        let reader = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true))
        #expect(reader.lastLSN == lsns[2])
        #expect(reader.durableLSN < lsns[0])
        // Each in the background with a deadline: a flush that waited for a writer thread would never return.
        await BackgroundCall { try await reader.flush(upTo: last) }.expectLogError(.readOnly, "flush(upTo:)")
        await BackgroundCall { try await reader.flush() }.expectLogError(.readOnly, "flush()")
        await BackgroundCall { try await onOwnThread { try reader.flush(upTo: last) } }.expectLogError(.readOnly, "synchronous flush")
        let outcome = await BackgroundCall { () async -> LogError? in
            await withCheckedContinuation { (c: CheckedContinuation<LogError?, Never>) in reader.whenDurable(last) { c.resume(returning: $0) } }
        }.expectSuccess("whenDurable")
        #expect(outcome??.code == .readOnly)
        try await reader.flush(upTo: .null)
        try reader.close()
        try writer.close()
        let clean = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true))
        #expect(clean.durableLSN == lsns[2])
        try await clean.flush()
        try clean.close()
    }

    /// `strict` recovery on a read-only log: a block its writer is still writing ends a catch-up for now,
    /// as it does in every mode (it threw `corrupt`, "torn tail … (strict recovery)").
    @Test("strict recovery: a block still being written ends a refresh for now, no corrupt")
    func strictRefreshMidWrite() throws {
        let dir = LogTestKit.temporaryPath("ro-strict")
        defer { LogTestKit.remove(dir) }
        let writer = try LogStore.create(at: dir, options: Self.options)
        for i in 0..<5 { _ = try writer.append(Self.payload(i)) }
        try writer.flush()
        let io = TearingIO(path: dir + "/" + ContainerFiles.name(physicalID: 0))
        let reader = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true, recovery: .strict), io: io)
        let before = reader.lastLSN
        let next = try writer.append(LogTestKit.randomPayload(99, length: 3000))
        try writer.flush()
        io.tearing.withLock { $0 = next.blockOffset }
        #expect(try reader.refresh() == false)
        #expect(reader.lastLSN == before)
        io.tearing.withLock { $0 = nil }
        #expect(try reader.refresh())
        #expect(reader.lastLSN == next)
        try reader.close()
        try writer.close()
    }

    /// The log directory copied, the writer going on in the copy, and the copy moved to the log's path: the
    /// base file there names the same log, but the reader's open containers are the old files, which never
    /// move again. The refresh said nothing moved (or moved with no new records) for ever.
    @Test("a log replaced at its path by a copy of itself: refresh() is invalidState, never the old files read as current")
    func replacedByACopyOfItself() throws {
        let dir = LogTestKit.temporaryPath("ro-copy")
        let copy = dir + "-copy"
        let old = dir + "-old"
        defer { for d in [dir, copy, old] { LogTestKit.remove(d) } }
        let writer = try LogStore.create(at: dir, options: Self.options)
        var lsns: [LSN] = []
        for i in 0..<5 { lsns.append(try writer.append(Self.payload(i))) }
        try writer.close()
        let reader = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true))
        try FileManager.default.copyItem(atPath: dir, toPath: copy)
        let other = try LogStore.open(at: copy)
        for i in 5..<10 { lsns.append(try other.append(Self.payload(i))) }
        try other.flush()
        try FileManager.default.moveItem(atPath: dir, toPath: old)
        try FileManager.default.moveItem(atPath: copy, toPath: dir)
        expectLogError(.invalidState) { _ = try reader.refresh() }
        #expect(reader.lastLSN == lsns[4], "a failed refresh changes nothing")
        try other.close()
        expectLogError(.invalidState) { _ = try reader.refresh() }
        try reader.close()
        let reopened = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true))
        #expect(reopened.lastLSN == lsns[9])
        try reopened.close()
    }

    /// The writer updates the base file's other slot while a `strict` read-only open reads it: the slot is
    /// torn for a moment (its checksum fails), which strict recovery called a base-file anomaly (`corrupt`),
    /// where a block caught mid-write is read again.
    @Test("strict read-only open: a base slot caught mid-write is read again, not a base file anomaly")
    func strictOpenBaseSlotMidWrite() throws {
        let dir = LogTestKit.temporaryPath("ro-strict-slot")
        defer { LogTestKit.remove(dir) }
        let writer = try LogStore.create(at: dir, options: Self.options)
        _ = try writer.append(Self.payload(0))
        try writer.flush()
        let io = TornSlotIO(path: dir + "/" + Format.baseFileName, reads: 1)
        let reader = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true, recovery: .strict), io: io)
        #expect(reader.lastLSN == writer.lastLSN)
        #expect(io.tornReads.withLock { $0 } == 1)
        try reader.close()
        // Damage that stays is still an anomaly.
        let damaged = TornSlotIO(path: dir + "/" + Format.baseFileName, reads: .max)
        expectLogError(.corrupt) { _ = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true, recovery: .strict), io: damaged) }
        try writer.close()
    }
}

/// The first `reads` reads of the base file see the slot the writer writes next (the older one) torn: a
/// few of its bytes changed, as a read racing the writer's `pwritev` of that slot would.
final class TornSlotIO: ForwardingFileIO, @unchecked Sendable {
    let base: any FileIO = PosixFileIO()
    let path: String
    private let watched: DescriptorsOfAPath
    let tornReads = Mutex(0)
    let reads: Int

    init(path: String, reads: Int) {
        self.path = path
        watched = DescriptorsOfAPath(path)
        self.reads = reads
    }

    func open(_ path: String, mode: FileOpenMode) throws -> Int32 {
        let fd = try base.open(path, mode: mode)
        watched.opened(path, fd)
        return fd
    }

    func close(_ fd: Int32) {
        watched.closed(fd)
        base.close(fd)
    }

    func pread(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws -> Int {
        let n = try base.pread(fd, into: buffer, at: offset)
        guard offset == 0, n >= 2 * Format.baseSlotSize, watched.contains(fd) else { return n }
        guard tornReads.withLock({ count in
            guard count < reads else { return false }
            count += 1
            return true
        }) else { return n }
        // The older slot (lower generation) is the one the writer's next update goes to.
        let generation = { (slot: Int) -> UInt64 in buffer.loadUnaligned(fromByteOffset: slot * Format.baseSlotSize + 16, as: UInt64.self) }
        let older = generation(0) < generation(1) ? 0 : 1
        for i in 0..<8 { buffer[older * Format.baseSlotSize + 100 + i] ^= 0xFF }
        return n
    }
}
