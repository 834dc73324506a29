// The single-threaded driver of RandomModelTests: random LogStore calls, each checked against the model
// (RandomModel.swift) as it returns. The reading, restart-area and space operations are in
// RandomModelDriver+Ops.swift.

import Foundation
@testable import LogStore

extension SplitMix64 {
    mutating func below(_ n: Int) -> Int { n <= 1 ? 0 : Int(next() % UInt64(n)) }
    mutating func chance(_ p: Double) -> Bool { Double(next() >> 11) / Double(1 << 53) < p }
    mutating func pick<T>(_ items: [T]) -> T? { items.isEmpty ? nil : items[below(items.count)] }
}

/// One seed's run: a log, its model, and the operations done so far.
final class ModelDriver {
    var rng: SplitMix64
    var directory: String
    /// The first directory: crash images are copied beside it.
    let root: String
    var log: LogStore
    var model = LogModel()
    /// Every operation's name and how often it ran (for the report).
    var counts: [String: Int] = [:]
    /// The last operations, for the failure message.
    var history: [String] = []
    var streamSerial = 0
    let blockSize: Int
    var checker: ModelChecker { ModelChecker(log: log, model: model) }

    init(seed: UInt64, directory: String) throws {
        var rng = SplitMix64(seed: seed)
        self.directory = directory
        root = directory
        blockSize = [1024, 2048, 4096][rng.below(3)]
        let codec = [Codec.lz4, .none, .zlib(level: 1)][rng.below(3)]
        log = try LogStore.create(
            at: directory, options: LogCreateOptions(containerSize: 512 * 1024, containerCount: 3, blockSize: blockSize, codec: codec),
            openOptions: Self.openOptions(&rng))
        self.rng = rng
    }

    /// Open options for each open: sometimes a writer that writes every sealed block at once (no dirty
    /// memory), a read cache of a few blocks, another codec for the blocks written from now on.
    func openOptions() -> LogOpenOptions { Self.openOptions(&rng) }

    static func openOptions(_ rng: inout SplitMix64) -> LogOpenOptions {
        var o = LogOpenOptions()
        if rng.chance(0.3) { o.groupCommit.maxDirtyBytes = rng.chance(0.5) ? 0 : 16 * 1024 }
        if rng.chance(0.3) { o.readCacheBytes = 4096 }
        if rng.chance(0.2) { o.codec = [Codec.lz4, .none, .zlib(level: 6)][rng.below(3)] }
        return o
    }

    func note(_ op: String, _ detail: @autoclosure () -> String = "") {
        counts[op, default: 0] += 1
        history.append("\(op) \(detail())")
        if history.count > 40 { history.removeFirst() }
    }

    /// Runs `operations` random operations, a full check every 25 and at the end.
    func run(operations: Int) throws {
        for i in 0..<operations {
            try step()
            if !pending.isEmpty { throw ModelViolation(pending.joined(separator: "; ")) }
            if i % 25 == 24 { try checker.checkAll() }
        }
        try checker.checkAll()
        try reopen(crash: false)
        try log.close()
    }

    func step() throws {
        switch rng.below(100) {
        case 0..<34: try append()
        case 34..<40: try flush()
        case 40..<50: try readOne()
        case 50..<55: try cursor()
        case 55..<60: try chain()
        case 60..<63: try streamLifecycle()
        case 63..<68: try reservation()
        case 68..<73: try restartArea()
        case 73..<80: try advanceBase()
        case 80..<84: try archiveTail()
        case 84..<88: try container()
        case 88..<90: try policy()
        case 90..<93: try reopen(crash: rng.chance(0.5))
        default: try append()
        }
    }

    // MARK: Streams and records

    func handle(_ s: ModelStream) throws -> LogStream { s.id == 0 ? log.defaultStream : try log.openStream(s.name) }

    func randomStream() -> ModelStream { rng.pick(Array(model.streams.values.sorted { $0.id < $1.id })) ?? model.streams[""]! }

    /// A record of the model the log must still hold (at or above the floor), if any.
    func readableRecord(stream: UInt16? = nil) -> ModelRecord? {
        let held = checker.heldContainers
        let c = checker
        let candidates = model.records.suffix(400).filter { (stream == nil || $0.stream == stream) && c.mustBeReadable($0.lsn, held: held) }
        return rng.pick(Array(candidates))
    }

