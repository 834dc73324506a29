// Recovery and reading of a log with N MiB of 256-byte records written (lz4 blocks, page cache warm),
// left as a crash leaves it (`LogFixture.crash()`), so that every open scans all of its blocks; after a
// clean close the scan start sits at the end and an open scans nothing. "open" is the writable open:
// lock, recovery scan, new epoch; only the open is measured, not the close nor putting the crashed files
// back before the next iteration. "open read-only" scans without writing. Both check that the whole log
// was scanned. "cursor scan" reads every record in LSN order; the "MB/s" custom metric is record
// payload / 10^6 per second.

import Benchmark
import BenchFixtures
import LogStore

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .cpuTotal, .mallocCountTotal],
        warmupIterations: 1,
        maxDuration: .seconds(3),
        maxIterations: 1_000)

    let megabytesPerSecond = BenchmarkMetric.custom("MB/s", polarity: .prefersLarger, useScalingFactor: false)
    let recordSize = 256

    for mib in [16, 64] {
        let fixture = LogFixture("scan-\(mib)")
        let setup: () throws -> Void = {
            // One container holds everything, so the recovery scan covers all of it.
            try fixture.create(containerSize: UInt64(mib + mib / 4 + 8) << 20, containerCount: 2)
            let corpus = Corpus(byteCount: 4 << 20)
            for i in 0..<((mib << 20) / recordSize) { try fixture.log.append(corpus.record(i, size: recordSize)) }
            try fixture.crash()
        }
        /// Fails the benchmark unless the open scanned the whole log: a measured open that scanned nothing
        /// (after a clean close, say) would report a recovery it did not do.
        func checkScanned(_ report: RecoveryReport) {
            precondition(!report.cleanShutdown && report.blocksScanned > (mib << 20) / (1 << 17), "the open scanned \(report.blocksScanned) blocks")
        }

        Benchmark("open \(mib) MiB (recovery scan)", configuration: .init(setup: setup, teardown: { fixture.remove() })) { benchmark in
            try fixture.restoreCrash()
            benchmark.startMeasurement()
            try fixture.open()
            benchmark.stopMeasurement()
            checkScanned(fixture.log.recoveryReport)
            try fixture.close()
        }

        Benchmark("open read-only \(mib) MiB", configuration: .init(setup: setup, teardown: { fixture.remove() })) { benchmark in
            benchmark.startMeasurement()
            try fixture.open(LogOpenOptions(readOnly: true))
            benchmark.stopMeasurement()
            checkScanned(fixture.log.recoveryReport)
            try fixture.close()
        }

        Benchmark(
            "cursor scan \(mib) MiB",
            configuration: .init(
                metrics: Benchmark.defaultConfiguration.metrics + [megabytesPerSecond],
                setup: {
                    try setup()
                    try fixture.open(LogOpenOptions(readOnly: true))
                },
                teardown: { fixture.remove() })
        ) { benchmark in
            let start = nowNanos()
            var cursor = try fixture.log.records()
            var bytes = 0
            while let r = try cursor.next() { bytes += r.data.count }
            let nanos = max(1, nowNanos() - start)
            precondition(bytes == mib << 20, "scan read \(bytes) bytes")
            benchmark.measurement(megabytesPerSecond, bytes * 1_000 / Int(nanos))
        }
    }
}
