// Power-loss sweep over the log's metadata operations (harness T2, Support/SimulatedDisk.swift).
//
// PowerLossTests cuts the power during appends, flushes, restart areas, base advances and one added
// container. This sweep covers the rest of the base file's life on a simulated disk: removing a free
// container, a policy change (container prefix, auto-grow), auto-grow itself on a full log, deleting a
// stream, a log-wide archive tail that keeps containers pending archive and then lets them go, removing
// a container that holds records (pending delete, then deleted by recycling), a restart area with a new
// base, auto-shrink, and close. Power is cut at every sync call; each frozen state becomes the
// drop-everything state, a random-sectors state and a torn-sector state, and each is opened with every
// recovery mode and checked:
//   - the default open succeeds; strict may refuse with a typed error; point-in-time opens read-only;
//   - every acknowledged record at or above its stream's acknowledged base reads back byte for byte;
//   - every acknowledged metadata change is there (stream created or deleted, container added or
//     removed or pending delete, policy, archive tail), and an unacknowledged one is there or not, whole;
//   - each container the base file names is a distinct file; every other file is a stray that
//     `strayFiles` reports (an orphan not in the base file) and that no open reads;
//   - the recovered log goes on: append, flush, add a container (replacing any orphan of that name),
//     close, reopen, and everything acknowledged is still there.

import Foundation
import Testing
@testable import LogStore

struct MetaLedger: Sendable {
    enum Op: Sendable, Equatable {
        case addContainer(UInt32?)
        case removeFree(UInt32)
        case removeHolding(UInt32)
        case setPolicy(LogPolicy)
        case deleteStream(String)
        case archiveTail(LSN)
        case advanceBase(UInt16, LSN)
        case restart(UInt16, LSN)
    }

    struct Step: Sendable {
        var op: Op
        var acked = false
    }

    struct Record: Sendable {
        var stream: UInt16
        var lsn: LSN
        var data: [UInt8]
    }

    var created = false
    var streams: [String: UInt16] = [:]
    var steps: [Step] = []
    var records: [Record] = []
    var ackedLSN: LSN = .null
    var error: String?

    func acked(_ match: (Op) -> Bool) -> Bool { steps.contains { $0.acked && match($0.op) } }
    func attempted(_ match: (Op) -> Bool) -> Bool { steps.contains { match($0.op) } }
}

enum MetaWorkload {
    static let directory = "/sim/meta"
    static let options = LogCreateOptions(containerSize: 524_288, containerCount: 3, blockSize: 4096)

    static func payload(stream: UInt16, seq: Int) -> [UInt8] {
        FaultTestKit.selfNamed(
            "s\(stream)#\(seq)|", length: 900 + (seq &* 7919 &+ Int(stream) &* 131) % 1500, seed: UInt64(truncatingIfNeeded: seq &* 31 &+ Int(stream)))
    }

