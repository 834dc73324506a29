// Group commit through the async API: W concurrent tasks each commit (append + `await flush(upTo:)`)
// `commitsPerWriter` records per iteration, so one iteration is W x commitsPerWriter durable commits.
// Custom metrics: "commits/s" for the iteration, "commits per fdatasync x100" (from
// `log.info().statistics.syncs`), and "commit latency (us)" for every single commit.
// `txlog bench commit` measures the same with dedicated threads and the synchronous flush.

import Benchmark
import BenchFixtures
import LogStore

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .cpuTotal, .mallocCountTotal],
        warmupIterations: 3,
        maxDuration: .seconds(2),
        maxIterations: 100_000)

    let commitsPerSecond = BenchmarkMetric.custom("commits/s", polarity: .prefersLarger, useScalingFactor: false)
    let perSync = BenchmarkMetric.custom("commits per fdatasync x100", polarity: .prefersLarger, useScalingFactor: false)
    let latency = BenchmarkMetric.custom("commit latency (us)", polarity: .prefersSmaller, useScalingFactor: false)
    let corpus = Corpus(byteCount: 4 << 20)
    let commitsPerWriter = 8

    for writers in [1, 4, 16, 64] {
        for size in [128, 1_024, 16_384] {
            let fixture = LogFixture("commit-\(writers)-\(size)")
            Benchmark(
                "commit \(writers) writers \(size) B",
                configuration: .init(
                    metrics: Benchmark.defaultConfiguration.metrics + [commitsPerSecond, perSync, latency],
                    setup: { try fixture.create(containerSize: 64 << 20, containerCount: 4) },
                    teardown: { fixture.remove() })
            ) { benchmark in
                let log = fixture.log
                let base = fixture.counter
                fixture.counter &+= writers * commitsPerWriter
                let syncs0 = log.info().statistics.syncs
                let start = nowNanos()
                let samples = try await withThrowingTaskGroup(of: [UInt64].self) { group in
                    for w in 0..<writers {
                        group.addTask {
                            var lat: [UInt64] = []
                            lat.reserveCapacity(commitsPerWriter)
                            for k in 0..<commitsPerWriter {
                                let t0 = nowNanos()
                                let lsn = try await appendRecycling(log, corpus.record(base &+ w &* commitsPerWriter &+ k, size: size))
                                try await log.flush(upTo: lsn)
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
    }
}
