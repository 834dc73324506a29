// `txlog bench streams`: what multiplexing costs. (1) A reader of one stream that holds 1% of the log
// skips the blocks holding none of its records (their stream summary says so) after a CRC check,
// without decompressing them; compared with decoding every block and filtering. (2) Appends spread over
// 8 streams against appends to one stream, one thread, no flush.

import ArgumentParser
import Foundation
import LogStore
import TxLogBenchData

struct BenchStreams: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "streams",
        abstract: "Stream reader skipping other streams' blocks vs decoding every block; appends over 8 streams vs 1.")
    @OptionGroup var options: BenchOptions
    @Option(help: "MiB of records to write for the reader comparison.") var mib = 64

    func run() throws { try withBenchExitCodes(drive) }

    func drive() throws {
        // Unchecked, a negative count measured empty logs and a huge one trapped sizing the containers.
        guard (1...16_384).contains(mib) else { throw ValidationError("--mib: 1...16384") }
        let dir = try BenchDirectory(options.dir)
        emit(try BenchStreams.measure(dir: dir, seconds: options.seconds, mib: mib), options: options, dir: dir.root)
    }

    static func measure(dir: BenchDirectory, seconds: Double, mib: Int) throws -> [BenchSection] {
        [try reader(dir: dir, mib: mib), try appends(dir: dir, seconds: seconds)]
    }

    /// The rare stream writes bursts of 50 records every 5,000 records of the bulk stream (1%).
    static func reader(dir: BenchDirectory, mib: Int) throws -> BenchSection {
        let path = dir.fresh("streams-reader")
        defer { dir.remove(path) }
        var create = LogCreateOptions()
        create.containerSize = UInt64(max(8, (mib + 3) / 2)) << 20
        create.containerCount = 4
        let log = try LogStore.create(at: path, options: create)
        let bulk = try log.createStream("bulk")
        let rare = try log.createStream("rare")
        var gen = SyntheticRecords(seed: 7)
        var buffer = [UInt8](repeating: 0, count: 512)
        var written = 0
        var rareCount = 0
        var i = 0
        while written < mib << 20 {
            let n = buffer.withUnsafeMutableBytes { gen.write(into: $0) }
            let target = (i % 5000) < 50 && i >= 5000 ? rare : bulk
            _ = try buffer.withUnsafeBytes { try target.append(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            if target === rare { rareCount += 1 }
            written += n
            i += 1
        }
        try log.close()
        let reopened = try LogStore.open(at: path, options: LogOpenOptions(readOnly: true))
        let rareID = try reopened.openStream("rare").id
        func time(_ body: () throws -> Int) rethrows -> (Double, Int) {
            let t0 = nowNanos()
            let n = try body()
            return (Double(nowNanos() - t0) / 1e9, n)
        }
        // Best of three passes each, so both run on a warm page cache.
        var full = Double.infinity
        var skip = Double.infinity
        var seenFull = 0
        var seenSkip = 0
        for _ in 0..<3 {
            let (tf, nf) = try time {
                var c = try reopened.records()
                var n = 0
                while let r = try c.next() { if r.stream == rareID { n += 1 } }
                return n
            }
            let (ts, ns) = try time {
                var c = try reopened.openStream("rare").records()
                var n = 0
                while try c.next() != nil { n += 1 }
                return n
            }
            full = min(full, tf)
            skip = min(skip, ts)
            seenFull = nf
            seenSkip = ns
        }
        try reopened.close()
        guard seenFull == rareCount, seenSkip == rareCount else {
            throw BenchError("stream reader saw \(seenSkip) records and the full scan \(seenFull); \(rareCount) were written")
        }
        var section = BenchSection("streams-reader", columns: ["reader", "records found", "seconds", "speedup"])
        section.add(
            ["decode every block", "\(seenFull)", fmt(full, 4), "1.0x"],
            json: ["reader": "full", "records": seenFull, "seconds": full])
        section.add(
            ["stream cursor (skips)", "\(seenSkip)", fmt(skip, 4), fmt(full / skip) + "x"],
            json: ["reader": "stream", "records": seenSkip, "seconds": skip, "speedup": full / skip])
        section.notes.append(
            "\(mib) MiB of synthetic records, lz4; stream 'rare' holds \(fmt(100 * Double(rareCount) / Double(i), 2))% of the records in bursts; best of 3 warm passes")
        return section
    }

    /// One thread appending 128-byte records round-robin over 8 streams, against one stream. The two
    /// alternate three times and the best rate of each counts, so machine noise and the write-back of the
    /// previous run's zero-filled containers do not favour either.
    static func appends(dir: BenchDirectory, seconds: Double) throws -> BenchSection {
        var section = BenchSection("streams-append", columns: ["streams", "records/s", "ns/record", "overhead"])
        var best: [Int: Double] = [:]
        for _ in 0..<3 {
            for count in [1, 8] { best[count] = max(best[count] ?? 0, try appendRate(dir: dir, streams: count, seconds: seconds)) }
        }
        let baseline = best[1] ?? 1
        for count in [1, 8] {
            let r = best[count] ?? 0
            let overhead = count == 1 ? 0 : (baseline / r - 1) * 100
            section.add(
                ["\(count)", rate(r), fmt(1e9 / r), count == 1 ? "-" : fmt(overhead) + "%"],
                json: ["streams": count, "recordsPerSecond": r, "overheadPercent": overhead])
        }
        section.notes.append("one thread, 128 B records, codec none, no flush; best of 3 alternating runs; overhead = time per record over the one-stream run")
        return section
    }

    static func appendRate(dir: BenchDirectory, streams count: Int, seconds: Double) throws -> Double {
        let path = dir.fresh("streams-append-\(count)")
        defer { dir.remove(path) }
        var create = LogCreateOptions()
        create.containerSize = 64 << 20
        create.containerCount = 4
        create.codec = .none
        let log = try LogStore.create(at: path, options: create)
        let streams = try (0..<count).map { try log.createStream("s\($0)") }
        let record = [UInt8](repeating: 0x5A, count: 128)
        var n = 0
        let t0 = nowNanos()
        let deadline = t0 + UInt64(seconds * 1e9)
        try record.withUnsafeBytes { bytes in
            outer: while true {
                for _ in 0..<1024 {
                    do { _ = try streams[n & (count - 1)].append(bytes) } catch let e as LogError where e.code == .logFull {
                        break outer
                    }
                    n += 1
                }
                if nowNanos() >= deadline { break }
            }
        }
        let elapsed = Double(nowNanos() - t0) / 1e9
        try log.close()
        return Double(n) / elapsed
    }
}