    static func run(_ disk: any FileIO) -> MetaLedger {
        var L = MetaLedger()
        if !disk.fileExists("/sim") { try? disk.makeDirectory("/sim") }
        var log: LogStore?
        do {
            let created = try LogStore.create(at: directory, options: options, io: disk)
            log = created
            L.created = true
            var handles: [LogStream] = [created.defaultStream]
            for name in ["a", "b", "c"] {
                let s = try created.createStream(name)
                L.streams[name] = s.id
                handles.append(s)
            }
            var seq = [Int](repeating: 0, count: 4)
            func round(_ streams: [Int], count: Int = 12) throws -> [LSN] {
                var firsts: [LSN] = []
                var last = LSN.null
                for k in 0..<count {
                    let i = streams[k % streams.count]
                    let data = payload(stream: handles[i].id, seq: seq[i])
                    seq[i] += 1
                    let lsn = try handles[i].append(data)
                    L.records.append(.init(stream: handles[i].id, lsn: lsn, data: data))
                    if k < streams.count { firsts.append(lsn) }
                    last = lsn
                }
                try created.flush(upTo: last)
                L.ackedLSN = last
                return firsts
            }
            func step(_ op: MetaLedger.Op, _ body: () throws -> Void) throws {
                L.steps.append(.init(op: op))
                try body()
                L.steps[L.steps.count - 1].acked = true
            }
            let early = try round([0, 1, 2, 3])
            _ = try round([0, 1, 2, 3])
            // A free container added, then removed.
            L.steps.append(.init(op: .addContainer(nil)))
            let added = try created.addContainer()
            L.steps[L.steps.count - 1] = .init(op: .addContainer(added), acked: true)
            _ = try round([0, 1, 2])
            try step(.removeFree(added)) { try created.removeContainer(added) }
            // Auto-grow under a new prefix; stream c goes.
            var policy = LogPolicy()
            policy.autoGrow = true
            policy.growthIncrement = 1
            policy.maxContainers = 5
            policy.containerPrefix = "grow-"
            try step(.setPolicy(policy)) { try created.setPolicy(policy) }
            try step(.deleteStream("c")) { try created.deleteStream("c") }
            // The log is archived from its start: containers the bases pass wait for the archive tail.
            try step(.archiveTail(early[0])) { try created.setArchiveTail(early[0]) }
            // Fill the log: every base stays at its stream's first record, so it grows to 5 containers.
            var firsts: [[LSN]] = []
            while created.info().containers.count < 5 {
                firsts.append(try round([0, 1, 2]))
            }
            for _ in 0..<3 { firsts.append(try round([0, 1, 2])) }
            // Bases move past the first two logical containers: they become pending archive.
            let mid = firsts[firsts.count - 4]
            for i in 0..<3 {
                try step(.advanceBase(handles[i].id, mid[i])) { try handles[i].advanceBase(to: mid[i]) }
            }
            // A container that holds records is removed: pending delete until the log passes it.
            let holding = created.info().containers.filter { $0.state != .inactive && $0.logicalID > 0 }.sorted { $0.logicalID < $1.logicalID }
            if let victim = holding.dropLast().last(where: { $0.state == .active }) {
                try step(.removeHolding(victim.physicalID)) { try created.removeContainer(victim.physicalID) }
            }
            // The archive tail moves on: pending-archive containers are freed (and the pending delete one goes).
            try step(.archiveTail(mid[0])) { try created.setArchiveTail(mid[0]) }
            firsts.append(try round([0, 1, 2]))
            // A restart area on a with a new base; then shrinking.
            let newBase = firsts[firsts.count - 2][1]
            try step(.restart(handles[1].id, newBase)) { _ = try handles[1].writeRestartArea(Array("restart".utf8), newBase: newBase) }
            var shrink = policy
            shrink.autoShrinkPercent = 20
            shrink.autoGrow = false
            try step(.setPolicy(shrink)) { try created.setPolicy(shrink) }
            let last = firsts[firsts.count - 1]
            for i in [0, 2] {
                try step(.advanceBase(handles[i].id, last[i])) { try handles[i].advanceBase(to: last[i]) }
            }
            try step(.archiveTail(.null)) { try created.setArchiveTail(.null) }
            _ = try round([0, 1, 2])
            log = nil
            try created.close()
        } catch let e as LogError {
            L.error = "\(e)"
        } catch {
            L.error = "untyped error: \(error)"
        }
        if let log { try? log.close() }
        return L
    }
}

/// Fails the nth call of one kind once (the device then works again), with the given errno.
final class FailOnceIO: ForwardingFileIO, @unchecked Sendable {
    enum Kind: String, CaseIterable, Sendable { case fsync, fdatasync, fsyncDirectory, rename, unlink, truncate, pwritev, open }
    let base: any FileIO
    let kind: Kind
    let nth: Int
    let errno: Int32
    private let lock = Lock()
    private var seen = 0
    private(set) var fired = false

    init(_ base: any FileIO, kind: Kind, nth: Int, errno: Int32) {
        self.base = base
        self.kind = kind
        self.nth = nth
        self.errno = errno
    }

    private func hit(_ k: Kind) throws {
        guard k == kind else { return }
        let fire = lock.withLock { () -> Bool in
            seen += 1
            if seen == nth { fired = true }
            return seen == nth
        }
        if fire { throw LogError(.io, "injected \(k.rawValue) failure (errno \(errno))", errno: errno) }
    }

