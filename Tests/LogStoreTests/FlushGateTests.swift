// The flush gate: where threads in a synchronous flush sleep, and which batch wakes them. Unit tests of
// the ticket rules, then real logs: capped batches (sleepers that must wait a second time), an fdatasync
// failure with many sleepers, and close while threads are asleep in flush.

import Foundation
import Testing
@testable import LogStore

@Suite("Flush gate")
struct FlushGateTests {
    typealias Kit = FaultTestKit

    // MARK: Ticket rules

    @Test("a sleeper covered by the batch in progress wakes with it; one beyond it waits for the next batch")
    func coveredAndUncovered() {
        let gate = FlushGate(durable: .null)
        gate.inFlightCover = LSN(rawValue: 100)
        let covered = gate.ticketLocked(for: LSN(rawValue: 60))
        let beyond = gate.ticketLocked(for: LSN(rawValue: 200))
        #expect(covered.parity != beyond.parity, "the two generations sleep on different words")
        #expect(gate.isPending(covered) && gate.isPending(beyond))
        #expect(!gate.isDurable(LSN(rawValue: 60)))

        gate.completeLocked(durable: LSN(rawValue: 100))
        #expect(!gate.isPending(covered), "the batch that covered it changed its word")
        #expect(gate.isPending(beyond), "the next batch's sleeper is not disturbed")
        #expect(gate.takeWakesLocked().parities == 1 << UInt8(covered.parity), "only the covered word is woken")
        #expect(gate.takeWakesLocked() == .none, "a wake is owed once")
        #expect(gate.isDurable(LSN(rawValue: 60)) && gate.isDurable(LSN(rawValue: 100)))
        #expect(!gate.isDurable(LSN(rawValue: 200)))

        gate.inFlightCover = LSN(rawValue: 300)
        gate.completeLocked(durable: LSN(rawValue: 300))
        #expect(!gate.isPending(beyond))
        #expect(gate.takeWakesLocked().parities == 1 << UInt8(beyond.parity))
        #expect(gate.isDurable(LSN(rawValue: 200)))
    }

    @Test("with no batch in progress a sleeper waits for the next one; no wake is owed to an empty word")
    func idleAndEmpty() {
        let gate = FlushGate(durable: LSN(rawValue: 5))
        #expect(gate.isDurable(LSN(rawValue: 5)) && !gate.isDurable(LSN(rawValue: 6)))
        gate.completeLocked(durable: LSN(rawValue: 5))
        #expect(gate.takeWakesLocked() == .none, "nobody slept: no futex wake")
        let t = gate.ticketLocked(for: LSN(rawValue: 9))
        gate.completeLocked(durable: LSN(rawValue: 9))
        #expect(!gate.isPending(t))
        #expect(gate.takeWakesLocked().parities == 1 << UInt8(t.parity))
    }

    @Test("releasing everyone changes both words (failure, close)")
    func releaseEveryone() {
        let gate = FlushGate(durable: .null)
        gate.inFlightCover = LSN(rawValue: 10)
        let a = gate.ticketLocked(for: LSN(rawValue: 5))
        let b = gate.ticketLocked(for: LSN(rawValue: 50))
        gate.releaseEveryoneLocked()
        #expect(!gate.isPending(a) && !gate.isPending(b))
        #expect(gate.takeWakesLocked().parities == 3)
        #expect(!gate.isDurable(LSN(rawValue: 5)), "releasing is not making durable")
    }

    @Test("threads asleep on the gate wake when their generation completes", .hangGuard)
    func threadsWake() async {
        let gate = FlushGate(durable: .null)
        let lock = Lock()
        let woke = LockedBox(0)
        let tickets = (0..<8).map { _ in lock.withLock { gate.ticketLocked(for: LSN(rawValue: 1)) } }
        let sleepers = Task {
            await LogTestKit.onThreads(tickets.count) { i in
                while !gate.isDurable(LSN(rawValue: 1)) { gate.sleep(tickets[i]) }
                woke.withLock { $0 += 1 }
            }
        }
        try? await Task.sleep(nanoseconds: 20_000_000)
        let wakes = lock.withLock { () -> FlushGate.Wakes in
            gate.completeLocked(durable: LSN(rawValue: 1))
            return gate.takeWakesLocked()
        }
        gate.wake(wakes)
        await sleepers.value
        #expect(woke.snapshot == tickets.count)
    }

    // MARK: On a log

