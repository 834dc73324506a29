// `txlog bench compress` and `txlog bench crc`: the per-block work a seal does (compress + checksum),
// measured on the same synthetic records the other benches append. MB = 10^6 bytes, GB = 10^9 bytes.

import ArgumentParser
import Foundation
import LogStore
import TxLogBenchData

struct BenchCompress: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compress",
        abstract: "Compression ratio and MB/s per codec on 64 KiB blocks of synthetic log records (or of --input files); lz4 CLI for comparison.",
        discussion: """
            Without --input: synthetic log records (--mib of them), compressed block by block in memory.

            With --input FILE[,FILE...] (e.g. PostgreSQL or RocksDB WAL files): the files' bytes, concatenated, \
            are compressed the same way, and also appended as records of --record-size bytes to a real log, one \
            log per codec, to report the on-disk ratio and the append + flush MB/s.
            """)
    @OptionGroup var options: BenchOptions
    @Option(help: "MiB of synthetic records to compress (ignored with --input).") var mib = 32
    @Option(help: "Files whose bytes to compress instead of synthetic records, comma-separated.") var input: String?
    @Option(help: "With --input: record size in bytes when appending the files to a log.") var recordSize = 8192
    @Option(help: "Codecs, comma-separated (none, lz4, zlib:N).") var codecs = "none,lz4,zlib:1,zlib:6,zlib:9"

    func run() throws { try withBenchExitCodes(drive) }

    func drive() throws {
        let codecList = try benchCodecs(codecs)
        // A negative count trapped allocating the records.
        guard (1...16_384).contains(mib) else { throw ValidationError("--mib: 1...16384") }
        let files = input.map { $0.split(separator: ",").map(String.init) }
        if let files {
            guard (1...(1 << 20)).contains(recordSize) else { throw ValidationError("--record-size: 1...1048576") }
            guard !files.isEmpty else { throw ValidationError("--input: at least one file") }
        }
        // Made once the options are checked: a usage error leaves no --dir behind.
        let dir = try BenchDirectory(options.dir)
        guard let files else {
            emit([try Self.measure(dir: dir, seconds: options.seconds, mib: mib, codecs: codecList)], options: options, dir: dir.root)
            return
        }
        let sections = try Self.measureInput(files: files, dir: dir, seconds: options.seconds, recordSize: recordSize, codecs: codecList)
        emit(sections, options: options, dir: dir.root)
    }

    static let blockSize = 65_536
    static let defaultCodecs: [Codec] = [.none, .lz4, .zlib(level: 1), .zlib(level: 6), .zlib(level: 9)]

    static func measure(dir: BenchDirectory, seconds: Double, mib: Int, codecs: [Codec] = defaultCodecs) throws -> BenchSection {
        let corpus = Corpus(byteCount: mib << 20)
        return try withExtendedLifetime(corpus) {
            try measureBlocks(corpus.bytes, label: "\(mib) MiB", name: "compress", dir: dir, seconds: seconds, codecs: codecs)
        }
    }

    /// Compresses `bytes` in independent 64 KiB blocks with each codec (whole passes until half the
    /// budget is spent), decompresses them the same way, and runs the lz4 CLI on the same bytes.
    static func measureBlocks(
        _ bytes: UnsafeRawBufferPointer, label: String, name: String, dir: BenchDirectory, seconds: Double, codecs: [Codec]
    ) throws -> BenchSection {
        var section = BenchSection(
            name, columns: ["codec", "ratio", "compress MB/s", "decompress MB/s", "data"])
        let blocks = stride(from: 0, to: bytes.count, by: blockSize).map {
            UnsafeRawBufferPointer(rebasing: bytes[$0..<min($0 + blockSize, bytes.count)])
        }
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: blockSize * 2, alignment: 64)
        defer { scratch.deallocate() }
        let budget = max(0.2, seconds / 2)
        for codec in codecs {
            // Compress: whole passes over every block until the budget is spent. The first pass also keeps
            // the compressed blocks (an allocation per block), so it is timed only when it is the only one.
            // The speed reported is the fastest pass, as `lz4 -b` reports its fastest iteration.
            var stored: [[UInt8]] = []
            var packed = 0
            let start = nowNanos()
            var passes = 0
            var best = 0.0
            var timedBytes = 0
            var timedNanos: UInt64 = 0
            repeat {
                let passStart = nowNanos()
                for b in blocks {
                    let n = compressOrCopy(codec, b, into: scratch)
                    if passes == 0 {
                        stored.append(Array(UnsafeRawBufferPointer(rebasing: scratch[0..<n])))
                        packed += n
                    }
                }
                let nanos = max(nowNanos() - passStart, 1)
                if passes > 0 {
                    best = max(best, Double(bytes.count) / (Double(nanos) / 1e9) / 1e6)
                    timedBytes += bytes.count
                    timedNanos += nanos
                }
                passes += 1
                if passes == 1, Double(nowNanos() - start) / 1e9 >= budget {
                    best = Double(bytes.count) / (Double(nanos) / 1e9) / 1e6
                    timedBytes = bytes.count
                    timedNanos = nanos
                }
            } while Double(nowNanos() - start) / 1e9 < budget
            let compressSpeed = best
            let compressMean = Double(timedBytes) / (Double(max(timedNanos, 1)) / 1e9) / 1e6
            // Decompress the stored blocks the same way a read does.
            var decoded = 0
            let dstart = nowNanos()
            repeat {
                for (i, s) in stored.enumerated() {
                    let target = UnsafeMutableRawBufferPointer(rebasing: scratch[0..<blocks[i].count])
                    try s.withUnsafeBytes { src in
                        let c: Codec = s.count == blocks[i].count ? .none : codec
                        try c.decompress(src, into: target)
                    }
                    decoded += blocks[i].count
                }
            } while Double(nowNanos() - dstart) / 1e9 < budget
            let decompressSpeed = Double(decoded) / (Double(nowNanos() - dstart) / 1e9) / 1e6
            let ratio = Double(bytes.count) / Double(max(packed, 1))
            section.add(
                [codec.description, fmt(ratio, 3), fmt(compressSpeed, 0), fmt(decompressSpeed, 0), label],
                json: ["codec": codec.description, "ratio": ratio, "compressMBps": compressSpeed, "compressMBpsMean": compressMean,
                       "compressPasses": passes, "decompressMBps": decompressSpeed, "bytes": bytes.count])
        }
        section.notes.append("64 KiB blocks compressed independently, as sealed blocks are; `none` is the copy a seal does instead")
        section.notes.append("compress MB/s is the fastest whole pass over the data (as `lz4 -b` reports its fastest); the JSON also has the mean")
        if let cli = try lz4CLI(bytes: bytes, dir: dir, seconds: seconds) {
            section.add(
                ["lz4 CLI (-b1 -B65536)", fmt(cli.ratio, 3), fmt(cli.compress, 0), fmt(cli.decompress, 0), label],
                json: ["codec": "lz4-cli", "ratio": cli.ratio, "compressMBps": cli.compress, "decompressMBps": cli.decompress,
                       "command": cli.command, "bytes": bytes.count])
            if let ours = section.json.first(where: { ($0["codec"] as? String) == "lz4" }), let speed = ours["compressMBps"] as? Double {
                section.notes.append(String(format: "lz4: %.0f%% of the lz4 CLI's compression speed (target >= 90%%)", speed / cli.compress * 100))
            }
        } else {
            section.notes.append("the lz4 CLI is not installed (apt-get install lz4): no comparison run")
        }
        return section
    }

    /// What a seal does with one block: the codec, or a plain copy when it does not shrink the block.
    static func compressOrCopy(_ codec: Codec, _ block: UnsafeRawBufferPointer, into scratch: UnsafeMutableRawBufferPointer) -> Int {
        if let n = codec.compress(block, into: UnsafeMutableRawBufferPointer(rebasing: scratch[0..<block.count])) { return n }
        scratch.copyMemory(from: block)
        return block.count
    }

    struct CLIResult {
        var ratio: Double
        var compress: Double
        var decompress: Double
        var command: String
    }

    /// Runs `lz4 -b1 -B65536 FILE` on the same data. It reports on stderr, redrawing one line with \r;
    /// the last segment that contains "MB/s" is the final result.
    static func lz4CLI(bytes: UnsafeRawBufferPointer, dir: BenchDirectory, seconds: Double) throws -> CLIResult? {
        guard let lz4 = ["/usr/bin/lz4", "/usr/local/bin/lz4", "/bin/lz4"].first(where: { FileManager.default.isExecutableFile(atPath: $0) })
        else { return nil }
        let file = dir.fresh("compress-corpus.dat")
        defer { dir.remove(file) }
        try Data(bytes).write(to: URL(fileURLWithPath: file))
        var args = ["-b1", "-B65536"]
        if seconds < 3 { args.append("-i\(max(1, Int(seconds.rounded())))") }  // lz4's default is 3 s per phase
        args.append(file)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: lz4)
        p.arguments = args
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        guard let r = parseLZ4Bench(text) else { return nil }
        return CLIResult(ratio: r.ratio, compress: r.compress, decompress: r.decompress, command: "lz4 " + args.joined(separator: " "))
    }

    /// Parses e.g. ` 1#corpus.dat :  33554432 ->  13324563 (2.518),  912.3 MB/s , 4457.1 MB/s `.
    static func parseLZ4Bench(_ text: String) -> (ratio: Double, compress: Double, decompress: Double)? {
        guard let line = text.split(whereSeparator: { $0 == "\r" || $0 == "\n" }).last(where: { $0.contains("MB/s") }) else { return nil }
        guard let open = line.firstIndex(of: "("), let close = line[open...].firstIndex(of: ")"),
            let ratio = Double(line[line.index(after: open)..<close].trimmingCharacters(in: .whitespaces))
        else { return nil }
        let speeds = line[close...].components(separatedBy: "MB/s").compactMap {
            Double($0.split(whereSeparator: { $0 == " " || $0 == "," || $0 == ")" }).last.map(String.init) ?? "")
        }
        guard speeds.count >= 2 else { return nil }
        return (ratio, speeds[0], speeds[1])
    }
}

