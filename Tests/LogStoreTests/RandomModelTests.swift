// A randomized, model-based test of the LogStore API: seeded sequences of random calls (streams created,
// opened and deleted; appends of 0 bytes to the largest record, with links; flushes; reads of present,
// recycled, never-written and other streams' LSNs; cursors; chains; reservations; restart areas; bases;
// archive tails; containers added and removed; policies; clean reopens and process crashes), each
// checked as it returns against a model of what the documentation promises (RandomModel.swift). Then a
// concurrent variant: workers on their own streams, one thread changing containers, tails and policy.
//
// Default: 20 seeds × 300 operations and 4 concurrent seeds. TXLOG_LONG_TESTS=1: 100 seeds × 2000 and
// 40 concurrent seeds. TXLOG_MODEL_SEED=n replays one seed of the single-threaded test.

import Foundation
import Testing
@testable import LogStore

@Suite("Random operation sequences against a model of the LogStore API", .serialized)
struct RandomModelTests {
    static let longRun = ProcessInfo.processInfo.environment["TXLOG_LONG_TESTS"] == "1"
    static let seeds: [UInt64] = {
        if let one = ProcessInfo.processInfo.environment["TXLOG_MODEL_SEED"].flatMap(UInt64.init) { return [one] }
        return (0..<UInt64(longRun ? 100 : 20)).map { 0x5EED_0000 + $0 }
    }()
    static let operations = longRun ? 2000 : 300

    @Test("one thread: every call checked against the model", arguments: seeds)
    func singleThread(seed: UInt64) async throws {
        let dir = LogTestKit.temporaryPath("model-\(seed)")
        let outcome: String? = await onOwnThread {
            var driver: ModelDriver?
            do {
                driver = try ModelDriver(seed: seed, directory: dir)
                defer { if let d = driver { LogTestKit.remove(d.directory) } }
                try driver?.run(operations: Self.operations)
                if ProcessInfo.processInfo.environment["TXLOG_MODEL_COUNTS"] == "1", let d = driver {
                    print("seed \(seed): \(d.counts.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")) records=\(d.model.records.count)")
                }
                return nil
            } catch {
                let history = driver?.history.joined(separator: "\n  ") ?? ""
                return "seed \(seed) (TXLOG_MODEL_SEED=\(seed)): \(error)\n last operations:\n  \(history)"
            }
        }
        if let outcome { Issue.record(Comment(rawValue: outcome)) }
        LogTestKit.remove(dir)
    }

    static let concurrentSeeds: [UInt64] = (0..<UInt64(longRun ? 40 : 4)).map { 0xC0C0_0000 + $0 }

    @Test("three workers on their own streams and one changing containers, tails and policy", arguments: concurrentSeeds)
    func concurrent(seed: UInt64) async throws {
        let dir = LogTestKit.temporaryPath("model-concurrent-\(seed)")
        defer { LogTestKit.remove(dir) }
        let log = try LogStore.create(at: dir, options: LogCreateOptions(containerSize: 512 * 1024, containerCount: 3, blockSize: 2048))
        let problems = LockedBox<[String]>([])
        let published = LockedBox<[LSN]>([])
        let workersDone = LockedBox(0)
        let workers = 3
        let streams = try (0..<workers).map { try log.createStream("w\($0)") }
        let models = (0..<workers).map { _ in LockedBox(WorkerModel()) }
        let operations = Self.longRun ? 1500 : 300
        await LogTestKit.onThreads(workers + 1) { i in
            if i == workers {
                var admin = ConcurrentAdmin(log: log, rng: SplitMix64(seed: seed ^ 0xAD), problems: problems, published: published)
                admin.run(until: { workersDone.withLock { $0 } == workers })
                return
            }
            var worker = ConcurrentWorker(stream: streams[i], rng: SplitMix64(seed: seed &+ UInt64(i) &* 7919), problems: problems)
            worker.run(operations: operations, published: published)
            models[i].withLock { $0 = worker.model }
            workersDone.withLock { $0 += 1 }
        }
        let failures = problems.withLock { $0 }
        #expect(failures.isEmpty, "seed \(seed): \(failures.prefix(5).joined(separator: "; "))")
        // The final state, after a clean reopen: every record from each stream's base, exactly.
        try log.close()
        let reopened = try LogStore.open(at: dir)
        defer { try? reopened.close() }
        for i in 0..<workers {
            let m = models[i].withLock { $0 }
            let s = try reopened.openStream("w\(i)")
            #expect(s.baseLSN == m.base, "seed \(seed) w\(i): base \(s.baseLSN), model \(m.base)")
            var cursor = try s.records()
            var got: [LSN] = []
            while let r = try cursor.next() {
                got.append(r.lsn)
                if let w = m.records[r.lsn] { #expect(r.data == w.data && r.previous == w.previous, "seed \(seed) w\(i) \(r.lsn)") }
            }
            #expect(got == m.order.filter { $0 >= m.base }, "seed \(seed) w\(i): \(got.count) records from the base, model \(m.order.filter { $0 >= m.base }.count)")
            if let restart = m.restarts.last, restart >= m.base { #expect(try s.readRestartArea()?.lsn == restart, "seed \(seed) w\(i)") }
        }
    }
}