    func open(_ path: String, mode: FileOpenMode) throws -> Int32 {
        if mode == .createExclusive { try hit(.open) }
        return try base.open(path, mode: mode)
    }
    func fsync(_ fd: Int32) throws { try hit(.fsync); try base.fsync(fd) }
    func fdatasync(_ fd: Int32) throws { try hit(.fdatasync); try base.fdatasync(fd) }
    func fsyncDirectory(_ path: String) throws { try hit(.fsyncDirectory); try base.fsyncDirectory(path) }
    func rename(_ from: String, _ to: String) throws { try hit(.rename); try base.rename(from, to) }
    func unlink(_ path: String) throws { try hit(.unlink); try base.unlink(path) }
    func truncate(_ fd: Int32, to size: UInt64) throws { try hit(.truncate); try base.truncate(fd, to: size) }
    func pwritev(_ fd: Int32, _ buffers: [UnsafeRawBufferPointer], at offset: UInt64) throws -> Int {
        try hit(.pwritev)
        return try base.pwritev(fd, buffers, at: offset)
    }
}

enum MetaChecker {
    /// Checks one crashed disk; returns the problems found.
    static func check(_ disk: SimulatedDisk, _ L: MetaLedger) -> [String] {
        guard L.created else { return [] }
        var problems: [String] = []
        let dir = MetaWorkload.directory
        // Strict and point-in-time first, on copies.
        do {
            let strict = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: false, recovery: .strict), io: disk.copy())
            try? strict.close()
        } catch let e as LogError {
            if e.code != .corrupt && e.code != .notFound { problems.append("strict open: \(e)") }
        } catch { problems.append("strict open: untyped \(error)") }
        do {
            let pit = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true, recovery: .pointInTime), io: disk.copy())
            if pit.recoveryReport.corruption != nil { problems.append("point-in-time: corruption \(pit.recoveryReport.corruption!)") }
            try? pit.close()
        } catch let e as LogError {
            if e.code != .notFound { problems.append("point-in-time open: \(e)") }
        } catch { problems.append("point-in-time open: untyped \(error)") }

        let log: LogStore
        do { log = try LogStore.open(at: dir, io: disk) } catch {
            // A create that did not finish leaves no log (not-found).
            if let e = error as? LogError, e.code == .notFound, L.streams.isEmpty { return problems }
            return problems + ["default open failed: \(error)"]
        }
        defer { try? log.close() }
        if log.recoveryReport.corruption != nil { problems.append("corruption reported") }
        let info = log.info()
        let byName = Dictionary(uniqueKeysWithValues: log.streams().map { ($0.name, $0) })
        // Streams.
        for (name, _) in L.streams {
            let deleteAcked = L.acked { $0 == .deleteStream(name) }
            let deleteAttempted = L.attempted { $0 == .deleteStream(name) }
            if deleteAcked, byName[name] != nil { problems.append("stream \(name): deletion acknowledged, but it is there") }
            if !deleteAttempted, byName[name] == nil { problems.append("stream \(name): creation acknowledged, but it is gone") }
        }
        // Containers.
        let ids = Set(info.containers.map(\.physicalID))
        for s in L.steps {
            switch s.op {
            case .addContainer(let id?):
                if s.acked, !L.attempted({ $0 == .removeFree(id) || $0 == .removeHolding(id) }), !ids.contains(id) {
                    problems.append("container \(id): add acknowledged, not in the table")
                }
            case .removeFree(let id):
                if s.acked, ids.contains(id) { problems.append("container \(id): removal acknowledged, still in the table") }
            case .removeHolding(let id):
                if s.acked, let c = info.containers.first(where: { $0.physicalID == id }), c.state != .pendingDelete {
                    problems.append("container \(id): pending delete acknowledged, now \(c.state)")
                }
            default: break
            }
        }
        // Policy: the newest acknowledged one, or one attempted after it.
        let policies = L.steps.compactMap { s -> (LogPolicy, Bool)? in if case .setPolicy(let p) = s.op { return (p, s.acked) } else { return nil } }
        if let k = policies.lastIndex(where: { $0.1 }) {
            let allowed = policies[k...].map(\.0)
            if !allowed.contains(info.policy) { problems.append("policy \(info.policy), acknowledged \(policies[k].0)") }
        }
        // Archive tail likewise.
        let tails = L.steps.compactMap { s -> (LSN, Bool)? in if case .archiveTail(let t) = s.op { return (t, s.acked) } else { return nil } }
        if let k = tails.lastIndex(where: { $0.1 }) {
            let allowed = tails[k...].map(\.0)
            if !allowed.contains(info.archiveTail) { problems.append("archive tail \(info.archiveTail), acknowledged \(tails[k].0)") }
        }
        // Files: distinct, and every other file is a stray orphan.
        let paths = info.containers.map(\.path)
        if Set(paths).count != paths.count { problems.append("two containers share a file: \(paths)") }
        do {
            for s in try log.strayFiles() {
                if s.kind != .orphanContainer || !s.detail.contains("not in the base file") && !s.detail.contains("no valid container header") {
                    problems.append("stray file \(s)")
                }
            }
        } catch { problems.append("strayFiles: \(error)") }
        // Records: every acknowledged one at or above its stream's acknowledged base.
        for (name, id) in L.streams.merging(["": 0], uniquingKeysWith: { a, _ in a }) {
            guard let s = byName[name] else { continue }
            let ackedBase = L.steps.reduce(LSN.null) { b, st in
                switch st.op {
                case .advanceBase(id, let l) where st.acked, .restart(id, let l) where st.acked: return max(b, l)
                default: return b
                }
            }
            if s.baseLSN < ackedBase { problems.append("stream \(name): base \(s.baseLSN) behind the acknowledged \(ackedBase)") }
            for r in L.records where r.stream == id && r.lsn <= L.ackedLSN && r.lsn >= max(ackedBase, s.baseLSN) {
                do {
                    let got = try log.read(r.lsn)
                    if got.data != r.data || got.stream != id { problems.append("record \(r.lsn): wrong content") }
                } catch { problems.append("record \(r.lsn) of stream \(name): \(error)") }
            }
        }
        // It goes on: append, flush, add a container, close, reopen.
        do {
            let lsn = try log.append(Array("after".utf8))
            try log.flush(upTo: lsn)
            let added = try log.addContainer()
            try log.close()
            let again = try LogStore.open(at: dir, io: disk)
            defer { try? again.close() }
            if try again.read(lsn).data != Array("after".utf8) { problems.append("the record written after recovery is wrong") }
            if !again.info().containers.contains(where: { $0.physicalID == added }) { problems.append("container added after recovery is gone") }
        } catch { problems.append("continuing after recovery: \(error)") }
        return problems
    }
}