struct BenchCRC: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "crc", abstract: "CRC32C GB/s: hardware (SSE4.2) and software paths.")
    @OptionGroup var options: BenchOptions

    func run() throws {
        emit([Self.measure(seconds: options.seconds)], options: options, dir: options.dir ?? NSTemporaryDirectory())
    }

    nonisolated(unsafe) static var sink: UInt32 = 0

    static func measure(seconds: Double) -> BenchSection {
        var section = BenchSection("crc", columns: ["chunk", "hardware GB/s", "software GB/s"])
        let corpus = Corpus(byteCount: 256 << 10)  // stays in cache: this measures the code, not memory
        let budget = max(0.1, seconds / 4)
        func speed(_ chunk: Int, _ f: (UnsafeRawBufferPointer) -> UInt32) -> Double {
            var bytes = 0
            var acc: UInt32 = 0
            let start = nowNanos()
            repeat {
                var off = 0
                while off + chunk <= corpus.bytes.count {
                    acc ^= f(UnsafeRawBufferPointer(rebasing: corpus.bytes[off..<(off + chunk)]))
                    off += chunk
                }
                bytes += off
            } while Double(nowNanos() - start) / 1e9 < budget
            sink ^= acc
            return Double(bytes) / (Double(nowNanos() - start) / 1e9) / 1e9
        }
        for chunk in [64, 4096, 65_536] {
            let hw = speed(chunk) { CRC32C.checksum($0) }
            let sw = speed(chunk) { CRC32C.softwareChecksum($0) }
            section.add([formatBytes(UInt64(chunk)), fmt(hw, 2), fmt(sw, 2)], json: ["chunk": chunk, "hardwareGBps": hw, "softwareGBps": sw])
        }
        section.notes.append(CRC32C.isHardwareAccelerated ? "hardware path: SSE4.2 crc32 instruction (3-way interleaved)"
                             : "no SSE4.2 on this CPU: `checksum` uses the software path too")
        return section
    }
}
