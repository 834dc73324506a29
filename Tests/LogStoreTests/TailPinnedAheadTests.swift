// The tail-pinned handlers called ahead of a full log (docs/RELIABILITY.md, "Found by the thirteenth
// review (mine: ...)"): called only once the log was full, a handler's checkpoint found no room for its
// restart area, and the log stayed full.

import Foundation
import Synchronization
import Testing
import TxLogTestSupport
@testable import LogStore

@Suite("Tail-pinned handlers are called ahead of a full log")
struct TailPinnedAheadTests {
    /// 200,000-byte records: two fill a 512 KiB container but for about 110 KB, less than the 150,000-byte
    /// restart area of the checkpointing stream.
    static let record = [UInt8](repeating: 0xB5, count: 200_000)
    static let restartArea = [UInt8](repeating: 0x3C, count: 150_000)

    /// A new uncompressed log of `containers` 512 KiB containers whose stream "pinner" holds one record
    /// in the first container (its base pins the tail until it moves).
    static func pinnedLog(_ dir: String, containers: Int) throws -> (LogStore, LogStream) {
        let log = try LogStore.create(at: dir, options: uncompressedTiny(containers))
        let pinner = try log.createStream("pinner")
        try pinner.append([1])
        return (log, pinner)
    }

    /// Appends to a `pinnedLog` of four containers until the pinner's handler, called ahead of the full
    /// log, has signalled `entered`.
    static func fillUntilCalledAhead(_ log: LogStore, entered: DispatchSemaphore) async throws {
        while log.info().freeContainers * 4 >= 4 {
            let lsn = try log.append(record)
            try log.advanceBase(to: lsn)
        }
        let called = await onOwnThread { entered.wait(timeout: .now() + 60) == .success }
        try #require(called, "the handler was not called ahead of a full log")
    }

    /// A stream checkpoints (a large restart area moving its base to its last record) when asked by its
    /// tail-pinned handler, as a TM or a KV store does. The default stream appends and moves its own base
    /// at once, so only the checkpointing stream ever pins the tail. Called only from the append that
    /// found no container free, the handler's restart area did not fit what was left of the last one:
    /// it got `logFull`, the base stayed, and so did the full log (every later append `logFull`).
    @Test func checkpointWrittenWhileTheLastContainerHasRoom() throws {
        let dir = FaultTestKit.temporaryPath("tail-pinned-ahead")
        defer { FaultTestKit.remove(dir) }
        let log = try LogStore.create(at: dir, options: uncompressedTiny(4))
        let ckpt = try log.createStream("ckpt")
        try ckpt.append([1])
        let calledAhead = Atomic<Int>(0)
        let handlerErrors = Mutex<[String]>([])
        log.core.pinnersCalledAheadForTesting = { _ in calledAhead.add(1, ordering: .relaxed) }
        ckpt.onTailPinned { _ in
            do {
                try ckpt.writeRestartArea(Self.restartArea, newBase: ckpt.lastLSN)
            } catch {
                handlerErrors.withLock { $0.append("\(error)") }
            }
        }
        // Ten containers' worth through a log of four: it wraps twice.
        for _ in 0..<20 {
            let lsn = try log.append(Self.record)
            try log.flush(upTo: lsn)
            try log.advanceBase(to: lsn)
            // A call queued by that append has run before the next one (the test's order, not a race).
            log.core.pinnedAheadQueue.sync {}
        }
        #expect(calledAhead.load(ordering: .relaxed) >= 2)
        #expect(handlerErrors.withLock { $0 } == [])
        #expect(ckpt.baseLSN.container > 2)
        try log.close()
    }

    /// Not while a quarter or more of the log's containers are free: a log of sixteen is asked first when
    /// an append leaves three free; and once for as long as the same container is the oldest (the pinner
    /// here never moves).
    @Test func calledOnlyBelowAQuarterFree() throws {
        let dir = FaultTestKit.temporaryPath("tail-pinned-ahead-quarter")
        defer { FaultTestKit.remove(dir) }
        let (log, pinner) = try Self.pinnedLog(dir, containers: 16)
        let targets = Mutex<[LSN]>([])
        log.core.pinnersCalledAheadForTesting = { t in targets.withLock { $0.append(t) } }
        pinner.onTailPinned { _ in }
        var freeWhenCalled: [Int] = []
        while log.info().freeContainers > 0 {
            let before = targets.withLock { $0.count }
            try log.append(Self.record)
            log.core.pinnedAheadQueue.sync {}
            if targets.withLock({ $0.count }) > before { freeWhenCalled.append(log.info().freeContainers) }
        }
        #expect(freeWhenCalled == [3])
        // The target is where the pinning base must go: past the oldest container, the pinner's.
        #expect(targets.withLock { $0 }.allSatisfy { $0.container == 2 })
        try log.close()
    }