@Suite("Power loss during metadata operations")
struct MetadataPowerLossTests {
    @Test("the metadata workload runs to its end and exercises every operation")
    func baseline() throws {
        let disk = SimulatedDisk()
        let L = MetaWorkload.run(disk)
        let failure = L.error ?? ""
        #expect(failure.isEmpty, "\(failure)")
        #expect(L.steps.allSatisfy { $0.acked })
        #expect(L.steps.contains { if case .removeHolding = $0.op { return true } else { return false } })
        print("[meta] steps \(L.steps.count), records \(L.records.count), syncs \(disk.syncCount)")
        let problems = MetaChecker.check(disk.crash(mode: .dropUnsynced, seed: 0), L)
        #expect(problems.isEmpty, "\(problems)")
    }

    @Test("power cut at every sync of the metadata workload: every acknowledged change survives, nothing half-done")
    func cutAtEverySync() async {
        let (points, problems) = await onOwnThread { () -> (Int, [String]) in
            var problems: [String] = []
            var points = 0
            Self.forEachCut({ .sync($0) }) { frozen, L, n in
                points += 1
                for (mode, seed) in [(SimulatedDisk.CrashMode.dropUnsynced, UInt64(0)), (.randomSectors, 1), (.tornSector, 1)] {
                    if mode != .dropUnsynced, frozen.volatileUnits == 0 { continue }
                    problems += MetaChecker.check(frozen.crash(mode: mode, seed: seed &+ UInt64(n)), L).map { "sync \(n) \(mode): \($0)" }
                }
            }
            return (points, problems)
        }
        Self.report("crash points", points: points, problems: problems)
    }

