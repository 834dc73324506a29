// Power loss while several writers append and flush at once (harness T2 with concurrency; reliability
// issue, part 1). Writer threads each own a stream and append rounds of self-describing records
// (PowerPayload), each round ending in flush(upTo:), so the writer thread's group commit batches flushes of
// several threads into one fdatasync. The power is cut at the Nth sync; the interleaving differs from run
// to run, so each cut point is a different random moment. Each frozen state becomes post-power-loss disks
// (drop everything unsynced; a random subset of sectors; one torn sector), recovered with the default mode:
//   I1  every record a writer saw acknowledged is there, and so is every record at or below the highest
//       acknowledged LSN (flush(upTo:) covers every stream's records below it);
//   I2  each writer's stream reads back as a prefix of what that writer appended, in order;
//   I3  every record read, per stream and log-wide, is one that was written at that LSN;
//   I4  no crash state is reported as corruption; states a and c also take new records, close and reopen.
// Default: 4 writers, every third sync point. TXLOG_LONG_TESTS=1: 8 writers, every sync point twice (two
// interleavings), more seeds per state.

import Foundation
import Testing
@testable import LogStore

/// What one writer appended and saw acknowledged.
struct PowerWriter: Sendable {
    var index: Int
    var name: String { "w\(index)" }
    var stream: UInt16 = 0
    var entries: [(lsn: LSN, data: [UInt8])] = []
    /// entries[0..<acked] were covered by a flush that returned success.
    var acked = 0
    var error: String?
}

enum ConcurrentPowerWorkload {
    static let longRun = ProcessInfo.processInfo.environment["TXLOG_LONG_TESTS"] == "1"
    static let writerCount = longRun ? 8 : 4
    static let rounds = 24

    /// Records per round of writer `i`: 1, 4 or 7 (flushing after every record, or after a few).
    static func perRound(_ i: Int) -> Int { 1 + (i % 3) * 3 }

    /// Creates the log and one stream per writer, then runs the writers to the end or the power cut.
    /// Returns the writers whose stream was created (an empty list if the cut came first).
    static func run(_ disk: SimulatedDisk) -> [PowerWriter] {
        if !disk.fileExists("/sim") { try? disk.makeDirectory("/sim") }
        let log: LogStore
        var streams: [LogStream] = []
        do {
            log = try LogStore.create(at: PowerWorkload.directory, options: PowerWorkload.options, io: disk)
        } catch {
            return []
        }
        defer { try? log.close() }
        for i in 0..<writerCount {
            guard let s = try? log.createStream("w\(i)") else { return streams.indices.map { PowerWriter(index: $0, stream: streams[$0].id) } }
            streams.append(s)
        }
        let results = ResultBox(count: writerCount)
        let group = DispatchGroup()
        for (i, stream) in streams.enumerated() {
            group.enter()
            Thread {
                defer { group.leave() }
                var w = PowerWriter(index: i, stream: stream.id)
                var seq = 0
                round: for _ in 0..<rounds {
                    for _ in 0..<perRound(i) {
                        let data = PowerPayload.make(type: .data, stream: stream.id, seq: seq)
                        seq += 1
                        do {
                            w.entries.append((try stream.append(data), data))
                        } catch {
                            w.error = "\(error)"
                            break round
                        }
                    }
                    do {
                        try log.flush(upTo: w.entries[w.entries.count - 1].lsn)
                        w.acked = w.entries.count
                    } catch {
                        w.error = "\(error)"
                        break round
                    }
                }
                results.set(i, w)
            }.start()
        }
        group.wait()
        return results.all
    }
}

/// Per-writer results, filled in by the writer threads.
final class ResultBox: @unchecked Sendable {
    private let lock = Lock()
    private var values: [PowerWriter]
    init(count: Int) { values = (0..<count).map { PowerWriter(index: $0) } }
    func set(_ i: Int, _ w: PowerWriter) { lock.withLock { values[i] = w } }
    var all: [PowerWriter] { lock.withLock { values } }
}

enum ConcurrentPowerChecker {
    /// Opens a crashed disk with the default recovery and checks it against what the writers saw.
    static func check(_ disk: SimulatedDisk, _ writers: [PowerWriter], continueAfter: Bool) -> [String] {
        let log: LogStore
        do {
            log = try LogStore.open(at: PowerWorkload.directory, io: disk)
        } catch let e as LogError where e.code == .notFound && writers.isEmpty {
            return []
        } catch {
            return ["open failed: \(error)"]
        }
        defer { try? log.close() }
        var problems: [String] = []
        if let c = log.recoveryReport.corruption { problems.append("a crash state was reported as corruption (I4): \(c)") }
        let ackedLSN = writers.compactMap { $0.acked > 0 ? $0.entries[$0.acked - 1].lsn : nil }.max() ?? .null
        var byLSN: [UInt64: [UInt8]] = [:]
        for w in writers {
            for e in w.entries { byLSN[e.lsn.rawValue] = e.data }
            let stream: LogStream
            do { stream = try log.openStream(w.name) } catch {
                problems.append("\(w.name): acknowledged stream is missing (I8): \(error)")
                continue
            }
            var n = 0
            do {
                var cursor = try stream.records()
                while let r = try cursor.next() {
                    guard n < w.entries.count, r.lsn == w.entries[n].lsn, same(r.data, w.entries[n].data), r.stream == w.stream else {
                        problems.append("\(w.name): record #\(n) is \(r.lsn), not the next one appended (I2/I3)")
                        break
                    }
                    n += 1
                }
            } catch {
                problems.append("\(w.name): reading failed after \(n) records: \(error)")
            }
            // Everything this writer saw acknowledged, and everything below any acknowledged LSN.
            let needed = max(w.acked, w.entries.firstIndex { $0.lsn > ackedLSN } ?? w.entries.count)
            if n < needed {
                problems.append("\(w.name): \(n) records survived, \(needed) were acknowledged (I1; \(w.acked) by this writer, highest acknowledged LSN \(ackedLSN))")
            }
        }
        do {
            var cursor = try log.records()
            while let r = try cursor.next() {
                if let data = byLSN[r.lsn.rawValue], same(data, r.data) { continue }
                problems.append("log-wide: \(r.lsn) was never written with these bytes (I3)")
                break
            }
        } catch {
            problems.append("log-wide cursor failed: \(error)")
        }
        if continueAfter, problems.isEmpty {
            problems += PowerChecker.continueAndReopen(log, disk, ids: [0] + writers.map(\.stream))
        }
        return problems
    }
}

