// `txlog bench compress --input FILE[,FILE...]`: compression of real bytes, e.g. PostgreSQL or RocksDB
// WAL files (Benchmarks/compare/run.sh makes them). The files' bytes, concatenated, are compressed in
// 64 KiB blocks in memory like the synthetic corpus, and appended as records to a real log once per
// codec, which gives the on-disk ratio and the append speed with the seal's compression included.

import ArgumentParser
import Foundation
import LogStore

extension BenchCompress {
    /// Both sections for the concatenated bytes of `files`: "compress-input" (codec speed on 64 KiB
    /// blocks, lz4 CLI on the same bytes) and "compress-log" (the bytes appended to a log per codec).
    static func measureInput(files: [String], dir: BenchDirectory, seconds: Double, recordSize: Int, codecs: [Codec]) throws
        -> [BenchSection]
    {
        let bytes = try readInputs(files)
        defer { bytes.deallocate() }
        let data = UnsafeRawBufferPointer(bytes)
        let label = "\(formatBytes(UInt64(data.count))) in \(files.count) file\(files.count == 1 ? "" : "s")"
        var blocks = try measureBlocks(data, label: label, name: "compress-input", dir: dir, seconds: seconds, codecs: codecs)
        blocks.notes.append("input: " + files.map { ($0 as NSString).lastPathComponent }.joined(separator: ", "))
        var log = BenchSection(
            "compress-log",
            columns: ["codec", "record", "records", "on-disk ratio", "append MB/s", "append+flush MB/s", "bytes written", "data"])
        for codec in codecs {
            let r = try appendToLog(data, codec: codec, recordSize: recordSize, dir: dir)
            log.add(
                [codec.description, "\(recordSize) B", "\(r.records)", fmt(r.ratio, 3), fmt(r.appendMBps, 0), fmt(r.flushedMBps, 0),
                 formatBytes(r.bytesWritten), label],
                json: ["codec": codec.description, "recordBytes": recordSize, "records": r.records, "payloadBytes": data.count,
                       "bytesWritten": r.bytesWritten, "ratio": r.ratio, "appendMBps": r.appendMBps, "appendFlushMBps": r.flushedMBps,
                       "blocksWritten": r.blocks])
        }
        log.notes.append("one pass per codec on a fresh log sized to hold all the bytes; the file bytes are cut into records of \(recordSize) B in order")
        log.notes.append("on-disk ratio = payload bytes / bytes written to containers (block headers and padding included); append MB/s = appends only (blocks are compressed when they fill, on the appending thread); append+flush adds the final flush (write + fdatasync)")
        return [blocks, log]
    }

    /// The concatenated contents of `files` in one buffer (the caller deallocates it). A file that cannot
    /// be read, or files holding nothing, are a bad `--input`: a usage error (64), since exit 1 means damage.
    static func readInputs(_ files: [String]) throws -> UnsafeMutableRawBufferPointer {
        var contents: [Data] = []
        for file in files {
            do {
                contents.append(try Data(contentsOf: URL(fileURLWithPath: file)))
            } catch {
                throw ValidationError("--input: cannot read \(file): \(error.localizedDescription)")
            }
        }
        let total = contents.reduce(0) { $0 + $1.count }
        guard total > 0 else { throw ValidationError("--input: the files are empty") }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: total, alignment: 64)
        var offset = 0
        for d in contents {
            d.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: buffer[offset..<(offset + d.count)]).copyMemory(from: $0) }
            offset += d.count
        }
        return buffer
    }

    struct LogAppendResult {
        var records: Int
        var bytesWritten: UInt64
        var blocks: UInt64
        var appendSeconds: Double
        var flushedSeconds: Double
        var payload: Int
        var ratio: Double { Double(payload) / Double(max(bytesWritten, 1)) }
        var appendMBps: Double { Double(payload) / max(appendSeconds, 1e-9) / 1e6 }
        var flushedMBps: Double { Double(payload) / max(flushedSeconds, 1e-9) / 1e6 }
    }

    /// Appends `data` as records of `recordSize` bytes to a fresh log with `codec`, then flushes once.
    /// The log is sized so that nothing is recycled; creating (zero-filling) it is not timed.
    static func appendToLog(_ data: UnsafeRawBufferPointer, codec: Codec, recordSize: Int, dir: BenchDirectory) throws -> LogAppendResult {
        let path = dir.fresh("compress-log")
        defer { dir.remove(path) }
        let containerSize: UInt64 = 64 << 20
        let needed = Double(data.count) * 1.1 + Double(4 << 20)
        let count = max(2, Int((needed / Double(containerSize)).rounded(.up)) + 1)
        var create = LogCreateOptions(containerSize: containerSize, containerCount: count)
        create.codec = codec
        let log = try LogStore.create(at: path, options: create)
        let before = log.info().statistics
        var records = 0
        let t0 = nowNanos()
        var offset = 0
        while offset < data.count {
            let end = min(offset + recordSize, data.count)
            try log.append(UnsafeRawBufferPointer(rebasing: data[offset..<end]))
            records += 1
            offset = end
        }
        let t1 = nowNanos()
        try log.flush()
        let t2 = nowNanos()
        let after = log.info().statistics
        try log.close()
        return LogAppendResult(
            records: records, bytesWritten: after.bytesWritten - before.bytesWritten, blocks: after.blocksWritten - before.blocksWritten,
            appendSeconds: Double(t1 - t0) / 1e9, flushedSeconds: Double(t2 - t0) / 1e9, payload: data.count)
    }
}
