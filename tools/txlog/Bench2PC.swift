// `txlog bench 2pc`: durable two-phase commits across two resource managers of one log, against
// single-phase commits of one RM on the same kind of log. Each client is a task that creates a
// transaction, lets each RM append a 100-byte work record, and commits. In the two-phase run each RM
// appends a prepare record (not flushed: the TM's forced decision record covers it, see
// docs/TRANSACTIONS.md); in the single-phase run the one RM appends its commit record and flushes it
// itself. Both should cost one shared flush per commit, so the ratio should be near 1.

import ArgumentParser
import Foundation
import LogStore
import Synchronization
import TransactionManager
import TxLogBenchData

struct Bench2PC: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "2pc",
        abstract: "Two-phase commits across two durable RMs vs single-phase commits of one RM (same log).")
    @OptionGroup var options: BenchOptions
    @Option(help: "Concurrent clients, comma-separated.") var clients = "1,64"
    @Option(help: "Work-record size in bytes.") var recordSize = 100
    @Option(help: "Modes to run, comma-separated: 1pc, 2pc. The ratio needs both.") var modes = "1pc,2pc"
    @Option(help: "Rounds per client count; the modes alternate, and the ratio's median is reported.") var rounds = 1
    @Option(help: "Container size of the bench log in KiB (a multiple of 512). A small log keeps the log's appendMayWait hint set, so commit steps hop off the cooperative pool.")
    var containerKib = 32768
    @Option(help: "Containers in the bench log (2...64).") var containers = 4
    @Option(help: "The log's maxDirtyBytes in KiB (default: the log's default). Below 256 (four blocks) the log's appendMayWait hint stays set, so every commit step hops off the cooperative pool.")
    var maxDirtyKib: Int?

    func run() async throws { try await offCooperativePool(drive) }

    /// The measurement, on a thread of its own (see `offCooperativePool`): its clients are tasks.
    func drive() throws {
        let counts = try benchList(clients, option: "--clients", in: 1...4096)
        guard (0...65536).contains(recordSize) else { throw ValidationError("--record-size: 0...65536") }
        let picked = try benchList(modes, option: "--modes", allowed: "1pc, 2pc, comma-separated") { ["1pc": Mode.singlePhase, "2pc": .twoPhase][$0] }
        guard (1...100).contains(rounds) else { throw ValidationError("--rounds: 1...100") }
        guard (1...8 * 1024 * 1024).contains(containerKib), containerKib % 512 == 0 else {
            throw ValidationError("--container-kib: a multiple of 512, at most 8388608")
        }
        guard (2...64).contains(containers) else { throw ValidationError("--containers: 2...64") }
        let layout = LogCreateOptions(containerSize: UInt64(containerKib) << 10, containerCount: containers)
        var open = LogOpenOptions()
        if let maxDirtyKib {
            guard (0...1 << 30).contains(maxDirtyKib) else { throw ValidationError("--max-dirty-kib: 0...1073741824") }
            open.groupCommit.maxDirtyBytes = maxDirtyKib << 10
        }
        // Made once the options are checked: a usage error leaves no --dir behind.
        let dir = try BenchDirectory(options.dir)
        let section = try Self.measure(
            dir: dir, seconds: options.seconds, clients: counts, recordSize: recordSize, modes: picked.sorted { $0 == .singlePhase && $1 != $0 },
            rounds: rounds, layout: layout, open: open)
        emit([section], options: options, dir: dir.root)
    }

    enum Mode: String { case twoPhase = "2pc, 2 RMs", singlePhase = "1pc, 1 RM" }

    static func measure(
        dir: BenchDirectory, seconds: Double, clients: [Int], recordSize: Int, modes: [Mode] = [.singlePhase, .twoPhase], rounds: Int = 1,
        layout: LogCreateOptions = LogCreateOptions(containerSize: 32 << 20, containerCount: 4), open: LogOpenOptions = LogOpenOptions()
    ) throws -> BenchSection {
        var section = BenchSection(
            "2pc", columns: ["clients", "mode", "commits/s", "fdatasyncs", "commits/fdatasync", "p50 us", "p99 us", "CPU us/commit", "RSS B/commit", "hops/commit", "2pc/1pc"])
        for n in clients {
            var ratios: [Double] = []
            for _ in 0..<rounds {
                var single: Double?
                for mode in modes {
                    let path = dir.fresh("2pc-log")
                    defer { dir.remove(path) }
                    let r = try runOne(path: path, mode: mode, clients: n, recordSize: recordSize, seconds: seconds, layout: layout, open: open)
                    if mode == .singlePhase { single = r.perSecond }
                    let ratio = mode == .twoPhase ? single.flatMap { $0 > 0 ? r.perSecond / $0 : nil } : nil
                    if let ratio { ratios.append(ratio) }
                    section.add(
                        ["\(n)", mode.rawValue, rate(r.perSecond), "\(r.syncs)", fmt(r.perSync, 1), fmt(us(r.latency.p50), 0), fmt(us(r.latency.p99), 0),
                         fmt(r.cpuMicrosPerCommit, 1), fmt(r.residentGrowthPerCommit, 0), fmt(r.hopsPerCommit, 2), ratio.map { fmt($0, 2) + "x" } ?? "-"],
                        json: ["clients": n, "mode": mode == .twoPhase ? "2pc" : "1pc", "commits": r.commits, "seconds": r.seconds,
                               "commitsPerSecond": r.perSecond, "fdatasyncs": r.syncs, "commitsPerFdatasync": r.perSync, "latency": r.latency.json,
                               "cpuMicrosPerCommit": r.cpuMicrosPerCommit, "residentGrowthBytesPerCommit": r.residentGrowthPerCommit,
                               "offPoolSteps": r.offPoolSteps, "offPoolStepsPerCommit": r.hopsPerCommit, "offPoolThreadsStarted": r.threadsStarted]
                            .merging(ratio.map { ["ratioToSinglePhase": $0] } ?? [:]) { a, _ in a })
                }
            }
            if ratios.count > 1 {
                let sorted = ratios.sorted()
                let median = sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
                section.add(
                    ["\(n)", "median of \(ratios.count)", "", "", "", "", "", "", "", "", fmt(median, 2) + "x"],
                    json: ["clients": n, "mode": "median", "rounds": ratios.count, "ratioToSinglePhase": median, "ratios": ratios])
            }
        }
        section.notes.append("2pc: pre-prepare, prepare (each RM appends a prepare record, unflushed), forced decision record, commit, lazy end record")
        section.notes.append("1pc: the RM gets single-phase-commit, appends a commit record and flushes it (async) before answering")
        section.notes.append("clients are Swift tasks; log: \(layout.containerCount) x \(layout.containerSize >> 10) KiB containers, lz4, maxDirtyBytes \(open.groupCommit.maxDirtyBytes >> 10) KiB; every transaction also appends one work record per RM")
        section.notes.append("hops/commit: commit steps run off the cooperative pool because the log's appendMayWait hint was set (TM statistics.offPoolSteps)")
        section.notes.append("RSS B/commit: growth of resident memory over the measurement per commit; the bench's own latency samples account for 8")
        return section
    }

    struct Result {
        var commits: Int
        var seconds: Double
        var syncs: UInt64
        var cpuSeconds: Double
        var latency: Percentiles
        var residentGrowth: Int
        var offPoolSteps: UInt64 = 0
        var threadsStarted: UInt64 = 0
        var hopsPerCommit: Double { Double(offPoolSteps) / Double(max(commits, 1)) }
        var residentGrowthPerCommit: Double { Double(residentGrowth) / Double(max(commits, 1)) }
        var perSecond: Double { Double(commits) / max(seconds, 1e-9) }
        var perSync: Double { Double(commits) / Double(max(syncs, 1)) }
        var cpuMicrosPerCommit: Double { cpuSeconds / Double(max(commits, 1)) * 1e6 }
    }

    static func runOne(path: String, mode: Mode, clients: Int, recordSize: Int, seconds: Double, layout: LogCreateOptions, open: LogOpenOptions) throws -> Result {
        let log = try LogStore.create(at: path, options: layout, openOptions: open)
        defer { try? log.close() }
        let tm = try TransactionManager.create(log: log)
        try tm.recover()
        let rmCount = mode == .twoPhase ? 2 : 1
        var rms: [BenchRM] = []
        for i in 0..<rmCount {
            let holder = BenchRM(log: log, recordSize: recordSize)
            let rm = try tm.createResourceManager(description: "bench rm \(i)") { holder.handle($0) }
            holder.rm = rm
            try rm.recover()
            rms.append(holder)
        }
        let mask: NotificationMask = mode == .twoPhase ? .twoPhase : .all
        let phase = BenchPhase()
        let samples = BenchCommit.Samples()
        let warmup = min(0.5, max(0.1, seconds / 4))
        let done = DispatchSemaphore(value: 0)
        let rmList = rms
        Task.detached {
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<clients {
                    group.addTask {
                        var latencies: [UInt64] = []
                        latencies.reserveCapacity(100_000)
                        do {
                            while true {
                                let p = phase.current
                                if p == BenchPhase.stopped { break }
                                let start = nowNanos()
                                let tx = try tm.createTransaction()
                                for r in rmList { try r.work(tx, mask: mask) }
                                try await tx.commit()
                                let end = nowNanos()
                                if p == BenchPhase.measuring, phase.current == BenchPhase.measuring { latencies.append(end - start) }
                            }
                        } catch {
                            samples.fail(error)
                        }
                        samples.add(latencies)
                    }
                }
            }
            done.signal()
        }
        sleepSeconds(warmup)
        let syncs0 = log.info().statistics.syncs
        let hops0 = tm.statistics.offPoolSteps
        let threads0 = OffPoolThreads.shared.counts.threadsStarted
        let cpu0 = processCPUSeconds()
        let rss0 = residentBytes()
        let t0 = nowNanos()
        phase.set(BenchPhase.measuring)
        sleepSeconds(seconds)
        phase.set(BenchPhase.stopped)
        let t1 = nowNanos()
        let cpu1 = processCPUSeconds()
        let rss1 = residentBytes()
        let syncs1 = log.info().statistics.syncs
        let hops1 = tm.statistics.offPoolSteps
        let threads1 = OffPoolThreads.shared.counts.threadsStarted
        done.wait()
        if let e = samples.error { throw BenchError("2pc bench failed", cause: e) }
        let all = samples.all
        return Result(commits: all.count, seconds: Double(t1 - t0) / 1e9, syncs: syncs1 - syncs0, cpuSeconds: cpu1 - cpu0, latency: Percentiles(all),
            residentGrowth: rss1 - rss0, offPoolSteps: hops1 &- hops0, threadsStarted: threads1 &- threads0)
    }
}
