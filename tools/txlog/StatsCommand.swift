import ArgumentParser
import Foundation
import LogStore

struct StatsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats", abstract: "Compression, block fill, records per block and bytes per stream (read-only).",
        discussion: """
            Scans every block of every container holding data (like verify) and prints: the compression ratio \
            per codec (raw bytes / stored bytes), block fill (raw payload bytes / block size), records per block, \
            records and data bytes per stream. The fsync batch histogram is counted by the writing process \
            (LogInfo.statistics); a read-only open has none, so it is reported as unavailable. Damaged blocks are \
            skipped and counted; the exit code is then 1.

            Exit codes: 0 success, 1 corruption found, 2 cannot open, 4 I/O error, 64 usage error (all: \
            txlog --help).

            Examples:
              txlog stats /var/lib/app/log
              txlog stats /var/lib/app/log --json | jq '.codecs'
            """)

    @Argument(help: "The log directory.") var path: String
    @Flag(help: "Print JSON (schema: docs/tools/txlog.md).") var json = false

    func run() throws {
        let log = try openForReading(path, mode: .pointInTime)
        let info = log.info()
        let bar = ProgressBar("stats", workBytes: scanWork(info))
        let report: ScanReport
        var s = Stats(info: info)
        do { report = try log.walkBlocks(keepGoing: true, progress: bar.update) { s.add($0) } } catch {
            bar.finish()
            throw fail(error)
        }
        bar.finish()
        s.count(report.problems)
        if json { printJSON(s.json) } else { s.printText() }
        if !report.problems.isEmpty {
            FileHandle.standardError.write(Data("txlog: corrupt: \(damageSummary(report.problems, blocks: "skipped")); run txlog verify\n".utf8))
            throw ToolExit.corruption
        }
    }
}

/// Records and data bytes per stream, counted alike by `stats` (from the block walk, with the blocks
/// each stream has records in) and `dump --stats` (from the records it selected).
struct StreamTally {
    struct Row { var records = 0, bytes = 0, blocks = 0 }
    var rows: [UInt16: Row] = [:]

    mutating func add(_ stream: UInt16, records: Int, bytes: Int, blocks: Int = 0) {
        var row = rows[stream, default: Row()]
        row.records += records
        row.bytes += bytes
        row.blocks += blocks
        rows[stream] = row
    }

    /// One object per stream, by id: `streamID`, `streamName`, `records`, `dataBytes` (and `blocks`, and
    /// the older `id` and `name`, for `stats`).
    func json(_ names: [UInt16: String], blocks: Bool) -> [[String: Any]] {
        rows.keys.sorted().map { id -> [String: Any] in
            let s = rows[id]!
            var row: [String: Any] = ["streamID": Int(id), "streamName": names[id] ?? NSNull(), "records": s.records, "dataBytes": s.bytes]
            if blocks { row.merge(["id": Int(id), "name": names[id] ?? NSNull(), "blocks": s.blocks]) { a, _ in a } }
            return row
        }
    }

    /// One line per stream, by id: id, name, records, data bytes (and blocks).
    func printText(_ names: [UInt16: String], blocks: Bool) {
        for id in rows.keys.sorted() {
            let s = rows[id]!
            print("  \(id)\t\(streamLabel(id, names))\t\(s.records) records\t\(formatBytes(UInt64(s.bytes)))" + (blocks ? "\tin \(s.blocks) blocks" : ""))
        }
    }
}

struct Stats {
    struct CodecRow { var blocks = 0, raw = 0, stored = 0, disk = 0 }
    var codecs: [String: CodecRow] = [:]
    var streams = StreamTally()
    var blocks = 0, records = 0, raw = 0, stored = 0, disk = 0, data = 0
    var fillMin = Double.infinity, fillMax = 0.0, fillSum = 0.0
    var perBlockMin = Int.max, perBlockMax = 0
    let blockSize: Int
    let names: [UInt16: String]
    /// Damaged blocks, skipped; and the other problems the scan found (in the base file, container headers),
    /// which are no block.
    var damagedBlocks = 0, otherProblems = 0
    let histogram: [UInt64]

    /// Empty figures for the log `info` describes; the walk ``add(_:)``s each valid block (nothing is kept
    /// per block, so memory does not grow with the log), then ``count(_:)`` takes its problems.
    init(info: LogInfo) {
        blockSize = info.blockSize
        names = Dictionary(info.streams.map { ($0.id, $0.name) }, uniquingKeysWith: { a, _ in a })
        histogram = info.statistics.batchBlocksHistogram
    }

