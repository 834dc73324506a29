// CRC32C: the SSE4.2 path (`CRC32C.checksum`, 3-way interleaved for large buffers) against the portable
// slice-by-8 path (`CRC32C.softwareChecksum`). Throughput is checksums per second; the "MB/s" custom
// metric is bytes per second / 10^6 for the iteration.

import Benchmark
import BenchFixtures
import LogStore

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput],
        warmupIterations: 10,
        maxDuration: .seconds(1),
        maxIterations: 1_000_000)

    let megabytesPerSecond = BenchmarkMetric.custom("MB/s", polarity: .prefersLarger, useScalingFactor: false)
    let corpus = Corpus(byteCount: 1 << 20)
    for size in [64, 4_096, 65_536, 1 << 20] {
        for (name, hardware) in [("hardware", true), ("software", false)] {
            Benchmark(
                "crc32c \(name) \(size) B",
                configuration: .init(
                    metrics: Benchmark.defaultConfiguration.metrics + [megabytesPerSecond],
                    scalingFactor: size <= 4_096 ? .kilo : .one)
            ) { benchmark in
                let block = UnsafeRawBufferPointer(rebasing: corpus.bytes[0..<size])  // captures (keeps) the corpus
                let start = nowNanos()
                var acc: UInt32 = 0
                for _ in benchmark.scaledIterations {
                    acc ^= hardware ? CRC32C.checksum(block) : CRC32C.softwareChecksum(block)
                }
                blackHole(acc)
                let nanos = max(1, nowNanos() - start)
                benchmark.measurement(megabytesPerSecond, size * benchmark.scaledIterations.count * 1_000 / Int(nanos))
            }
        }
    }
}
