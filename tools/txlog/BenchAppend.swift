// `txlog bench append`: how fast one thread can append without flushing (the in-memory path: copy into
// the open block, seal = compress + CRC when it fills; the writer thread writes in the background), and
// the large-record throughput with a flush every 4 MiB (what the disk and page cache sustain).

import ArgumentParser
import Foundation
import LogStore
import TxLogBenchData

struct BenchAppend: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "append",
        abstract: "Appends/s and MB/s without flush (one thread), and 64 KiB records flushed every 4 MiB.")
    @OptionGroup var options: BenchOptions
    @Option(help: "Record sizes in bytes, comma-separated.") var sizes = "64,128,1024,65536"
    @Option(help: "Codecs, comma-separated (none, lz4, zlib:N).") var codecs = "lz4,none"
    @Option(help: "Container size of the bench log in MiB (a run without flush stops when the log is full).")
    var containerMib = 128
    @Option(help: "Containers in the bench log.") var containers = 4

    func run() throws { try withBenchExitCodes(drive) }

    func drive() throws {
        // A negative size trapped making its record.
        let sizeList = try benchList(sizes, option: "--sizes", in: 0...(Format.maxRawBlockLength - RecordHeader.size))
        let codecList = try benchCodecs(codecs)
        guard containerMib >= 1, containerMib <= 4096, containers >= 2 else { throw ValidationError("bad --container-mib or --containers") }
        // Made once the options are checked: a usage error leaves no --dir behind.
        let dir = try BenchDirectory(options.dir)
        let sections = try Self.measure(
            dir: dir, seconds: options.seconds, sizes: sizeList, codecs: codecList, containerSize: UInt64(containerMib) << 20,
            containerCount: containers)
        emit(sections, options: options, dir: dir.root)
    }

    static let defaultSizes = [64, 128, 1024, 65_536]
    static func measure(
        dir: BenchDirectory, seconds: Double, sizes: [Int], codecs: [Codec] = [.lz4, .none], containerSize: UInt64 = 128 << 20,
        containerCount: Int = 4
    ) throws -> [BenchSection] {
        let path = dir.fresh("append-log")
        defer { dir.remove(path) }
        let corpus = Corpus(byteCount: 8 << 20)
        let createStart = nowNanos()
        var create = LogCreateOptions(containerSize: containerSize, containerCount: containerCount)
        create.codec = .lz4
        try LogStore.create(at: path, options: create).close()
        let createSeconds = Double(nowNanos() - createStart) / 1e9

        var fast = BenchSection(
            "append", columns: ["codec", "record", "records/s", "MB/s", "ns/record", "CPU ns/record", "seconds", "syncs"])
        var large = BenchSection(
            "append-large", columns: ["codec", "record", "flush every", "records/s", "MB/s", "fdatasyncs", "seconds"])
        for codec in codecs {
            let log = try openWith(path, codec: codec)
            for size in sizes {
                try recycle(log)
                let r = try appendOnly(log, corpus: corpus, size: size, seconds: seconds)
                fast.add(
                    [codec.description, "\(size) B", rate(r.perSecond), fmt(r.mbps, 0), fmt(1e9 / r.perSecond, 1),
                     fmt(r.cpuNanos, 1), fmt(r.seconds, 2) + (r.full ? " (log filled)" : ""), "\(r.syncs)"],
                    json: ["codec": codec.description, "recordBytes": size, "recordsPerSecond": r.perSecond, "MBps": r.mbps,
                           "cpuNsPerRecord": r.cpuNanos, "seconds": r.seconds, "stoppedAtLogFull": r.full, "syncs": r.syncs])
            }
            try recycle(log)
            let l = try largeFlushed(log, corpus: corpus, size: 65_536, flushEvery: 4 << 20, seconds: seconds)
            large.add(
                [codec.description, "64 KiB", "4 MiB", rate(l.perSecond), fmt(l.mbps, 0), "\(l.syncs)", fmt(l.seconds, 2)],
                json: ["codec": codec.description, "recordBytes": 65_536, "flushEveryBytes": 4 << 20, "recordsPerSecond": l.perSecond,
                       "MBps": l.mbps, "syncs": l.syncs, "seconds": l.seconds])
            try log.close()
        }
        fast.notes.append("one thread, no flush; MB/s counts record payload (10^6 bytes); CPU is the whole process (appender + writer)")
        fast.notes.append(String(format: "log: %d containers x %@, created (zero-filled) in %.2f s; a run ends early when the log has no room left (--container-mib, --containers)",
                                 containerCount, formatBytes(containerSize), createSeconds))
        large.notes.append("sync flush after every 64 records (4 MiB); containers are recycled when full; compare with fio --bs=1M --rw=write")
        return [fast, large]
    }

    static func openWith(_ path: String, codec: Codec) throws -> LogStore {
        var open = LogOpenOptions()
        open.codec = codec
        return try LogStore.open(at: path, options: open)
    }

    /// Makes everything durable and moves the base to the end, so every other container is free.
    static func recycle(_ log: LogStore) throws {
        let last = log.lastLSN
        guard last.isValid else { return }
        try log.flush()
        if last > log.baseLSN { try log.advanceBase(to: last) }
    }

    struct Result {
        var perSecond: Double
        var mbps: Double
        var cpuNanos: Double
        var seconds: Double
        var syncs: UInt64
        var full: Bool
    }

    static func appendOnly(_ log: LogStore, corpus: Corpus, size: Int, seconds: Double) throws -> Result {
        let perRecord = RecordHeader.footprint(dataLength: size) + (size >= 32_768 ? BlockHeader.size + 512 : 8)
        // Warm the block pool, within a quarter of the free space: 2,000 records of 64 KiB are 128 MiB,
        // more than a small log (--container-mib) holds, and filling it here failed the run with log-full.
        let warmUp = min(2_000, max(0, (Int(log.info().freeBytes) - 4 * 65_536) / perRecord / 4))
        for i in 0..<warmUp { try log.append(corpus.record(i, size: size)) }
        let syncs0 = log.info().statistics.syncs
        let cpu0 = processCPUSeconds()
        let start = nowNanos()
        let deadline = start + UInt64(seconds * 1e9)
        var count = 0
        var full = false
        // Stop before the log is full (a full log would flush and recycle, which is not what this measures):
        // check the free space again only after using half of it, so the check costs nothing per record.
        var budget = 0
        while true {
            if budget < 1_024 {
                budget = (Int(log.info().freeBytes) - 4 * 65_536) / perRecord / 2
                // Shorter runs of appends near the end: a small log may not hold 1,024 large records.
                if budget < 1 {
                    full = true
                    break
                }
            }
            let run = min(1_024, budget)
            for _ in 0..<run {
                try log.append(corpus.record(count, size: size))
                count += 1
            }
            budget -= run
            if nowNanos() >= deadline { break }
        }
        let elapsed = Double(nowNanos() - start) / 1e9
        let cpu = processCPUSeconds() - cpu0
        let syncs = log.info().statistics.syncs - syncs0
        let perSecond = Double(count) / elapsed
        return Result(
            perSecond: perSecond, mbps: perSecond * Double(size) / 1e6, cpuNanos: cpu / Double(max(count, 1)) * 1e9,
            seconds: elapsed, syncs: syncs, full: full)
    }

    static func largeFlushed(_ log: LogStore, corpus: Corpus, size: Int, flushEvery: Int, seconds: Double) throws -> Result {
        let perFlush = max(1, flushEvery / size)
        let syncs0 = log.info().statistics.syncs
        let cpu0 = processCPUSeconds()
        let start = nowNanos()
        let deadline = start + UInt64(seconds * 1e9)
        var count = 0
        while nowNanos() < deadline {
            var lsn = LSN.null
            for _ in 0..<perFlush {
                lsn = try appendRecycling(log, corpus.record(count, size: size))
                count += 1
            }
            try log.flush(upTo: lsn)
        }
        let elapsed = Double(nowNanos() - start) / 1e9
        let cpu = processCPUSeconds() - cpu0
        let perSecond = Double(count) / elapsed
        return Result(
            perSecond: perSecond, mbps: perSecond * Double(size) / 1e6, cpuNanos: cpu / Double(max(count, 1)) * 1e9,
            seconds: elapsed, syncs: log.info().statistics.syncs - syncs0, full: false)
    }
}
