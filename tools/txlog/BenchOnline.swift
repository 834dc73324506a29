// `txlog bench online`: how long OnlineResource.online() takes on a large log with a recent TM
// checkpoint. Fills a log of --size bytes with records (one stream of bulk data, plus two-phase commits
// across two RMs spread through it), checkpoints the TM, runs some more commits, closes the log, then
// times online(): log open and recovery, TM recovery (checkpoint + replay), RM recovery.

import ArgumentParser
import Foundation
import LogStore
import TransactionManager

struct BenchOnline: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "online",
        abstract: "Time OnlineResource.online() on a large log (default 1 GiB) with a TM checkpoint.")
    @OptionGroup var options: BenchOptions
    @Option(help: "Log size in MiB (containers of 64 MiB).") var sizeMib = 1024
    @Option(help: "Two-phase commits after the checkpoint.") var commitsAfterCheckpoint = 2000
    @Option(help: "Repetitions of online().") var repeats = 5

    func run() async throws { try await offCooperativePool(drive) }

    /// The measurement, on a thread of its own (see `offCooperativePool`): its clients are tasks.
    func drive() throws {
        guard sizeMib >= 128, sizeMib <= 64 * 1024 else { throw ValidationError("--size-mib 128...65536") }
        // Negative counts trapped (reversed ranges).
        guard repeats >= 1, commitsAfterCheckpoint >= 0 else { throw ValidationError("--repeats 1 or more, --commits-after-checkpoint 0 or more") }
        let dir = try BenchDirectory(options.dir)
        let path = dir.fresh("online-log")
        defer { dir.remove(path) }
        let rmIDs = [GUID.random(), GUID.random()]
        let fillStart = Date()
        let filled = try Self.fill(path: path, sizeMib: sizeMib, rmIDs: rmIDs, commitsAfterCheckpoint: commitsAfterCheckpoint)
        let fillSeconds = Date().timeIntervalSince(fillStart)
        var section = BenchSection("online", columns: ["log", "result", "online ms", "TM records replayed", "RMs"])
        for _ in 0..<repeats {
            var config = OnlineResource.Configuration(logDirectory: path, resourceManagers: rmIDs.map { id in
                .init(id: id, description: "bench") { n in
                    guard let e = n.enlistment else { return }
                    switch n.kind {
                    case .recover: try? e.recover()
                    case .commit: try? e.commitComplete()
                    case .rollback: try? e.rollbackComplete()
                    default: break
                    }
                }
            })
            config.onlineBudget = .milliseconds(300)
            let resource = OnlineResource(config)
            let t0 = nowNanos()
            let result = try resource.online()
            var ms = Double(nowNanos() - t0) / 1e6
            if result == .pending {
                let done = DispatchSemaphore(value: 0)
                Task.detached {
                    _ = await resource.waitUntilSettled()
                    done.signal()
                }
                done.wait()
                ms = Double(nowNanos() - t0) / 1e6
            }
            let replayed = resource.transactionManager?.lastRecovery.recordsScanned ?? -1
            section.add(
                ["\(formatBytes(filled))", result.rawValue, fmt(ms, 1), "\(replayed)", "\(rmIDs.count)"],
                json: ["logBytes": filled, "result": result.rawValue, "onlineMillis": ms, "tmRecordsReplayed": replayed])
            resource.terminate()
        }
        section.notes.append(String(format: "log filled in %.1f s: bulk records on the default stream, two-phase commits across 2 RMs throughout, a TM checkpoint, then %d more commits", fillSeconds, commitsAfterCheckpoint))
        section.notes.append("page cache warm (the log was just written); result is what online() returned within its 300 ms budget")
        emit([section], options: options, dir: dir.root)
    }

    /// Builds the log; returns the bytes of log written.
    static func fill(path: String, sizeMib: Int, rmIDs: [GUID], commitsAfterCheckpoint: Int) throws -> UInt64 {
        let containers = max(2, sizeMib / 64)
        let log = try LogStore.create(at: path, options: LogCreateOptions(containerSize: 64 << 20, containerCount: containers + 1))
        let tm = try TransactionManager.create(log: log)
        try tm.recover()
        let rms = try rmIDs.map { id in
            try tm.createResourceManager(id: id, description: "bench") { n in
                guard let e = n.enlistment else { return }
                switch n.kind {
                case .prePrepare: try? e.prePrepareComplete()
                case .prepare: try? e.prepareComplete()
                case .commit: try? e.commitComplete()
                case .rollback: try? e.rollbackComplete()
                default: break
                }
            }
        }
        for rm in rms { try rm.recover() }
        let bulk = [UInt8](repeating: 0x42, count: 16 << 10)
        let target = UInt64(containers) * (64 << 20) - (32 << 20)
        var written: UInt64 = 0
        var n = 0
        func commitOne() throws {
            let done = DispatchSemaphore(value: 0)
            let failure = FailureBox()
            let tx = try tm.createTransaction()
            for rm in rms { _ = try rm.enlist(tx) }
            Task.detached {
                do { try await tx.commit() } catch { failure.set(error) }
                done.signal()
            }
            done.wait()
            if let f = failure.firstError { throw BenchError("commit failed", cause: f) }
        }
        while written < target {
            try log.append(bulk)
            written += UInt64(bulk.count)
            n += 1
            if n % 64 == 0 { try commitOne() }
        }
        try log.flush()
        try tm.checkpoint()
        for _ in 0..<commitsAfterCheckpoint { try commitOne() }
        try log.flush()
        try log.close()
        return written
    }
}
