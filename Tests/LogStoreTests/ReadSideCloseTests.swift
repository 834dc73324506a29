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

    struct Outcome: Sendable {
        var data: [UInt8]?
        var readError: LogError?
        var removal: LogError?
        var stale: [String]
    }

    /// Runs `body` while a read of `lsn` is held in its container `pread`; returns whether `body`'s work
    /// (started on its own thread) ended while the read was still held, and what the read returned.
    static func whileAReadIsHeld(
        _ log: LogStore, _ io: ParkingIO, reading lsn: LSN, _ body: @escaping @Sendable () throws -> Void
    ) async throws -> (endedDuringTheRead: Bool, outcome: Outcome) {
        let read = LockedBox<(data: [UInt8]?, error: LogError?)>((nil, nil))
        let readDone = DispatchSemaphore(value: 0)
        let work = LockedBox<(done: Bool, error: LogError?)>((false, nil))
        try await onOwnThread { () throws -> Void in
            io.arm()
            Thread {
                do {
                    let data = try log.read(lsn).data
                    read.withLock { $0.data = data }
                } catch {
                    read.withLock { $0.error = (error as? LogError) ?? LogError(.io, "\(error)") }
                }
                readDone.signal()
            }.start()
            io.entered.wait()
            Thread {
                do { try body() } catch { work.withLock { $0.error = (error as? LogError) ?? LogError(.io, "\(error)") } }
                work.withLock { $0.done = true }
            }.start()
        }
        let ended = await eventually { work.snapshot.done }
        io.release.signal()
        await onOwnThread { readDone.wait() }
        _ = await eventually(within: 60) { work.snapshot.done }
        let (data, readError) = read.snapshot
        return (ended, Outcome(data: data, readError: readError, removal: work.snapshot.error, stale: io.stale))
    }

    @Test("removing a free container is not held up by a read of another container that does not end")
    func removalBesideAHeldRead() async throws {
        let dir = FaultTestKit.temporaryPath("remove-beside-read")
        defer { FaultTestKit.remove(dir) }
        let io = ParkingIO(parkAt: .containerRead)
        let (log, first, _) = try ReadWhileRecyclingTests.twoContainerLog(dir, io: io, containers: 3)
        defer { try? log.close() }
        let free = try #require(log.core.lock.withLock { log.core.state.containers.values.first { $0.logical == 0 }?.physical })

        let (ended, outcome) = try await Self.whileAReadIsHeld(log, io, reading: first) { try log.removeContainer(free) }
        #expect(ended, "the removal waited for a read of another container")
        #expect(outcome.removal == nil, "\(String(describing: outcome.removal))")
        #expect(outcome.readError == nil && outcome.data == FaultTestKit.payload(0), "\(String(describing: outcome.readError))")
        #expect(outcome.stale.isEmpty, "a read went through a closed descriptor: \(outcome.stale)")
        #expect(log.info().containers.count == 2)
    }

    @Test("a read-only log's refresh that closes a deleted container is not held up by a read of another")
    func refreshBesideAHeldRead() async throws {
        let dir = FaultTestKit.temporaryPath("refresh-beside-read")
        defer { FaultTestKit.remove(dir) }
        let writer = try LogStore.create(at: dir, options: FaultTestKit.tinyOptions(containers: 3))
        defer { try? writer.close() }
        let first = try writer.append(FaultTestKit.payload(0))
        var i = 1
        var second = first
        while second.container == first.container {
            second = try writer.append(FaultTestKit.payload(i))
            i += 1
        }
        try await writer.flush()
        let io = ParkingIO(parkAt: .containerRead)
        let view = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true), io: io)
        defer { try? view.close() }
        // The writer deletes the first logical container: marked pending delete, then recycled away.
        let oldest = try #require(writer.info().containers.first { $0.logicalID == first.container }?.physicalID)
        try writer.removeContainer(oldest)
        try writer.advanceBase(to: second)
        #expect(!writer.info().containers.contains { $0.physicalID == oldest }, "the container was not deleted: the test shows nothing")

        let refreshed = LockedBox<Bool>(false)
        let (ended, outcome) = try await Self.whileAReadIsHeld(view, io, reading: second) {
            let moved = try view.refresh()
            refreshed.withLock { $0 = moved }
        }
        #expect(ended, "the refresh waited for a read of another container")
        #expect(outcome.removal == nil, "\(String(describing: outcome.removal))")
        #expect(refreshed.snapshot)
        #expect(outcome.readError == nil && outcome.data == FaultTestKit.payload(i - 1), "\(String(describing: outcome.readError))")
        #expect(outcome.stale.isEmpty, "a read went through a closed descriptor: \(outcome.stale)")
    }
}