@Suite("Power loss with concurrent writers")
struct ConcurrentPowerLossTests {
    static let longRun = ConcurrentPowerWorkload.longRun
    static let plan: [(SimulatedDisk.CrashMode, UInt64)] =
        [(.dropUnsynced, 0)] + (longRun ? Array(1...4) : [1]).flatMap { [(.randomSectors, UInt64($0)), (.tornSector, UInt64($0))] }

    @Test("uncut, the writers finish and every record reads back; group commit merges their flushes")
    func baseline() throws {
        let disk = SimulatedDisk()
        let writers = ConcurrentPowerWorkload.run(disk)
        #expect(writers.count == ConcurrentPowerWorkload.writerCount)
        #expect(writers.allSatisfy { $0.error == nil && $0.acked == ConcurrentPowerWorkload.rounds * ConcurrentPowerWorkload.perRound($0.index) })
        let flushes = writers.reduce(0) { $0 + $1.entries.count / ConcurrentPowerWorkload.perRound($1.index) }
        print("[power-concurrent] \(writers.count) writers, \(writers.reduce(0) { $0 + $1.entries.count }) records, \(flushes) flushes, \(disk.syncCount) syncs, last \(writers.compactMap { $0.entries.last?.lsn }.max() ?? .null)")
        #expect((writers.compactMap { $0.entries.last?.lsn }.max()?.container ?? 0) >= 2, "the workload should roll over a container")
        #expect(ConcurrentPowerChecker.check(disk.crash(mode: .dropUnsynced, seed: 0), writers, continueAfter: true).isEmpty)
    }

    @Test("the checker catches a device that acknowledges fdatasync without making data durable")
    func checkerCatchesLyingDisk() {
        let disk = SimulatedDisk(ignoresFileSync: true)
        disk.armCut { $0 == .sync(60) }
        let writers = ConcurrentPowerWorkload.run(disk)
        guard let frozen = disk.frozenAtCut else {
            Issue.record("the workload has fewer than 60 syncs")
            return
        }
        #expect(!ConcurrentPowerChecker.check(frozen.crash(mode: .dropUnsynced, seed: 0), writers, continueAfter: false).isEmpty)
    }

    /// Every third sync point by default (a few seconds); every one, twice, in the long run.
    static let stride = longRun ? 1 : 3

    @Test("power cut at sync points while writers append and flush: every acknowledged record survives, each stream a prefix")
    func cutAtSyncPoints() async {
        // On a thread of its own: in the long run the sweep takes minutes, and on the cooperative pool it
        // held a thread the other tests' waits (a `CrashTests` kill) needed.
        let (points, last, problems) = await onOwnThread { () -> (Int, Int, [String]) in
            let reference = SimulatedDisk()
            _ = ConcurrentPowerWorkload.run(reference)
            // The number of syncs varies with the interleaving; go a little past the uncut run's count.
            let last = reference.syncCount + reference.syncCount / 4
            var points = 0, states = 0, acknowledged = 0
            var problems: [String] = []
            for pass in 0..<(Self.longRun ? 2 : 1) {
                for n in Swift.stride(from: 1 + pass, through: last, by: Self.stride) {
                    let disk = SimulatedDisk()
                    disk.armCut { $0 == .sync(n) }
                    let writers = ConcurrentPowerWorkload.run(disk)
                    guard let frozen = disk.frozenAtCut else { continue }
                    points += 1
                    acknowledged += writers.reduce(0) { $0 + $1.acked }
                    for (mode, seed) in Self.plan {
                        if mode != .dropUnsynced, frozen.volatileUnits == 0 { continue }
                        states += 1
                        let found = ConcurrentPowerChecker.check(
                            frozen.crash(mode: mode, seed: seed &+ UInt64(n) << 8 &+ UInt64(pass) << 20), writers, continueAfter: mode != .randomSectors)
                        problems += found.map { "pass \(pass) sync \(n) mode \(mode) seed \(seed): \($0)" }
                    }
                }
            }
            print("[power-concurrent] sync sweep: \(points) crash points, \(states) crash states checked, \(acknowledged) acknowledged records checked, \(problems.count) problems")
            return (points, last, problems)
        }
        // How many syncs a run makes depends on how group commit merges the writers' flushes (49 to 111
        // seen, and it varies from run to run), so only a floor is checked: the sweep is not vacuous.
        #expect(points >= 8, "only \(points) of the sync points up to \(last) were reached")
        for p in problems.prefix(15) { Issue.record(Comment(rawValue: p)) }
    }
}