    func payload(_ size: Int) -> [UInt8] {
        rng.chance(0.5) ? rng.bytes(size) : [UInt8](repeating: UInt8(truncatingIfNeeded: size), count: size)
    }

    func recordSize() -> Int {
        let header = 64
        switch rng.below(100) {
        case 0..<10: return rng.below(2)
        case 10..<60: return rng.below(256)
        case 60..<85: return rng.below(4096)
        case 85..<97: return max(0, blockSize - header + rng.below(96) - 48)
        case 97..<99: return log.maxRecordSize - rng.below(2)
        default: return log.maxRecordSize + 1
        }
    }

    /// A link for a new record of `s`: one of its earlier records, `invalid`, `null`, or (rarely) one
    /// beyond the log's last record.
    func link(_ s: ModelStream) -> (LSN, beyond: Bool) {
        switch rng.below(10) {
        case 0..<3: return (.invalid, false)
        case 3: return (.null, false)
        case 4 where model.last.isValid && model.last.slot < LSN.maxSlot && rng.chance(0.2):
            return (LSN(uncheckedContainer: model.last.container, blockOffset: model.last.blockOffset, slot: model.last.slot + 1), true)
        default: return (rng.pick(Array(s.lsns.suffix(50))) ?? .invalid, false)
        }
    }

    func append() throws {
        let s = randomStream()
        let size = recordSize()
        let data = payload(size)
        let (previous, p) = link(s)
        let (undoNext, u) = link(s)
        let useReservation = !s.reserved.isEmpty && rng.chance(0.4)
        note("append", "\(s.name):\(size) previous \(previous) undoNext \(undoNext) reservation \(useReservation)")
        let fits = !useReservation || size <= (s.reserved.max() ?? 0)
        let invalid = p || u || size > log.maxRecordSize || !fits
        do {
            let lsn = try handle(s).append(data, previous: previous, undoNext: undoNext, usingReservation: useReservation)
            if invalid { throw ModelViolation("append of a bad record (\(size) bytes) returned \(lsn)") }
            try model.add(ModelRecord(lsn: lsn, stream: s.id, type: .data, data: data, previous: previous, undoNext: undoNext))
            if useReservation, let i = LogModel.fittingReservation(s.reserved, size) { model.streams[s.name]?.reserved.remove(at: i) }
            if rng.chance(0.2) { try checker.checkRead(lsn, held: checker.heldContainers) }
        } catch let e as LogError {
            if invalid, e.code == .invalidArgument { return }
            guard e.code == .logFull else { throw ModelViolation("append threw \(e.code.rawValue): \(e.message)") }
            try expectFull(e, size: size, usingReservation: useReservation)
            try relieve()
        }
    }

    /// A `logFull` is right only when the log really is full: reservations outstanding, or no free
    /// container and nothing the floor lets go of still held.
    func expectFull(_ e: LogError, size: Int, usingReservation: Bool) throws {
        if usingReservation { throw ModelViolation("an append using a reservation got logFull: \(e.message)") }
        if model.streams.values.contains(where: { !$0.reserved.isEmpty }) { return }
        let info = log.info()
        let held = info.containers.filter { $0.logicalID != 0 }.map(\.logicalID)
        let floor = model.floor
        let pinned = floor == .null || (held.min() ?? 0) >= floor.container
        guard info.freeContainers == 0, pinned || size > Int(info.containerSize) / 2 else {
            throw ModelViolation(
                "logFull with \(info.freeContainers) free containers, held \(held.sorted()), floor \(floor), no reservations: \(e.message)")
        }
    }

    /// After a full log: every base to the log's last record, archive tails and reservations cleared.
    func relieve() throws {
        note("relieve")
        try log.setArchiveTail(.null)
        model.logArchiveTail = .null
        for s in model.streams.values.sorted(by: { $0.id < $1.id }) {
            let h = try handle(s)
            if s.archiveTail != .null { try h.setArchiveTail(.null) }
            if !s.reserved.isEmpty { try h.release(recordSizes: s.reserved) }
            model.streams[s.name]?.archiveTail = .null
            model.streams[s.name]?.reserved = []
        }
        guard model.last.isValid else { return }
        try log.flush(upTo: model.last)
        model.durable = model.last
        for s in model.streams.values.sorted(by: { $0.id < $1.id }) where s.base != .null {
            try handle(s).advanceBase(to: model.last)
            let last = model.last
            model.streams[s.name]?.base = last
        }
    }

