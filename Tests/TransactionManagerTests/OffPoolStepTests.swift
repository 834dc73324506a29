// The async commit's steps that may append run off Swift's cooperative pool when the log's
// `appendMayWait` hint is set: on reused threads (`OffPoolThreads`), counted in the TM's statistics, and
// never queued behind a step that is blocked, even when every thread of the set is (a step of another
// log, whose writer is free, still runs). Nothing here asserts a timing: a watchdog thread waits with a
// generous deadline and opens the held log's gate when it passes, so a failure never hangs.
//
// Each step's task resumes on Swift's cooperative pool, which other tests of the same process may hold
// for long stretches (a synchronous test blocks a pool thread; the machine may have two). Those stalls
// must not count: the thread sets here keep parked threads far longer than any stall (a thread that
// ended while the task waited for the pool was started again, and `threadsStarted` said 2), and the
// watchdog's deadline is most of the test's time limit (60 s failed under two tests holding the pool
// for 90 s, with log B's commit, and its steps, fine).

import Foundation
import LogStore
import Testing
@testable import TransactionManager

@Suite struct OffPoolStepTests {
    /// How long a parked thread of the tests' sets waits for a job: longer than any stall of the process.
    private static let longIdle: UInt64 = 3_600_000_000_000

    /// How long the watchdog lets log B's commit take before it opens log A's gate: most of `hangGuard`.
    private static let watchdogSeconds = 480.0

    /// A log on which every append may wait (`maxDirtyBytes` 0 keeps the hint set) and its online TM,
    /// whose steps run on `threads`.
    private static func hintSetTM(_ scratch: TMScratch, threads: OffPoolThreads, io: (any FileIO)? = nil) throws -> (LogStore, TransactionManager) {
        var open = LogOpenOptions()
        open.groupCommit.maxDirtyBytes = 0
        let log = try io.map { try LogStore.create(at: scratch.path, options: TMScratch.options, openOptions: open, io: $0) }
            ?? LogStore.create(at: scratch.path, options: TMScratch.options, openOptions: open)
        let tm = try TransactionManager.create(log: log)
        tm.offPoolThreads = threads
        try tm.recover()
        return (log, tm)
    }

    @Test("with the hint clear no step hops; with it set every step does, each is counted, and sequential commits reuse threads")
    func hopsCounted() async throws {
        // Hint clear: a roomy log, the default dirty limit.
        let roomy = TMScratch("offpool-clear")
        defer { roomy.remove() }
        let (log1, tm1) = try roomy.createOnline()
        defer { try? log1.close() }
        let clearThreads = OffPoolThreads(maxIdle: 2, idleNanoseconds: Self.longIdle)
        tm1.offPoolThreads = clearThreads
        let (a1, b1, tx1) = try twoRMs(tm1)
        try await tx1.commit()
        #expect(tm1.statistics.offPoolSteps == 0)
        #expect(clearThreads.counts.jobs == 0)
        _ = (a1, b1)

        // Hint set: every step of every commit hops.
        let tight = TMScratch("offpool-set")
        defer { tight.remove() }
        let threads = OffPoolThreads(maxIdle: 2, idleNanoseconds: Self.longIdle)
        let (log, tm) = try Self.hintSetTM(tight, threads: threads)
        defer { try? log.close() }
        #expect(log.appendMayWait)
        let a = try ScriptedRM.online(tm, "a")
        let b = try ScriptedRM.online(tm, "b")
        let commits = 20
        for _ in 0..<commits {
            // Two phases: pre-prepare, prepare, the decision record, the commit's delivery.
            let tx = try tm.createTransaction()
            _ = try a.enlist(tx)
            _ = try b.enlist(tx)
            try await tx.commit()
        }
        #expect(tm.statistics.offPoolSteps == UInt64(4 * commits))
        for _ in 0..<commits {
            // One phase: the single-phase delivery, the outcome's effects.
            let tx = try tm.createTransaction()
            _ = try a.enlist(tx, mask: .all)
            try await tx.commit()
        }
        #expect(tm.statistics.offPoolSteps == UInt64(6 * commits))
        let counts = threads.counts
        #expect(counts.jobs == UInt64(6 * commits), "every hop ran on the TM's threads")
        // One step at a time: the thread parks before the task resumes, so the next step finds it.
        #expect(counts.threadsStarted == 1, "\(counts)")
        #expect(a.errors.isEmpty && b.errors.isEmpty)
    }

