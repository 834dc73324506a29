import ArgumentParser
import Foundation

/// `txlog bench`: whole-system figures on a real directory. docs/PERFORMANCE.md records them and says
/// how to reproduce each one; the micro-benchmarks live in the Benchmarks/ package.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Whole-system benchmarks on a real directory (writes bench logs there).",
        discussion: """
            Each bench, in short (its --help says more):
              append    appends/s and MB/s without flush (64 B, 128 B, 1 KiB, 64 KiB;
                        lz4 and none), and 64 KiB records flushed every 4 MiB
              commit    1, 4, 16, 64 writer threads doing append + flush per commit:
                        commits/s, fdatasyncs, commits per fdatasync,
                        p50/p99/p99.9 latency, CPU per commit
              compress  ratio and MB/s per codec on synthetic log records (or --input
                        files, also appended to a log per codec), and
                        `lz4 -b1 -B65536` if installed
              scan      recovery (open) of a log with N MiB written, after a crash and
                        after a clean close; cursor MB/s
              crc       CRC32C GB/s, hardware and software
              streams   a one-stream reader skipping other streams' blocks vs decoding
                        all; appends over 8 streams vs 1
              2pc       two-phase commits across two durable RMs vs single-phase
                        commits of one RM
              kv        key-value single-put transactions vs the log's commit rate;
                        recovery and checkpoint of K keys
              online    OnlineResource.online() on a large log with a TM checkpoint
              all       crc, compress, append, commit and scan (bounded: about 30 s
                        with the default --seconds 1)

            Example:
              txlog bench commit --dir /var/tmp/b --seconds 5 --writers 1,16
            """,
        subcommands: [
            BenchAppend.self, BenchCommit.self, BenchCompress.self, BenchScan.self, BenchCRC.self, BenchAll.self,
            BenchFill.self, BenchStreams.self, Bench2PC.self, BenchOnline.self, BenchKV.self,
        ])
}

struct BenchAll: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "all", abstract: "Run every bench (crc, compress, append, commit, scan).")
    @OptionGroup var options: BenchOptions

    func run() throws { try withBenchExitCodes(drive) }

    func drive() throws {
        let dir = try BenchDirectory(options.dir)
        var sections: [BenchSection] = []
        let progress = !options.json
        func step(_ name: String) { if progress { FileHandle.standardError.write(Data("bench: \(name)...\n".utf8)) } }
        step("crc")
        sections.append(BenchCRC.measure(seconds: options.seconds))
        step("compress")
        sections.append(try BenchCompress.measure(dir: dir, seconds: options.seconds, mib: 16))
        step("append")
        sections.append(contentsOf: try BenchAppend.measure(dir: dir, seconds: options.seconds, sizes: BenchAppend.defaultSizes))
        step("commit")
        sections.append(try BenchCommit.measure(dir: dir, seconds: options.seconds, writers: [1, 4, 16, 64], recordSize: 128))
        step("scan")
        sections.append(try BenchScan.measure(dir: dir, seconds: options.seconds, mib: 64, recordSize: 256))
        emit(sections, options: options, dir: dir.root)
    }
}
