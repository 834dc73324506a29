// Appends without flush, one thread: the in-memory path (copy into the open block; when it fills, seal
// it = compress + CRC32C; the writer thread writes in the background). Mallocs per append should be ~0:
// the block buffers are pooled. With scalingFactor .kilo each iteration is 1,000 appends; run with
// `--scale` to see time and mallocs per append.

import Benchmark
import BenchFixtures
import LogStore

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .cpuTotal, .mallocCountTotal],
        warmupIterations: 10,
        maxDuration: .seconds(2),
        maxIterations: 1_000_000)

    let corpus = Corpus(byteCount: 8 << 20)

    // What the harness itself costs per iteration (subtract it from the unscaled 64 KiB figures).
    Benchmark("noop (harness overhead per iteration)", configuration: .init(scalingFactor: .one)) { _ in }

    for codec in [Codec.lz4, .none] {
        for size in [64, 128, 1_024, 65_536] {
            let fixture = LogFixture("append-\(codec)-\(size)")
            let scaling: BenchmarkScalingFactor = size >= 65_536 ? .one : .kilo
            Benchmark(
                "append \(size) B, \(codec), no flush",
                configuration: .init(
                    scalingFactor: scaling,
                    setup: { try fixture.create(containerSize: 256 << 20, containerCount: 4, codec: codec) },
                    teardown: { fixture.remove() })
            ) { benchmark in
                let log = fixture.log
                var i = fixture.counter
                for _ in benchmark.scaledIterations {
                    try appendRecycling(log, corpus.record(i, size: size))
                    i &+= 1
                }
                fixture.counter = i
            }
        }
    }
}
