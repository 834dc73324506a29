// `whenDurable`: the completion form of flush. Each completion runs exactly once, on the log's completion
// queue, after its target is durable or with the error that says it will not be; close runs the ones
// owed before returning; a completion may call into the log.

import Foundation
import Testing
@testable import LogStore
import TxLogTestSupport

@Suite("whenDurable")
struct WhenDurableTests {
    typealias Kit = FaultTestKit

    /// What completions reported, by tag.
    final class Outcomes: @unchecked Sendable {
        private let lock = NSLock()
        private var results: [Int: [LogError?]] = [:]
        private var durableSeen: [Int: LSN] = [:]
        private var onQueue: [Int: Bool] = [:]

        func record(_ tag: Int, _ error: LogError?, durable: LSN) {
            let queued = DispatchQueue.getSpecific(key: onCompletionQueue) != nil
            lock.withLock {
                results[tag, default: []].append(error)
                durableSeen[tag] = durable
                onQueue[tag] = queued
            }
        }

        var count: Int { lock.withLock { results.count } }
        func calls(_ tag: Int) -> [LogError?] { lock.withLock { results[tag] ?? [] } }
        func durable(_ tag: Int) -> LSN? { lock.withLock { durableSeen[tag] } }
        var allOnQueue: Bool { lock.withLock { onQueue.values.allSatisfy { $0 } } }
    }

    @Test("every completion runs once, on the completion queue, after its record is durable", .hangGuard)
    func concurrentCompletions() async throws {
        let dir = LogTestKit.temporaryPath("when-durable")
        defer { LogTestKit.remove(dir) }
        let log = try LogStore.create(at: dir, options: LogTestKit.options(containerSize: 8 << 20, blockSize: 8192, codec: .lz4))
        let outcomes = Outcomes()
        let targets = LockedBox([Int: LSN]())
        await LogTestKit.onThreads(8) { w in
            for s in 0..<250 {
                let tag = w * 1000 + s
                guard let lsn = try? log.append(LogTestKit.taggedPayload(writer: w, sequence: s, length: 120)) else { return }
                targets.withLock { $0[tag] = lsn }
                log.whenDurable(lsn) { error in outcomes.record(tag, error, durable: log.durableLSN) }
            }
        }
        #expect(await eventually { outcomes.count == 2000 })
        for (tag, lsn) in targets.snapshot {
            #expect(outcomes.calls(tag).count == 1, "completion \(tag) ran \(outcomes.calls(tag).count) times")
            #expect(outcomes.calls(tag).first == .some(nil))
            #expect((outcomes.durable(tag) ?? .null) >= lsn, "completion \(tag) ran before \(lsn) was durable")
        }
        #expect(outcomes.allOnQueue)
        #expect(log.info().statistics.syncs < 2000, "completions share fdatasyncs")
        try log.close()
    }

    @Test("an LSN already durable completes at once; one beyond the log gets invalid-argument", .hangGuard)
    func immediateOutcomes() async throws {
        let dir = LogTestKit.temporaryPath("when-durable-now")
        defer { LogTestKit.remove(dir) }
        let log = try LogStore.create(at: dir, options: LogTestKit.options())
        let lsn = try log.append([1, 2, 3])
        try await log.flush(upTo: lsn)
        let outcomes = Outcomes()
        log.whenDurable(lsn) { outcomes.record(1, $0, durable: log.durableLSN) }
        log.whenDurable(.null) { outcomes.record(2, $0, durable: log.durableLSN) }
        log.whenDurable(LSN(uncheckedContainer: 99, blockOffset: 0, slot: 0)) { outcomes.record(3, $0, durable: log.durableLSN) }
        #expect(await eventually { outcomes.count == 3 })
        #expect(outcomes.calls(1) == [nil] && outcomes.calls(2) == [nil])
        #expect(outcomes.calls(3).first??.code == .invalidArgument)
        #expect(outcomes.allOnQueue)
        try log.close()
    }

    @Test("an fdatasync failure completes every waiting completion with `failed`", .hangGuard)
    func failure() async throws {
        let dir = Kit.temporaryPath("when-durable-fail")
        defer { Kit.remove(dir) }
        let (_, log, first) = try await Kit.logWhoseNextSyncFails(at: dir)
        let outcomes = Outcomes()
        let lsns = try (0..<10).map { try log.append(Kit.payload(100 + $0)) }
        for (i, lsn) in lsns.enumerated() { log.whenDurable(lsn) { outcomes.record(i, $0, durable: log.durableLSN) } }
        #expect(await eventually { outcomes.count == 10 })
        for i in 0..<10 { #expect(outcomes.calls(i).count == 1 && outcomes.calls(i).first??.code == .failed) }
        #expect(log.durableLSN == first)
        #expect(throws: LogError.self) { try log.close() }
    }

    @Test("close runs the completions it owes before returning; a completion may append and ask again", .hangGuard)
    func closeAndReentry() async throws {
        let dir = LogTestKit.temporaryPath("when-durable-close")
        defer { LogTestKit.remove(dir) }
        let log = try LogStore.create(at: dir, options: LogTestKit.options())
        let outcomes = Outcomes()
        let first = try log.append([7])
        log.whenDurable(first) { error in
            outcomes.record(0, error, durable: log.durableLSN)
            // Called into the log from a completion: no deadlock, and the chained completion runs too.
            if let next = try? log.append([8]) {
                log.whenDurable(next) { outcomes.record(1, $0, durable: log.durableLSN) }
            }
        }
        #expect(await eventually { outcomes.count == 2 })
        #expect(outcomes.calls(0) == [nil] && outcomes.calls(1) == [nil])

        for i in 2..<50 {
            let lsn = try log.append([UInt8(i)])
            log.whenDurable(lsn) { outcomes.record(i, $0, durable: log.durableLSN) }
        }
        try log.close()
        #expect(outcomes.count == 50, "close returned with \(50 - outcomes.count) completions not run")
        for i in 2..<50 { #expect(outcomes.calls(i) == [nil]) }
    }
}

@Suite("whenDurable after close")
struct WhenDurableAfterCloseTests {
    @Test("an LSN the close made durable completes with nil, not closed", .hangGuard)
    func durableBeforeClose() async throws {
        let dir = LogTestKit.temporaryPath("when-durable-after-close")
        defer { LogTestKit.remove(dir) }
        let log = try LogStore.create(at: dir, options: LogTestKit.options())
        let lsn = try log.append([1, 2, 3])
        try log.close()
        #expect(log.durableLSN >= lsn)
        let outcomes = WhenDurableTests.Outcomes()
        log.whenDurable(lsn) { outcomes.record(0, $0, durable: log.durableLSN) }
        #expect(await eventually { outcomes.count == 1 })
        #expect(outcomes.calls(0) == [nil], "durable before the close, reported \(String(describing: outcomes.calls(0)))")
    }
}