    mutating func count(_ problems: [ScanProblem]) {
        damagedBlocks = problems.filter { $0.kind == .block }.count
        otherProblems = problems.count - damagedBlocks
    }

    mutating func add(_ b: ScannedBlock) {
        blocks += 1
        records += b.recordCount
        raw += b.rawLength
        stored += b.storedLength
        disk += b.diskLength
        var c = codecs[b.codec.description, default: CodecRow()]
        c.blocks += 1
        c.raw += b.rawLength
        c.stored += b.storedLength
        c.disk += b.diskLength
        codecs[b.codec.description] = c
        let fill = Double(b.rawLength) / Double(blockSize)
        fillMin = min(fillMin, fill)
        fillMax = max(fillMax, fill)
        fillSum += fill
        perBlockMin = min(perBlockMin, b.recordCount)
        perBlockMax = max(perBlockMax, b.recordCount)
        for (id, u) in b.streams {
            streams.add(id, records: u.records, bytes: u.dataBytes, blocks: 1)
            data += u.dataBytes
        }
    }

    var histogramAvailable: Bool { histogram.contains { $0 > 0 } }
    static let histogramNote =
        "fsync batches are counted by the process that writes the log (LogInfo.statistics); a read-only open sees none"

    func ratio(_ raw: Int, _ stored: Int) -> Double { stored == 0 ? 0 : rounded(Double(raw) / Double(stored)) }

    var json: [String: Any] {
        let empty = blocks == 0
        return [
            "blocks": blocks, "records": records, "blockSize": blockSize, "damagedBlocks": damagedBlocks,
            "rawBytes": raw, "storedBytes": stored, "diskBytes": disk, "dataBytes": data, "compressionRatio": ratio(raw, stored),
            "codecs": codecs.keys.sorted().map { k -> [String: Any] in
                let c = codecs[k]!
                return ["codec": k, "blocks": c.blocks, "rawBytes": c.raw, "storedBytes": c.stored, "diskBytes": c.disk, "ratio": ratio(c.raw, c.stored)]
            },
            "blockFill": ["min": empty ? 0 : rounded(fillMin), "mean": empty ? 0 : rounded(fillSum / Double(blocks)), "max": rounded(fillMax)],
            "recordsPerBlock": [
                "min": empty ? 0 : perBlockMin, "mean": empty ? 0 : rounded(Double(records) / Double(blocks), 2), "max": perBlockMax,
            ] as [String: Any],
            "streams": streams.json(names, blocks: true),
            "fsyncBatches": [
                "available": histogramAvailable, "blocksPerBatchHistogram": histogramAvailable ? histogram : [],
                "note": histogramAvailable ? "" : Stats.histogramNote,
            ] as [String: Any],
        ]
    }

    func printText() {
        print("blocks       \(blocks) (\(formatBytes(UInt64(disk))) on disk), \(records) records, \(formatBytes(UInt64(data))) of record data")
        print(String(format: "compression  %.2f× overall (%@ raw → %@ stored)", ratio(raw, stored), formatBytes(UInt64(raw)), formatBytes(UInt64(stored))))
        for k in codecs.keys.sorted() {
            let c = codecs[k]!
            print("  \(pad(k, 8)) \(pad("\(c.blocks)", 6, right: true)) blocks  \(pad(formatBytes(UInt64(c.raw)), 10, right: true)) raw  "
                + "\(pad(formatBytes(UInt64(c.stored)), 10, right: true)) stored  " + String(format: "%.2f×", ratio(c.raw, c.stored)))
        }
        if blocks > 0 {
            print(String(format: "block fill   mean %.1f%%, min %.1f%%, max %.1f%% of %@ (raw payload / block size)",
                         fillSum / Double(blocks) * 100, fillMin * 100, fillMax * 100, formatBytes(UInt64(blockSize))))
            print(String(format: "records/block min %d, mean %.1f, max %d", perBlockMin, Double(records) / Double(blocks), perBlockMax))
        }
        print("streams")
        streams.printText(names, blocks: true)
        if histogramAvailable {
            print("fsync batches (blocks per batch):")
            for (i, n) in histogram.enumerated() where n > 0 { print("  \(1 << i)–\((1 << (i + 1)) - 1)\t\(n)") }
        } else {
            print("fsync batches  not available: \(Stats.histogramNote)")
        }
        if damagedBlocks > 0 { print("damaged      \(damagedBlocks) block(s); these blocks are not counted") }
        if otherProblems > 0 { print("damaged      \(otherProblems) problem(s) in the base file or container headers: run txlog verify") }
    }
}
