// The custom metrics of the suites that time durable commits (GroupCommitBenchmarks,
// TransactionBenchmarks), and the one loop that measures them: N concurrent tasks, each running
// `perClient` commits, every commit timed.

import Benchmark
import LogStore

/// "commits/s" for the iteration, "commits per fdatasync x100" (from `log.info().statistics.syncs`),
/// and "commit latency (us)" for every single commit.
public struct CommitMetrics: Sendable {
    public let commitsPerSecond = BenchmarkMetric.custom("commits/s", polarity: .prefersLarger, useScalingFactor: false)
    public let perSync = BenchmarkMetric.custom("commits per fdatasync x100", polarity: .prefersLarger, useScalingFactor: false)
    public let latency = BenchmarkMetric.custom("commit latency (us)", polarity: .prefersSmaller, useScalingFactor: false)

    public init() {}

    /// The three custom metrics.
    public var custom: [BenchmarkMetric] { [commitsPerSecond, perSync, latency] }

    /// Runs `clients` tasks of `perClient` commits each on `log` and records the three metrics.
    /// `commit(client, index)` makes one commit durable (an append and a flush, or a whole transaction).
    public func measure(
        _ benchmark: Benchmark, log: LogStore, clients: Int, perClient: Int,
        commit: @escaping @Sendable (_ client: Int, _ index: Int) async throws -> Void
    ) async throws {
        let syncs0 = log.info().statistics.syncs
        let start = nowNanos()
        let samples = try await withThrowingTaskGroup(of: [UInt64].self) { group in
            for c in 0..<clients {
                group.addTask {
                    var lat: [UInt64] = []
                    lat.reserveCapacity(perClient)
                    for k in 0..<perClient {
                        let t0 = nowNanos()
                        try await commit(c, k)
                        lat.append(nowNanos() - t0)
                    }
                    return lat
                }
            }
            var all: [UInt64] = []
            for try await l in group { all.append(contentsOf: l) }
            return all
        }
        let nanos = max(1, nowNanos() - start)
        let syncs = max(1, Int(log.info().statistics.syncs - syncs0))
        benchmark.measurement(commitsPerSecond, samples.count * 1_000_000_000 / Int(nanos))
        benchmark.measurement(perSync, samples.count * 100 / syncs)
        for s in samples { benchmark.measurement(latency, Int(s / 1_000)) }
    }
}
