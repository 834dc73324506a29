// `txlog bench commit`: durable commits. Each writer appends one record and waits for it to be durable
// in a loop, so concurrent writers share fdatasyncs through group commit. A writer is a dedicated thread
// calling the synchronous flush (`--api sync`, the default), or a Swift task awaiting the asynchronous one
// (`--api async`). Reports commits/s, fdatasyncs, commits per fdatasync, latency percentiles and CPU time
// per commit (getrusage of the whole process, the log's writer thread included).

import ArgumentParser
import Foundation
import LogStore
import TxLogBenchData
import Synchronization

struct BenchCommit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "commit",
        abstract: "Group commit: N writers doing append + flush per commit.")
    @OptionGroup var options: BenchOptions
    @Option(help: "Writer counts, comma-separated.") var writers = "1,4,16,64"
    @Option(help: "Record size in bytes.") var recordSize = 128
    @Option(help: "Codec of the bench log (none, lz4, zlib:N).") var codec = "lz4"
    @Option(help: "How a writer waits: sync (a thread each, synchronous flush) or async (a task each, async flush).")
    var api: API = .sync

    /// How a writer waits for its commit to be durable.
    enum API: String, ExpressibleByArgument, Sendable {
        case sync, async
    }

    func run() async throws { try await offCooperativePool(drive) }

    /// The measurement, on a thread of its own (see `offCooperativePool`): async writers are tasks.
    func drive() throws {
        let counts = try benchList(writers, option: "--writers", in: 1...1024)
        // Records are cut from the corpus: a larger size was reported while smaller records were written.
        guard (0...Self.corpusBytes).contains(recordSize), let c = Codec(parsing: codec) else {
            throw ValidationError("--record-size 0...\(Self.corpusBytes), --codec none, lz4 or zlib:N")
        }
        // Made once the options are checked: a usage error leaves no --dir behind.
        let dir = try BenchDirectory(options.dir)
        let section = try Self.measure(dir: dir, seconds: options.seconds, writers: counts, recordSize: recordSize, codec: c, api: api)
        emit([section], options: options, dir: dir.root)
    }

    struct Result {
        var writers: Int
        var commits: Int
        var seconds: Double
        var syncs: UInt64
        var cpuSeconds: Double
        var contextSwitches: Int
        var latency: Percentiles
        var perSecond: Double { Double(commits) / seconds }
        var perSync: Double { Double(commits) / Double(max(syncs, 1)) }
        var cpuMicrosPerCommit: Double { cpuSeconds / Double(max(commits, 1)) * 1e6 }
        var switchesPerCommit: Double { Double(contextSwitches) / Double(max(commits, 1)) }
    }

    /// Bytes of synthetic records the writers cut their records from: the largest record size.
    static let corpusBytes = 4 << 20

    static func measure(
        dir: BenchDirectory, seconds: Double, writers: [Int], recordSize: Int, codec: Codec = .lz4, api: API = .sync
    ) throws -> BenchSection {
        let corpus = Corpus(byteCount: corpusBytes)
        var section = BenchSection(
            "commit",
            columns: ["writers", "record", "commits/s", "fdatasyncs", "commits/fdatasync", "p50 us", "p99 us", "p99.9 us", "CPU us/commit",
                      "ctx sw/commit", "vs 1 writer"])
        var single: Double?
        for n in writers {
            let path = dir.fresh("commit-log")
            defer { dir.remove(path) }
            var create = LogCreateOptions(containerSize: 32 << 20, containerCount: 4)
            create.codec = codec
            let log = try LogStore.create(at: path, options: create)
            let r = try run(log, writers: n, recordSize: recordSize, seconds: seconds, corpus: corpus, api: api)
            try log.close()
            if n == 1 { single = r.perSecond }
            // No speed-up over a one-writer run that measured no commit (a window shorter than one commit).
            let scale = single.flatMap { $0 > 0 ? r.perSecond / $0 : nil }
            section.add(
                ["\(n)", "\(recordSize) B", rate(r.perSecond), "\(r.syncs)", fmt(r.perSync, 1), fmt(us(r.latency.p50), 0),
                 fmt(us(r.latency.p99), 0), fmt(us(r.latency.p999), 0), fmt(r.cpuMicrosPerCommit, 1), fmt(r.switchesPerCommit, 1), scale.map { fmt($0, 1) + "x" } ?? "-"],
                json: ["writers": n, "recordBytes": recordSize, "commits": r.commits, "seconds": r.seconds, "commitsPerSecond": r.perSecond,
                       "fdatasyncs": r.syncs, "commitsPerFdatasync": r.perSync, "latency": r.latency.json,
                       "cpuMicrosPerCommit": r.cpuMicrosPerCommit, "contextSwitchesPerCommit": r.switchesPerCommit,
                       "codec": codec.description, "api": api.rawValue]
                    .merging(scale.map { ["speedupVsOneWriter": $0] } ?? [:]) { a, _ in a })
        }
        section.notes.append(
            api == .sync
                ? "each commit = append + synchronous flush(upTo:) on the writer's own thread; fdatasyncs from log.info().statistics.syncs"
                : "each commit = append + await flush(upTo:) in the writer's own task (the cooperative pool's threads run them); fdatasyncs from log.info().statistics.syncs")
        section.notes.append("CPU = getrusage(RUSAGE_SELF) user+sys over the measured interval / commits; ctx sw = voluntary + involuntary context switches (getrusage); log: 4 x 32 MiB pre-zeroed containers, \(codec)")
        return section
    }

    /// Thread-safe collection of each thread's samples.
    final class Samples: @unchecked Sendable {
        private let lock = NSLock()
        private var latencies: [[UInt64]] = []
        private var failure: (any Error)?
        func add(_ l: [UInt64]) { lock.lock(); latencies.append(l); lock.unlock() }
        func fail(_ e: any Error) { lock.lock(); if failure == nil { failure = e }; lock.unlock() }
        var all: [UInt64] { lock.lock(); defer { lock.unlock() }; return latencies.flatMap { $0 } }
        var error: (any Error)? { lock.lock(); defer { lock.unlock() }; return failure }
    }

    static func run(_ log: LogStore, writers: Int, recordSize: Int, seconds: Double, corpus: Corpus, api: API = .sync) throws -> Result {
        let phase = BenchPhase()
        let samples = Samples()
        let warmup = min(0.5, max(0.1, seconds / 4))
        var syncs0: UInt64 = 0, syncs1: UInt64 = 0
        var cpu0 = 0.0, cpu1 = 0.0
        var switches0 = 0, switches1 = 0
        var t0: UInt64 = 0, t1: UInt64 = 0
        let capacity = Int(min(4_000_000, 200_000 * seconds / Double(max(1, writers / 4))))
        let measure = {
            sleepSeconds(warmup)
            syncs0 = log.info().statistics.syncs
            cpu0 = processCPUSeconds()
            switches0 = processContextSwitches()
            t0 = nowNanos()
            phase.set(BenchPhase.measuring)
            sleepSeconds(seconds)
            phase.set(BenchPhase.stopped)
            t1 = nowNanos()
            cpu1 = processCPUSeconds()
            switches1 = processContextSwitches()
            syncs1 = log.info().statistics.syncs
        }
        switch api {
        case .sync:
            runOnThreads(writers, whileRunning: measure) { index in
                samples.add(Self.syncWriter(log, index: index, recordSize: recordSize, corpus: corpus, phase: phase, capacity: capacity, samples: samples))
            }
        case .async:
            let done = DispatchSemaphore(value: 0)
            Task.detached {
                await withTaskGroup(of: [UInt64].self) { group in
                    for index in 0..<writers {
                        group.addTask {
                            await Self.asyncWriter(log, index: index, recordSize: recordSize, corpus: corpus, phase: phase, capacity: capacity, samples: samples)
                        }
                    }
                    for await latencies in group { samples.add(latencies) }
                }
                done.signal()
            }
            measure()
            done.wait()
        }
        if let e = samples.error { throw BenchError("commit bench failed", cause: e) }
        let all = samples.all
        return Result(
            writers: writers, commits: all.count, seconds: Double(t1 - t0) / 1e9, syncs: syncs1 - syncs0, cpuSeconds: cpu1 - cpu0,
            contextSwitches: switches1 - switches0, latency: Percentiles(all))
    }

    /// What both kinds of writer keep: the index of the next record, and the latencies of the commits
    /// that started and ended inside the measured interval.
    struct WriterLog {
        let phase: BenchPhase
        var latencies: [UInt64] = []
        var next: Int

        init(index: Int, phase: BenchPhase, capacity: Int) {
            self.phase = phase
            next = index &* 7_919
            latencies.reserveCapacity(capacity)
        }

        /// The phase a commit starts in, or nil once the bench stops.
        func starting() -> Int? {
            let p = phase.current
            return p == BenchPhase.stopped ? nil : p
        }

        /// Counts a commit that started in phase `p` at `start` and has just ended.
        mutating func ended(_ p: Int, start: UInt64) {
            let end = nowNanos()
            if p == BenchPhase.measuring, phase.current == BenchPhase.measuring { latencies.append(end - start) }
            next &+= 1
        }
    }

    /// One writer thread: append, synchronous flush, repeat. Returns the latencies measured.
    static func syncWriter(
        _ log: LogStore, index: Int, recordSize: Int, corpus: Corpus, phase: BenchPhase, capacity: Int, samples: Samples
    ) -> [UInt64] {
        var w = WriterLog(index: index, phase: phase, capacity: capacity)
        do {
            while let p = w.starting() {
                let start = nowNanos()
                try log.flush(upTo: try appendRecycling(log, corpus.record(w.next, size: recordSize)))
                w.ended(p, start: start)
            }
        } catch {
            samples.fail(error)
        }
        return w.latencies
    }

    /// One writer task: append, await the asynchronous flush, repeat. Returns the latencies measured.
    static func asyncWriter(
        _ log: LogStore, index: Int, recordSize: Int, corpus: Corpus, phase: BenchPhase, capacity: Int, samples: Samples
    ) async -> [UInt64] {
        var w = WriterLog(index: index, phase: phase, capacity: capacity)
        do {
            while let p = w.starting() {
                let start = nowNanos()
                try await log.flush(upTo: try await appendRecycling(log, corpus.record(w.next, size: recordSize)))
                w.ended(p, start: start)
            }
        } catch {
            samples.fail(error)
        }
        return w.latencies
    }
}
