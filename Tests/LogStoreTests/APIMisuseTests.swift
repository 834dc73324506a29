// The public API under hostile or unlucky arguments and races: each test is a bug a review found.

import Foundation
import Testing
@testable import LogStore

@Suite struct APIMisuseTests {
    /// A container prefix starting with `txlog.base` passed `LogPolicy.validate`, but the base file's
    /// decoder refuses such container names: the first container added under it left a base file with no
    /// readable copy, and the log never opened again. Now setPolicy refuses the prefix, and an update
    /// naming such a container is refused before it is written.
    @Test func aContainerPrefixLikeTheBaseFileIsRefused() throws {
        let dir = StreamTestDirectory()
        let log = try LogStore.create(at: dir.path, options: streamTestOptions())
        var p = LogPolicy()
        p.containerPrefix = "txlog.base"
        expectLogError(.invalidArgument) { try log.setPolicy(p) }
        p.containerPrefix = "txlog.base.tmp-"
        expectLogError(.invalidArgument) { try log.setPolicy(p) }
        #expect(log.policy == .default)
        p.containerPrefix = "txlog.bas"  // only names that start with the base file's are reserved
        try log.setPolicy(p)
        _ = try log.addContainer()
        try log.flush(upTo: try log.append([1, 2, 3]))
        try log.close()
        let reopened = try LogStore.open(at: dir.path)
        #expect(reopened.info().containers.count == 5)
        try reopened.close()

        var record = BaseRecordTestSample.record()
        record.containerNames = [1: "txlog.base000001"]
        #expect(throws: LogError.self) { try record.validate() }
    }

    /// `stream(_:)` (open or create) from two threads at once: the second found the name taken by the
    /// first's creation in progress, could not open it yet (not durable), and threw `invalidArgument`
    /// ("already exists"). Now it waits for that creation and opens the stream.
    @Test func concurrentOpenOrCreateGetTheSameStream() throws {
        let dir = StreamTestDirectory()
        let io = ParkingIO(parkAt: .baseWrite)
        let log = try LogStore.create(at: dir.path, options: streamTestOptions(), io: io)
        defer { try? log.close() }
        io.arm()
        let first = LockedBox<Result<UInt16, any Error>?>(nil)
        let second = LockedBox<Result<UInt16, any Error>?>(nil)
        Thread {
            let r = Result { try log.stream("shared").id }
            first.withLock { $0 = r }
        }.start()
        io.entered.wait()  // the first call is writing the base file that creates the stream
        Thread {
            let r = Result { try log.stream("shared").id }
            second.withLock { $0 = r }
        }.start()
        usleep(50_000)
        #expect(second.snapshot == nil, "the second call returned while the stream was not durable: \(String(describing: second.snapshot))")
        io.release.signal()
        let deadline = Date().addingTimeInterval(60)
        while first.snapshot == nil || second.snapshot == nil, Date() < deadline { usleep(1000) }
        let a = try #require(first.snapshot).get()
        let b = try #require(second.snapshot).get()
        #expect(a == b)

        // Many threads, several names: every call succeeds, one id per name.
        for round in 0..<5 {
            let results = LockedBox<[Result<UInt16, any Error>]>([])
            for _ in 0..<6 { Thread { let r = Result { try log.stream("s\(round)").id }; results.withLock { $0.append(r) } }.start() }
            while results.snapshot.count < 6, Date() < deadline.addingTimeInterval(60) { usleep(1000) }
            let ids = try results.snapshot.map { try $0.get() }
            #expect(Set(ids).count == 1)
        }
        #expect(try log.stream("").id == 0, "the empty name still opens the default stream")
    }

    /// A stream with no records has no base, so `advanceBase` accepted any LSN up to the last one, also
    /// one in a container recycled long ago: the log's base moved back there, and `records()` (which
    /// starts at the base) threw `notFound` for a container not in the log. Now such a base is refused.
    @Test func aBaseInARecycledContainerIsRefused() throws {
        let dir = StreamTestDirectory()
        let log = try LogStore.create(at: dir.path, options: streamTestOptions(codec: .none))
        defer { try? log.close() }
        let first = try log.append([UInt8](repeating: 1, count: 1000))
        var last = first
        while last.container < 4 { last = try log.append([UInt8](repeating: 2, count: 1000)) }
        try log.flush()
        try log.advanceBase(to: last)
        #expect(!log.info().containers.contains { $0.logicalID == first.container }, "the first container was recycled")
        let base = log.baseLSN
        let late = try log.createStream("late")
        expectLogError(.invalidArgument) { try late.advanceBase(to: first) }
        #expect(log.baseLSN == base)
        var cursor = try log.records()
        #expect(try cursor.next()?.lsn == base)
        // A base in a container the log still holds is accepted.
        try late.advanceBase(to: last)
        #expect(late.baseLSN == last)
    }