    /// A handler that cannot move its base (as a TM or a store with an undecided transaction) but writes a
    /// restart area each time it is asked: its restart areas make container switches of their own, and
    /// each switch below a quarter free asked it again, so it filled the rest of the log with restart
    /// areas by itself. Asked once per target, it writes one.
    @Test func aHandlerThatCannotMoveIsAskedOnce() throws {
        let dir = FaultTestKit.temporaryPath("tail-pinned-ahead-once")
        defer { FaultTestKit.remove(dir) }
        let log = try LogStore.create(at: dir, options: uncompressedTiny(16))
        let stuck = try log.createStream("stuck")
        try stuck.append([1])
        let calls = Atomic<Int>(0)
        stuck.onTailPinned { _ in
            calls.add(1, ordering: .relaxed)
            // 350,000 bytes: each needs a container of its own. The base stays.
            _ = try? stuck.writeRestartArea([UInt8](repeating: 0x11, count: 350_000))
        }
        while log.info().freeContainers * 4 >= 16 {
            let lsn = try log.append(Self.record)
            try log.flush(upTo: lsn)
            try log.advanceBase(to: lsn)
        }
        // Until no call is queued any more (a call the handler's own switches queued, included).
        while log.core.lock.withLock({ log.core.state.pinnersAheadQueued }) || calls.load(ordering: .relaxed) == 0 {
            log.core.pinnedAheadQueue.sync {}
        }
        log.core.pinnedAheadQueue.sync {}
        // Before, each of its restart areas asked for the next, until none fitted (four here).
        #expect(calls.load(ordering: .relaxed) == 1)
        try log.close()
    }

    /// A handler still running when `close()` begins: `close()` waits for it, so it never runs after
    /// `close()` returned (its owner may free what it uses then). Before, close returned at once and the
    /// handler went on, called on the log's own thread, beside an owner that believed the log closed.
    @Test(.hangGuard) func closeWaitsForAHandlerCalledAhead() async throws {
        let dir = FaultTestKit.temporaryPath("tail-pinned-close")
        defer { FaultTestKit.remove(dir) }
        let (log, pinner) = try Self.pinnedLog(dir, containers: 4)
        let entered = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        let finished = Atomic<Bool>(false)
        let appendAfterClose = Mutex<LogError.Code?>(nil)
        pinner.onTailPinned { _ in
            entered.signal()
            _ = release.wait(timeout: .now() + 60)
            // By now close() has begun: the log refuses the handler's calls.
            do { _ = try pinner.append([2]) } catch let e as LogError { appendAfterClose.withLock { $0 = e.code } } catch {}
            finished.store(true, ordering: .sequentiallyConsistent)
        }
        let waiting = DispatchSemaphore(value: 0)
        log.core.closeWaitingForHandlersForTesting = { waiting.signal() }
        try await Self.fillUntilCalledAhead(log, entered: entered)
        let closing = Task(executorPreference: OwnThreadExecutor()) { () throws -> Bool in
            try log.close()
            return finished.load(ordering: .sequentiallyConsistent)
        }
        let closeWaited = await onOwnThread { waiting.wait(timeout: .now() + 60) == .success }
        release.signal()
        let finishedWhenClosed = try await closing.value
        #expect(closeWaited, "close() did not wait for the handler")
        #expect(finishedWhenClosed, "the handler was still running when close() returned")
        #expect(appendAfterClose.withLock { $0 } == .closed)
    }

    /// A handler may close the log itself: close() does not wait for the handler it is called from.
    @Test(.hangGuard) func aHandlerMayCloseTheLog() async throws {
        let dir = FaultTestKit.temporaryPath("tail-pinned-self-close")
        defer { FaultTestKit.remove(dir) }
        let (log, pinner) = try Self.pinnedLog(dir, containers: 4)
        let closed = DispatchSemaphore(value: 0)
        pinner.onTailPinned { _ in
            try? log.close()
            closed.signal()
        }
        // Until the handler, called ahead of the full log or by it, has closed the log under these appends.
        for _ in 0..<40 {
            do {
                let lsn = try log.append(Self.record)
                try log.advanceBase(to: lsn)
            } catch is LogError { break }
        }
        let done = await onOwnThread { closed.wait(timeout: .now() + 60) == .success }
        #expect(done, "a handler closing the log waited for itself")
        expectLogError(.closed) { _ = try log.append([3]) }
    }

    /// A handler closing the log while another thread's close() is waiting for it (fifteenth review):
    /// its close() found one under way and waited for that one to finish, which was waiting for this
    /// very handler to return. Both threads hung for good. Now a close from a handler does not wait
    /// for one under way (it is that one's to finish), as a close from a completion does not.
    @Test(.hangGuard) func aHandlerClosingTheLogWhileAnotherCloseWaitsForIt() async throws {
        let dir = FaultTestKit.temporaryPath("tail-pinned-close-twice")
        defer { FaultTestKit.remove(dir) }
        let (log, pinner) = try Self.pinnedLog(dir, containers: 4)
        let entered = DispatchSemaphore(value: 0)
        let closeWaiting = DispatchSemaphore(value: 0)
        let handlerClosed = DispatchSemaphore(value: 0)
        let handlerCloseError = Mutex<LogError.Code?>(nil)
        pinner.onTailPinned { _ in
            entered.signal()
            // Until the other close() waits for this handler.
            _ = closeWaiting.wait(timeout: .now() + 60)
            do { try log.close() } catch let e as LogError { handlerCloseError.withLock { $0 = e.code } } catch {}
            handlerClosed.signal()
        }
        log.core.closeWaitingForHandlersForTesting = { closeWaiting.signal() }
        try await Self.fillUntilCalledAhead(log, entered: entered)
        let closing = Task(executorPreference: OwnThreadExecutor()) { try log.close() }
        let returned = await onOwnThread { handlerClosed.wait(timeout: .now() + 60) == .success }
        // Not awaited when it hangs: the test fails instead of hanging with it.
        try #require(returned, "the handler's close() waited for the close() that waits for the handler")
        try await closing.value
        #expect(handlerCloseError.withLock { $0 } == nil)
        expectLogError(.closed) { _ = try log.append([3]) }
    }
}