    @Test("a TM's steps run while every thread of the set is held by steps waiting for another log's room",
          .hangGuard)
    func blockedStepsHoldUpNoOne() async throws {
        let threads = OffPoolThreads(maxIdle: 2, idleNanoseconds: Self.longIdle)
        // Log A: its writer is held writing a sealed block, so with a dirty limit of 0 every append waits.
        let scratchA = TMScratch("offpool-held")
        defer { scratchA.remove() }
        let io = GateIO(holding: .writes)
        let (logA, tmA) = try Self.hintSetTM(scratchA, threads: threads, io: io)
        defer { try? logA.close() }
        let a = try ScriptedRM.online(tmA, "a")
        let other = try logA.createStream("other")
        io.close()
        let lsn = try other.append(Array("sealed and held".utf8))
        other.whenDurable(lsn) { _ in }
        await onOwnThread { io.waitUntilHolding() }
        // More waiting commits than the set keeps threads and than the cooperative pool has.
        let held = threads.maxIdle + ProcessInfo.processInfo.activeProcessorCount + 2
        var tasks: [Task<Bool, Never>] = []
        for _ in 0..<held {
            let tx = try tmA.createTransaction()
            _ = try a.enlist(tx, mask: .all)
            tasks.append(Task { (try? await tx.commit()) != nil })
        }
        // Each commit's single-phase delivery hops, and its handler's append waits there.
        let allWaiting = await eventually { threads.counts.threadsAlive - threads.counts.threadsParked >= held }
        #expect(allWaiting, "\(threads.counts)")

        // Log B: the hint is set too, but its writer is free.
        let scratchB = TMScratch("offpool-free")
        defer { scratchB.remove() }
        let (logB, tmB) = try Self.hintSetTM(scratchB, threads: threads)
        defer { try? logB.close() }
        let (rb1, rb2, txB) = try twoRMs(tmB)
        let committed = DispatchSemaphore(value: 0)
        let commitB = Task { () -> Bool in
            defer { committed.signal() }
            return (try? await txB.commit()) != nil
        }
        let starved = await onOwnThread { () -> Bool in
            let timedOut = committed.wait(timeout: .now() + Self.watchdogSeconds) == .timedOut
            io.open()
            return timedOut
        }
        io.open()
        #expect(!starved, "log B's commit waited behind log A's blocked steps")
        #expect(await commitB.value)
        #expect(tmB.statistics.offPoolSteps == 4)
        _ = (rb1, rb2)
        var failed = 0
        for t in tasks where !(await t.value) { failed += 1 }
        #expect(failed == 0, "commits on log A failed once it had room")
        #expect(tmA.statistics.offPoolSteps >= UInt64(2 * held))
        #expect(!logA.isFailed && !logB.isFailed)
    }

    @Test("sequential jobs reuse a parked thread; threads beyond maxIdle end once their job is done, parked ones after the idle time")
    func threadsReused() async throws {
        final class Job: OffPoolJob, @unchecked Sendable {
            let started = DispatchSemaphore(value: 0)
            let done = DispatchSemaphore(value: 0)
            let gate: DispatchSemaphore?
            init(gate: DispatchSemaphore? = nil) { self.gate = gate }
            func run() {
                started.signal()
                gate?.wait()
            }
            func finish() { done.signal() }
        }
        let threads = OffPoolThreads(maxIdle: 2, idleNanoseconds: Self.longIdle)
        await onOwnThread {
            for _ in 0..<50 {
                let job = Job()
                #expect(threads.run(job))
                job.done.wait()
            }
        }
        #expect(threads.counts.jobs == 50)
        #expect(threads.counts.threadsStarted == 1, "\(threads.counts)")
        // Five jobs held at once take five threads; once let go, two stay parked and three end.
        let gate = DispatchSemaphore(value: 0)
        let before = threads.counts.threadsStarted
        let jobs = (0..<5).map { _ in Job(gate: gate) }
        await onOwnThread {
            for job in jobs { _ = threads.run(job) }
            for job in jobs { job.started.wait() }
            for _ in jobs { gate.signal() }
            for job in jobs { job.done.wait() }
        }
        #expect(threads.counts.threadsStarted - before >= 3, "five jobs at once ran on five threads")
        #expect(await eventually { threads.counts.threadsAlive == 2 && threads.counts.threadsParked == 2 }, "\(threads.counts)")
        // Parked threads end once no job came for the idle time.
        let brief = OffPoolThreads(maxIdle: 2, idleNanoseconds: 20_000_000)
        let last = Job()
        #expect(brief.run(last))
        await onOwnThread { last.done.wait() }
        #expect(await eventually { brief.counts.threadsAlive == 0 && brief.counts.threadsParked == 0 }, "\(brief.counts)")
    }
}
