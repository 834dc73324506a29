// Block compression on synthetic transaction-log records, in 64 KiB blocks compressed independently as
// sealed blocks are. Each iteration compresses (or decompresses) one block. Custom metrics: "MB/s" of
// raw bytes (10^6) and "ratio x1000" (raw / compressed, times 1000). `none` is the copy a seal does.

import Benchmark
import BenchFixtures
import LogStore

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        warmupIterations: 5,
        maxDuration: .seconds(2),
        maxIterations: 100_000)

    let megabytesPerSecond = BenchmarkMetric.custom("MB/s", polarity: .prefersLarger, useScalingFactor: false)
    let ratio = BenchmarkMetric.custom("ratio x1000", polarity: .prefersLarger, useScalingFactor: false)
    let blockSize = 65_536
    let corpus = Corpus(byteCount: 16 << 20)
    let blockCount = corpus.bytes.count / blockSize
    func block(_ i: Int) -> UnsafeRawBufferPointer {
        let start = (i % blockCount) * blockSize
        return UnsafeRawBufferPointer(rebasing: corpus.bytes[start..<(start + blockSize)])
    }
    let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: blockSize * 2, alignment: 64)
    let codecs: [Codec] = [.none, .lz4, .zlib(level: 1), .zlib(level: 6), .zlib(level: 9)]

    for codec in codecs {
        // Compressed copies of every block, for the decompression benchmark and the ratio.
        var stored: [[UInt8]] = []
        var packed = 0
        for i in 0..<blockCount {
            let raw = block(i)
            if let n = codec.compress(raw, into: UnsafeMutableRawBufferPointer(rebasing: scratch[0..<blockSize])) {
                stored.append(Array(UnsafeRawBufferPointer(rebasing: scratch[0..<n])))
            } else {
                stored.append(Array(raw))
            }
            packed += stored[i].count
        }
        let ratioValue = corpus.bytes.count * 1_000 / packed
        let frozen = stored
        var next = 0

        Benchmark("compress \(codec) 64 KiB", configuration: .init(metrics: Benchmark.defaultConfiguration.metrics + [megabytesPerSecond, ratio])) {
            benchmark in
            let raw = block(next)
            next += 1
            let start = nowNanos()
            let target = UnsafeMutableRawBufferPointer(rebasing: scratch[0..<blockSize])
            if codec.compress(raw, into: target) == nil { target.copyMemory(from: raw) }
            let nanos = max(1, nowNanos() - start)
            benchmark.measurement(megabytesPerSecond, blockSize * 1_000 / Int(nanos))
            benchmark.measurement(ratio, ratioValue)
        }

        Benchmark("decompress \(codec) 64 KiB", configuration: .init(metrics: Benchmark.defaultConfiguration.metrics + [megabytesPerSecond])) {
            benchmark in
            let i = next % blockCount
            next += 1
            let start = nowNanos()
            let target = UnsafeMutableRawBufferPointer(rebasing: scratch[0..<blockSize])
            try frozen[i].withUnsafeBytes { src in
                try (frozen[i].count == blockSize ? Codec.none : codec).decompress(src, into: target)
            }
            let nanos = max(1, nowNanos() - start)
            benchmark.measurement(megabytesPerSecond, blockSize * 1_000 / Int(nanos))
        }
    }
}