    @Test("batches capped at one block: sleepers not covered by a batch wait again, and every flush is durable when it returns",
          .hangGuard)
    func cappedBatches() async throws {
        let dir = LogTestKit.temporaryPath("gate-capped")
        defer { LogTestKit.remove(dir) }
        var openOptions = LogOpenOptions()
        openOptions.groupCommit.maxBatchBytes = 4096
        let log = try LogStore.create(
            at: dir, options: LogTestKit.options(containerSize: 8 << 20, blockSize: 4096, codec: .none), openOptions: openOptions)
        let problems = LockedBox([String]())
        let appended = LockedBox([LSN]())
        await LogTestKit.onThreads(16) { w in
            var mine: [LSN] = []
            do {
                for s in 0..<60 {
                    let lsn = try log.append(LogTestKit.taggedPayload(writer: w, sequence: s, length: 700 + (w * 37 + s) % 900))
                    try log.flush(upTo: lsn)
                    if log.durableLSN < lsn { problems.withLock { $0.append("flush(upTo: \(lsn)) returned below it") } }
                    mine.append(lsn)
                }
            } catch {
                problems.withLock { $0.append("writer \(w): \(error)") }
            }
            appended.withLock { $0 += mine }
        }
        #expect(problems.snapshot.isEmpty, "\(problems.snapshot.prefix(5))")
        #expect(appended.snapshot.count == 16 * 60)
        let stats = log.info().statistics
        #expect(stats.bytesWritten <= stats.batches * 4096, "no batch exceeded maxBatchBytes: \(stats.bytesWritten) B in \(stats.batches)")
        try log.close()
        let again = try LogStore.open(at: dir)
        for lsn in appended.snapshot { #expect(LogTestKit.parseTagged(try again.read(lsn).data) != nil) }
        try again.close()
    }

    @Test("an fdatasync failure wakes every thread asleep in flush with `failed`", .hangGuard)
    func failureWakesSleepers() async throws {
        let dir = Kit.temporaryPath("gate-fail")
        defer { Kit.remove(dir) }
        let (io, log, first) = try await Kit.logWhoseNextSyncFails(at: dir)
        let results = LockedBox([LogError?]())
        await LogTestKit.onThreads(12) { t in
            var outcome: LogError?
            do {
                var last = LSN.null
                for i in 0..<20 { last = try log.append(Kit.payload(1000 * (t + 1) + i)) }
                try log.flush(upTo: last)
            } catch let e as LogError {
                outcome = e
            } catch {
                outcome = LogError(.io, "unexpected \(error)")
            }
            results.withLock { $0.append(outcome) }
        }
        #expect(io.faultsFired == 1)
        #expect(results.snapshot.count == 12)
        for r in results.snapshot { #expect(r?.code == .failed, "a flusher got \(String(describing: r))") }
        #expect(log.durableLSN == first)
        #expect(throws: LogError.self) { try log.close() }
    }

    @Test("close while threads are asleep in flush: each flush returns durable or throws; none hangs; nothing acknowledged is lost",
          .hangGuard)
    func closeWakesSleepers() async throws {
        let dir = LogTestKit.temporaryPath("gate-close")
        defer { LogTestKit.remove(dir) }
        let log = try LogStore.create(at: dir, options: LogTestKit.options(containerSize: 8 << 20, blockSize: 8192, codec: .lz4))
        let acknowledged = LockedBox([LSN]())
        let problems = LockedBox([String]())
        let threads = Task {
            await LogTestKit.onThreads(16) { w in
                for s in 0..<100_000 {
                    let lsn: LSN
                    do { lsn = try log.append(LogTestKit.taggedPayload(writer: w, sequence: s, length: 100)) } catch { return }
                    do {
                        try log.flush(upTo: lsn)
                        if log.durableLSN < lsn { problems.withLock { $0.append("flush(upTo: \(lsn)) returned below it") } }
                        acknowledged.withLock { $0.append(lsn) }
                    } catch let e as LogError where e.code == .closed {
                        return
                    } catch {
                        problems.withLock { $0.append("writer \(w): \(error)") }
                        return
                    }
                }
            }
        }
        // Close once flushes are being acknowledged (a fixed 100 ms was sometimes too short under a full
        // test run), while the writers are still asleep in later ones.
        #expect(await eventually { acknowledged.snapshot.count >= 16 })
        try log.close()
        await threads.value
        #expect(problems.snapshot.isEmpty, "\(problems.snapshot.prefix(5))")
        #expect(!acknowledged.snapshot.isEmpty)
        let again = try LogStore.open(at: dir)
        for lsn in acknowledged.snapshot { #expect(LogTestKit.parseTagged(try again.read(lsn).data) != nil) }
        try again.close()
    }
}