    func flush() throws {
        let target = rng.chance(0.5) ? model.last : (rng.pick(Array(model.records.suffix(100)))?.lsn ?? model.last)
        note("flush", "\(target)")
        guard target.isValid else { return }
        try log.flush(upTo: target)
        model.durable = max(model.durable, target)
        guard log.durableLSN >= target else { throw ModelViolation("durableLSN \(log.durableLSN) after a flush to \(target)") }
    }

    func streamLifecycle() throws {
        let names = model.streams.keys.filter { !$0.isEmpty }.sorted()
        switch rng.below(4) {
        case 0 where names.count < 6, 1 where names.count < 6:
            streamSerial += 1
            let name = "s\(streamSerial)"
            note("createStream", name)
            let s = rng.chance(0.5) ? try log.createStream(name) : try log.stream(name)
            if model.streams.values.contains(where: { $0.id == s.id }) { throw ModelViolation("stream id \(s.id) reused") }
            model.streams[name] = ModelStream(id: s.id, name: name)
        case 2:
            guard let name = rng.pick(names) else { return }
            note("openStream", name)
            let s = rng.chance(0.5) ? try log.openStream(name) : try log.stream(name)
            guard s.id == model.streams[name]?.id else { throw ModelViolation("stream \(name) opened as id \(s.id)") }
            expectCode(.invalidArgument, "createStream of a taken name") { _ = try self.log.createStream(name) }
            expectCode(.notFound, "openStream of an unknown name") { _ = try self.log.openStream("never-\(name)") }
        default:
            guard let name = rng.pick(names), let s = model.streams[name] else { return }
            note("deleteStream", name)
            let old = try log.openStream(name)
            try log.deleteStream(name)
            model.streams[name] = nil
            expectCode(.notFound, "read through a deleted stream") { _ = try old.read(s.lsns.last ?? self.model.last) }
            expectCode(.notFound, "deleting a deleted stream") { try self.log.deleteStream(name) }
            expectCode(.invalidArgument, "deleting the default stream") { try self.log.deleteStream("") }
        }
    }

    /// Records a violation unless `body` throws a `LogError` with `code`.
    var pending: [String] = []
    func expectCode(_ code: LogError.Code, _ what: String, _ body: () throws -> Void) {
        do {
            try body()
            pending.append("\(what): no error, expected \(code.rawValue)")
        } catch let e as LogError {
            if e.code != code { pending.append("\(what): \(e.code.rawValue) (\(e.message)), expected \(code.rawValue)") }
        } catch {
            pending.append("\(what): \(error)")
        }
    }

    /// Close and reopen, or a process crash: the directory copied as it is (completed writes are in the
    /// page cache), the copy opened. Every durable record is then read back; of the others, a prefix.
    func reopen(crash: Bool) throws {
        note(crash ? "crash" : "reopen")
        if crash {
            let copy = root + "-crash\(counts["crash", default: 0])"
            // A container the log recycled away is unlinked in the background, after the base file stopped
            // naming it: the copy is taken once that is over (retried if one goes meanwhile), as a crash
            // leaves the files at one instant.
            for attempt in 0..<4 {
                log.core.deletions.wait()
                do {
                    try LogTestKit.snapshot(directory, to: copy)
                    break
                } catch where attempt < 3 {
                    LogTestKit.remove(copy)
                }
            }
            try log.close()
            LogTestKit.remove(directory)
            directory = copy
        } else {
            try log.close()
            model.durable = model.last
        }
        log = try LogStore.open(at: directory, options: openOptions())
        let last = log.lastLSN
        guard last >= model.durable, last == .null || model.record(last) != nil else {
            throw ModelViolation("reopened log ends at \(last); durable \(model.durable), model last \(model.last)")
        }
        model.keep(through: last)
        for name in model.streams.keys {
            if let b = model.streams[name]?.base, b > last {
                let first = model.streams[name]?.lsns.first ?? .null
                model.streams[name]?.base = first
            }
        }
        try checker.checkAll()
    }
}
