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

    let commitMetrics = CommitMetrics()
    let corpus = Corpus(byteCount: 4 << 20)
    let commitsPerWriter = 8

    for writers in [1, 4, 16, 64] {
        for size in [128, 1_024, 16_384] {
            let fixture = LogFixture("commit-\(writers)-\(size)")
            Benchmark(
                "commit \(writers) writers \(size) B",
                configuration: .init(
                    metrics: Benchmark.defaultConfiguration.metrics + commitMetrics.custom,
                    setup: { try fixture.create(containerSize: 64 << 20, containerCount: 4) },
                    teardown: { fixture.remove() })
            ) { benchmark in
                let log = fixture.log
                let base = fixture.counter
                fixture.counter &+= writers * commitsPerWriter
                try await commitMetrics.measure(benchmark, log: log, clients: writers, perClient: commitsPerWriter) { w, k in
                    let lsn = try await appendRecycling(log, corpus.record(base &+ w &* commitsPerWriter &+ k, size: size))
                    try await log.flush(upTo: lsn)
                }
            }
        }
    }
}
