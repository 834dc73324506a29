// `txlog bench scan`: recovery and reading. A child process (`txlog bench fill`) writes N MiB of records,
// flushes, and exits without closing the log, as a crash would leave it; then this process times a
// read-only open and the recovering open of that log, an open after a clean close, and a cursor scan over
// every record.

import ArgumentParser
import Foundation
import LogStore
import TxLogBenchData

struct BenchScan: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scan",
        abstract: "Recovery (open) time of a log with N MiB written, and cursor scan MB/s.")
    @OptionGroup var options: BenchOptions
    @Option(help: "MiB of record payload to write.") var mib = 64
    @Option(help: "Record size in bytes.") var recordSize = 256

    func run() throws { try withBenchExitCodes(drive) }

    func drive() throws {
        // The fill child cuts its records from a corpus of `fillCorpusBytes`: a larger record was cut short.
        guard mib > 0, mib <= 16_384 else { throw ValidationError("--mib: 1...16384") }
        guard (1...Self.fillCorpusBytes).contains(recordSize) else { throw ValidationError("--record-size: 1...\(Self.fillCorpusBytes)") }
        let dir = try BenchDirectory(options.dir)
        emit([try Self.measure(dir: dir, seconds: options.seconds, mib: mib, recordSize: recordSize)], options: options, dir: dir.root)
    }

    static func measure(dir: BenchDirectory, seconds: Double, mib: Int, recordSize: Int) throws -> BenchSection {
        var section = BenchSection("scan", columns: ["operation", "log", "time ms", "MB/s", "records/s", "blocks scanned"])
        let path = dir.fresh("scan-log")
        defer { dir.remove(path) }
        // One container holds everything, so recovery scans all of it (it starts at the tail container).
        let containerSize = UInt64(((mib * 9 / 8) + 8 + 1) / 2 * 2) << 20
        try LogStore.create(at: path, options: LogCreateOptions(containerSize: containerSize, containerCount: 2)).close()
        let fillStart = nowNanos()
        try runFillChild(path: path, mib: mib, recordSize: recordSize)
        let fillSeconds = Double(nowNanos() - fillStart) / 1e9
        let payload = Double(mib << 20)
        let label = "\(mib) MiB, \(recordSize) B records"
        func row(_ op: String, _ nanos: UInt64, records: Int?, blocks: Int?) {
            let s = Double(nanos) / 1e9
            let mbps = payload / s / 1e6
            let rps = records.map { Double($0) / s }
            section.add(
                [op, label, fmt(s * 1000, 1), fmt(mbps, 0), rps.map(rate) ?? "-", blocks.map { "\($0)" } ?? "-"],
                json: ["operation": op, "payloadBytes": mib << 20, "recordBytes": recordSize, "milliseconds": s * 1000, "MBps": mbps,
                       "recordsPerSecond": rps ?? 0, "blocksScanned": blocks ?? 0])
        }
        // 1. A read-only open (no lock, no writes) of the crashed log: the same scan, and the log stays as the
        // crash left it. It came after the clean close, whose base file has the scan start at the end, so it
        // scanned no block and its time said nothing about the log's size.
        var start = nowNanos()
        var log = try LogStore.open(at: path, options: LogOpenOptions(readOnly: true))
        row("open read-only after crash", nowNanos() - start, records: nil, blocks: log.recoveryReport.blocksScanned)
        try log.close()
        // 2. The open after the crash: recovery scan, torn-tail check, new epoch.
        start = nowNanos()
        log = try LogStore.open(at: path)
        row("open after crash (recovery)", nowNanos() - start, records: nil, blocks: log.recoveryReport.blocksScanned)
        try log.close()
        // 3. The open after a clean close: the scan starts at the end the close recorded.
        start = nowNanos()
        log = try LogStore.open(at: path)
        row("open after clean close", nowNanos() - start, records: nil, blocks: log.recoveryReport.blocksScanned)
        try log.close()
        // 4. Cursor scans: best of whole passes within the budget.
        let reader = try LogStore.open(at: path, options: LogOpenOptions(readOnly: true))
        var best = UInt64.max
        var records = 0
        let budget = UInt64(max(0.2, seconds) * 1e9)
        let scanStart = nowNanos()
        repeat {
            let passStart = nowNanos()
            var cursor = try reader.records()
            var n = 0
            var bytes = 0
            while let r = try cursor.next() {
                n += 1
                bytes += r.data.count
            }
            best = min(best, nowNanos() - passStart)
            records = n
            guard bytes == mib << 20 else { throw BenchError("scan read \(bytes) bytes, expected \(mib << 20)") }
        } while nowNanos() - scanStart < budget
        row("cursor scan (best pass)", best, records: records, blocks: nil)
        section.notes.append(String(format: "written by a child process (%.2f s) that flushed and exited without closing; lz4 blocks; page cache warm", fillSeconds))
        return section
    }

    /// Bytes of synthetic records the fill child cuts its records from: the largest record size.
    static let fillCorpusBytes = 4 << 20

    static func runFillChild(path: String, mib: Int, recordSize: Int) throws {
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        child.arguments = ["bench", "fill", path, "--mib", "\(mib)", "--record-size", "\(recordSize)"]
        try child.run()
        child.waitUntilExit()
        guard child.terminationStatus == 0 else { throw BenchError("bench fill exited with \(child.terminationStatus)") }
    }
}

/// The child of `bench scan`: writes exactly N MiB of record payload, flushes, and exits without closing.
struct BenchFill: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fill", abstract: "Write N MiB of records, flush, exit without closing (used by bench scan).", shouldDisplay: false)
    @Argument var path: String
    @Option var mib = 64
    @Option var recordSize = 256

    func run() throws { try withBenchExitCodes(drive) }

    func drive() throws {
        let corpus = Corpus(byteCount: BenchScan.fillCorpusBytes)
        let log = try LogStore.open(at: path)
        var left = mib << 20
        var i = 0
        while left > 0 {
            let n = min(recordSize, left)
            try log.append(corpus.record(i, size: n))
            left -= n
            i += 1
        }
        try log.flush()
        _exit(0)  // no close: the base file still says the log is open, as after a crash
    }
}
