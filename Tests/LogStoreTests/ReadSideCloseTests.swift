// The read side against close() and against the closing of container descriptors
// (docs/RELIABILITY.md, "Found by the thirteenth review (LogStore read side and close)").
//
// A cursor served the records left in the block it had decoded after the log was closed. And whatever
// closes container descriptors (a removal, recycling's deletions, a read-only refresh) waited for every
// read of the log to pause (one log-wide count): a read of another container that never paused (here,
// one held in its pread) held it up for ever.

import Dispatch
import Foundation
import Testing
@testable import LogStore

@Suite("LogStore read side and close")
struct ReadSideCloseTests {
    @Test("after close every reader throws closed, also for the records left in the block it holds")
    func readersAfterClose() throws {
        let dir = FaultTestKit.temporaryPath("readers-after-close")
        defer { FaultTestKit.remove(dir) }
        let log = try LogStore.create(at: dir, options: FaultTestKit.tinyOptions())
        let stream = try log.createStream("s")
        var last = LSN.invalid
        for i in 0..<6 {
            last = try log.append(FaultTestKit.payload(i), previous: last)
            _ = try stream.append(FaultTestKit.payload(100 + i))
        }
        try log.flush()
        // From disk (the blocks are written), and the block being appended to (in memory).
        var onDisk = try log.records()
        var streamCursor = try stream.records()
        _ = try onDisk.next()
        _ = try streamCursor.next()
        let tail = try log.append(FaultTestKit.payload(50))
        _ = try log.append(FaultTestKit.payload(51))
        var inMemory = try log.records(from: tail)
        _ = try inMemory.next()
        var chain = log.previousChain(from: last)
        _ = try chain.next()
        try log.close()

        expectLogError(.closed, "the whole log's cursor") { _ = try onDisk.next() }
        expectLogError(.closed, "the stream's cursor") { _ = try streamCursor.next() }
        expectLogError(.closed, "a cursor in the block being appended to") { _ = try inMemory.next() }
        expectLogError(.closed, "the previous-LSN chain") { _ = try chain.next() }
        expectLogError(.closed, "a cursor's check between blocks") { _ = try onDisk.next(beforeEachBlock: {}) }
    }

    struct Held<T: Sendable>: Sendable {
        /// Whether the work ended while the read was still held.
        var endedDuringTheRead: Bool
        var work: Result<T, any Error>
        var read: Result<[UInt8], any Error>
        /// Calls made through a descriptor after it was closed.
        var stale: [String]
    }

    /// Holds a read of `lsn` in its container `pread` (`ParkingIO`), starts `body` on a thread of its own,
    /// and polls for its end (bounded) before the read goes on.
    static func whileAReadIsHeld<T: Sendable>(
        _ log: LogStore, _ io: ParkingIO, reading lsn: LSN, _ body: @escaping @Sendable () throws -> T
    ) async -> Held<T> {
        io.arm()
        let reading = Task(executorPreference: OwnThreadExecutor()) { Result { try log.read(lsn).data } }
        await onOwnThread { io.entered.wait() }
        let outcome = LockedBox<Result<T, any Error>?>(nil)
        let working = Task(executorPreference: OwnThreadExecutor()) {
            let r = Result { try body() }
            outcome.withLock { $0 = r }
            return r
        }
        let ended = await eventually { outcome.withLock { $0 != nil } }
        io.release.signal()
        let read = await reading.value
        return Held(endedDuringTheRead: ended, work: await working.value, read: read, stale: io.stale)
    }

    @Test("removing a free container is not held up by a read of another container that does not end")
    func removalBesideAHeldRead() async throws {
        let dir = FaultTestKit.temporaryPath("remove-beside-read")
        defer { FaultTestKit.remove(dir) }
        let io = ParkingIO(parkAt: .containerRead)
        let (log, first, _) = try ReadWhileRecyclingTests.twoContainerLog(dir, io: io, containers: 3)
        defer { try? log.close() }
        let free = try #require(log.core.lock.withLock { log.core.state.containers.values.first { $0.logical == 0 }?.physical })

        let held = await Self.whileAReadIsHeld(log, io, reading: first) { try log.removeContainer(free) }
        #expect(held.endedDuringTheRead, "the removal waited for a read of another container")
        #expect(throws: Never.self) { try held.work.get() }
        #expect((try? held.read.get()) == FaultTestKit.payload(0), "\(held.read)")
        #expect(held.stale.isEmpty, "a read went through a closed descriptor: \(held.stale)")
        #expect(log.info().containers.count == 2)
    }

    @Test("a read-only log's refresh that closes a deleted container is not held up by a read of another")
    func refreshBesideAHeldRead() async throws {
        let dir = FaultTestKit.temporaryPath("refresh-beside-read")
        defer { FaultTestKit.remove(dir) }
        let (writer, first, second) = try ReadWhileRecyclingTests.twoContainerLog(dir, io: ParkingIO(parkAt: .containerRead), containers: 3)
        defer { try? writer.close() }
        let expected = try writer.read(second).data
        let io = ParkingIO(parkAt: .containerRead)
        let view = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true), io: io)
        defer { try? view.close() }
        // The writer deletes the first logical container: marked pending delete, then recycled away.
        let oldest = try #require(writer.info().containers.first { $0.logicalID == first.container }?.physicalID)
        try writer.removeContainer(oldest)
        try writer.advanceBase(to: second)
        #expect(!writer.info().containers.contains { $0.physicalID == oldest }, "the container was not deleted: the test shows nothing")

        let held = await Self.whileAReadIsHeld(view, io, reading: second) { try view.refresh() }
        #expect(held.endedDuringTheRead, "the refresh waited for a read of another container")
        #expect((try? held.work.get()) == true, "\(held.work)")
        #expect((try? held.read.get()) == expected, "\(held.read)")
        #expect(held.stale.isEmpty, "a read went through a closed descriptor: \(held.stale)")
    }
}