    @Test("power cut after every pwritev of the metadata workload: random subsets and torn sectors")
    func cutAfterEveryWrite() async {
        let (points, problems) = await onOwnThread { () -> (Int, [String]) in
            var problems: [String] = []
            var points = 0
            Self.forEachCut({ .write($0) }) { frozen, L, n in
                points += 1
                for mode in [SimulatedDisk.CrashMode.randomSectors, .tornSector] {
                    problems += MetaChecker.check(frozen.crash(mode: mode, seed: UInt64(n)), L).map { "write \(n) \(mode): \($0)" }
                }
            }
            return (points, problems)
        }
        Self.report("write cut points", points: points, problems: problems)
    }

    @Test("power cut again at every sync of the recovering open, from every sync point of the metadata workload")
    func cutDuringRecovery() async {
        let (points, problems) = await onOwnThread { () -> (Int, [String]) in
            var problems: [String] = []
            var points = 0
            Self.forEachCut({ .sync($0) }) { frozen, L, n in
                let crashed = frozen.crash(mode: .tornSector, seed: UInt64(n))
                var k = 1
                while k < 20 {
                    let d1 = crashed.copy()
                    let at = SimulatedDisk.Event.sync(k)
                    d1.armCut { $0 == at }
                    if let log = try? LogStore.open(at: MetaWorkload.directory, io: d1) {
                        d1.disarmCut()
                        try? log.close()
                    }
                    guard let mid = d1.frozenAtCut else { break }
                    points += 1
                    problems += MetaChecker.check(mid.crash(mode: .dropUnsynced, seed: 0), L).map { "sync \(n), recovery sync \(k): \($0)" }
                    k += 1
                }
            }
            return (points, problems)
        }
        Self.report("recovery cut points", points: points, problems: problems)
    }

    /// Runs the metadata workload once per cut point `event(n)`, n = 1, 2, … until a run ends before
    /// reaching its cut, and calls `body` with the disk frozen at the cut, the run's ledger and n.
    static func forEachCut(_ event: (Int) -> SimulatedDisk.Event, _ body: (SimulatedDisk, MetaLedger, Int) -> Void) {
        var n = 1
        while true {
            let disk = SimulatedDisk()
            let cut = event(n)
            disk.armCut { $0 == cut }
            let L = MetaWorkload.run(disk)
            guard let frozen = disk.frozenAtCut else { return }
            body(frozen, L, n)
            n += 1
        }
    }

    /// Prints the sweep's totals; at least 50 points must have been cut, and each problem is an issue.
    static func report(_ what: String, points: Int, problems: [String]) {
        print("[meta] \(points) \(what), \(problems.count) problems")
        #expect(points > 50)
        for p in problems.prefix(20) { Issue.record(Comment(rawValue: p)) }
    }

    @Test("one I/O error at every call of the metadata workload: a typed error, and after a crash every acknowledged change is there",
          arguments: FailOnceIO.Kind.allCases)
    func oneFaultAtEveryCall(_ kind: FailOnceIO.Kind) async {
        let (points, problems) = await onOwnThread { () -> (Int, [String]) in
            var problems: [String] = []
            var n = 1
            var points = 0
            while n < 400 {
                let disk = SimulatedDisk()
                let io = FailOnceIO(disk, kind: kind, nth: n, errno: kind == .pwritev || kind == .truncate ? 28 : 5)
                let L = MetaWorkload.run(io)
                guard io.fired else { break }
                points += 1
                if let e = L.error, e.hasPrefix("untyped") { problems.append("\(kind) #\(n): \(e)") }
                problems += MetaChecker.check(disk.crash(mode: .dropUnsynced, seed: 0), L).map { "\(kind) #\(n) (\(L.error ?? "no error")): \($0)" }
                n += 1
            }
            return (points, problems)
        }
        print("[meta] \(kind): \(points) fault points, \(problems.count) problems")
        for p in problems.prefix(20) { Issue.record(Comment(rawValue: p)) }
    }
}