    /// `advanceBase` and `writeRestartArea(newBase:)` took any LSN up to the last one, also one that names
    /// no block (an offset inside a block). Reading the log or the stream from its base then met no block
    /// header there and threw `corrupt` for a healthy log, and kept doing so after a reopen. Now such a
    /// base is refused, and a stream cursor from such an LSN gets `notFound` as `LogStore.records` does.
    @Test func aBaseOrStartThatNamesNoRecordIsRefused() throws {
        let dir = StreamTestDirectory()
        let log = try LogStore.create(at: dir.path, options: streamTestOptions(codec: .none))
        defer { try? log.close() }
        let s = try log.createStream("s")
        let first = try s.append([UInt8](repeating: 1, count: 1000))
        var last = first
        for _ in 0..<30 { last = try s.append([UInt8](repeating: 2, count: 1000)) }
        try log.flush()
        let insideABlock = LSN(uncheckedContainer: first.container, blockOffset: first.blockOffset + 512, slot: 0)
        let pastTheSlots = LSN(uncheckedContainer: first.container, blockOffset: first.blockOffset, slot: 200)
        #expect(insideABlock < last && pastTheSlots < last)
        for bogus in [insideABlock, pastTheSlots] {
            expectLogError(.invalidArgument) { try log.advanceBase(to: bogus) }
            expectLogError(.invalidArgument) { try s.advanceBase(to: bogus) }
            expectLogError(.invalidArgument) { try s.writeRestartArea([9], newBase: bogus) }
        }
        expectLogError(.notFound) { _ = try s.records(from: insideABlock) }
        var all = try log.records()
        #expect(try all.next()?.lsn == first)
        var mine = try s.records()
        #expect(try mine.next()?.lsn == first)
        // A record's LSN, of this stream or another, is a base.
        let other = try log.append([3])
        try s.advanceBase(to: last)
        try s.writeRestartArea([4], newBase: other)
        #expect(s.baseLSN == other)
    }

    /// `read` documents `notFound` for an LSN at or below the end that names no record. One whose offset
    /// is inside the container's header, or past the container's size, got `invalidArgument` (the error
    /// for an LSN beyond the end), as did a stream cursor started there.
    @Test func anLSNOutsideTheContainersDataIsNotFound() throws {
        let dir = StreamTestDirectory()
        let log = try LogStore.create(at: dir.path, options: streamTestOptions(codec: .none))
        defer { try? log.close() }
        let s = try log.createStream("s")
        let first = try s.append([UInt8](repeating: 1, count: 1000))
        var last = first
        while last.container == first.container { last = try s.append([UInt8](repeating: 2, count: 1000)) }
        try log.flush()
        let inTheHeader = LSN(uncheckedContainer: last.container, blockOffset: 512, slot: 0)
        let pastTheContainer = LSN(uncheckedContainer: first.container, blockOffset: log.info().containerSize, slot: 0)
        #expect(pastTheContainer < log.lastLSN)
        for bogus in [inTheHeader, pastTheContainer] {
            expectLogError(.notFound) { _ = try log.read(bogus) }
            expectLogError(.notFound) { _ = try s.read(bogus) }
            expectLogError(.notFound) { _ = try log.records(from: bogus) }
            expectLogError(.notFound) { _ = try s.records(from: bogus) }
            expectLogError(.invalidArgument) { try s.advanceBase(to: bogus) }
        }
    }

    /// A stream's cursor made before `deleteStream` went on returning the deleted stream's records
    /// (`read` and new cursors already threw `notFound`). Now its next call throws `notFound` too.
    @Test func aDeletedStreamsCursorStopsReading() throws {
        let dir = StreamTestDirectory()
        let log = try LogStore.create(at: dir.path, options: streamTestOptions(codec: .none))
        defer { try? log.close() }
        let s = try log.createStream("gone")
        for i in 0..<200 { _ = try s.append(LogTestKit.randomPayload(i, length: 100)) }
        try log.flush()
        var cursor = try s.records()
        #expect(try cursor.next() != nil)
        try log.deleteStream("gone")
        expectLogError(.notFound) { _ = try cursor.next() }
        var whole = try log.records()  // the log's own cursor still reads every record
        var n = 0
        while try whole.next() != nil { n += 1 }
        #expect(n == 200)
    }
}

/// A minimal valid base record (two containers) for checks of `BaseRecord.validate`.
enum BaseRecordTestSample {
    static func record() -> BaseRecord {
        BaseRecord(
            generation: 1, flags: 0, logID: LogID.random(), containerSize: 512 * 1024, blockSize: 4096,
            maxRecordSize: 4096, codec: .none, epoch: 0, baseLSN: .null, durableWatermark: .null,
            scanStart: LSN(uncheckedContainer: 1, blockOffset: UInt64(Format.containerDataStart), slot: 0),
            scanStartPreviousLSN: .null, scanStartPreviousCRC: 0, nextPhysicalID: 2,
            containers: [
                ContainerEntry(physicalID: 0, logicalID: 1, state: .active, endOffset: 0),
                ContainerEntry(physicalID: 1, logicalID: 0, state: .inactive, endOffset: 0),
            ])
    }
}
