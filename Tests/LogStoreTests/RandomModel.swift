// The reference model of RandomModelTests: what the LogStore API's documentation says a log holds after
// a sequence of calls. Per stream: its records (LSN, bytes, links), base, archive tail, restart areas and
// reservations; for the log: every record in LSN order, the log-wide archive tail and the durable LSN.
// The model follows the documented contract: a stream's first record is its base until one is set; a
// record is readable from the log's read floor on (the lowest base of a stream that has one, or the
// lowest archive tail below it); below it, `notFound`.

import Foundation
import LogStore

/// A mismatch between the log and the model: the randomized test stops its seed there.
struct ModelViolation: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

struct ModelRecord {
    var lsn: LSN
    var stream: UInt16
    var type: RecordType
    var data: [UInt8]
    var previous: LSN
    var undoNext: LSN
}

struct ModelStream {
    var id: UInt16
    var name: String
    var base: LSN = .null
    var archiveTail: LSN = .null
    /// The stream's restart records, oldest first.
    var restarts: [LSN] = []
    /// Record sizes reserved and not yet used or released.
    var reserved: [Int] = []
    /// The stream's records, in LSN order.
    var lsns: [LSN] = []
}

struct LogModel {
    var records: [ModelRecord] = []
    var index: [LSN: Int] = [:]
    var streams: [String: ModelStream] = ["": ModelStream(id: 0, name: "")]
    var logArchiveTail: LSN = .null
    /// Every record at or below it was flushed (or made durable by a restart area, a base or a close).
    var durable: LSN = .null

    var last: LSN { records.last?.lsn ?? .null }

    func record(_ lsn: LSN) -> ModelRecord? { index[lsn].map { records[$0] } }

    func stream(id: UInt16) -> ModelStream? { streams.values.first { $0.id == id } }

    /// The read floor as `LogStore.read` applies it: null (no floor) while no stream has a base.
    var floor: LSN {
        let bases = streams.values.map(\.base).filter { $0 != .null }
        guard let base = bases.min() else { return .null }
        let tails = streams.values.map(\.archiveTail).filter { $0 != .null } + (logArchiveTail != .null ? [logArchiveTail] : [])
        return min(base, tails.min() ?? .invalid)
    }

    mutating func add(_ r: ModelRecord) throws {
        if let previous = records.last, r.lsn <= previous.lsn {
            throw ModelViolation("LSN \(r.lsn) does not follow the log's last LSN \(previous.lsn)")
        }
        index[r.lsn] = records.count
        records.append(r)
        if let name = streams.first(where: { $0.value.id == r.stream })?.key {
            streams[name]?.lsns.append(r.lsn)
            if streams[name]?.base == .null { streams[name]?.base = r.lsn }
            if r.type == .restart { streams[name]?.restarts.append(r.lsn) }
        }
    }

    /// After a crash: keeps the records the reopened log holds (every durable one, then a prefix of the
    /// rest), and what follows from losing the others.
    mutating func keep(through lastKept: LSN) {
        records.removeAll { $0.lsn > lastKept }
        index = [:]
        for (i, r) in records.enumerated() { index[r.lsn] = i }
        for name in streams.keys {
            streams[name]?.lsns.removeAll { $0 > lastKept }
            streams[name]?.restarts.removeAll { $0 > lastKept }
            streams[name]?.reserved = []
        }
        durable = max(durable, lastKept)
    }

    /// The smallest reserved size that fits `size` (what an append using a reservation uses up).
    static func fittingReservation(_ reserved: [Int], _ size: Int) -> Int? {
        reserved.enumerated().filter { $0.element >= size }.min { $0.element < $1.element }?.offset
    }
}

/// Checks of the log against the model.
struct ModelChecker {
    let log: LogStore
    let model: LogModel

    /// The logical containers that hold records now.
    var heldContainers: Set<UInt32> { Set(log.info().containers.map(\.logicalID).filter { $0 != 0 }) }

    /// Whether the model requires `lsn` to be readable: at or above the floor (with a floor, nothing
    /// from it on may be recycled); without one, while its container is held.
    func mustBeReadable(_ lsn: LSN, held: Set<UInt32>) -> Bool {
        let floor = model.floor
        if floor == .null { return held.contains(lsn.container) }
        return lsn >= floor
    }

    func same(_ got: LogRecord, _ want: ModelRecord) throws {
        guard got.lsn == want.lsn, got.stream == want.stream, got.type == want.type, got.data == want.data,
            got.previous == want.previous, got.undoNext == want.undoNext
        else {
            throw ModelViolation(
                "record \(want.lsn): got stream \(got.stream) type \(got.type) \(got.data.count) bytes previous \(got.previous) undoNext \(got.undoNext); want stream \(want.stream) type \(want.type) \(want.data.count) bytes previous \(want.previous) undoNext \(want.undoNext)\(got.data == want.data ? "" : " (bytes differ)")"
            )
        }
    }

    /// Reads `lsn` through the log and checks the outcome against the model.
    func checkRead(_ lsn: LSN, held: Set<UInt32>) throws {
        guard let want = model.record(lsn) else { return }
        let readable = mustBeReadable(lsn, held: held)
        do {
            let got = try log.read(lsn)
            if !readable, model.floor != .null {
                throw ModelViolation("\(lsn) is below the read floor \(model.floor) but was read")
            }
            try same(got, want)
        } catch let e as LogError {
            if readable || e.code != .notFound {
                throw ModelViolation("read(\(lsn)) threw \(e.code.rawValue) (\(e.message)); floor \(model.floor), readable \(readable)")
            }
        }
    }

    /// Every record of the model, the stream table, and both kinds of cursor from the floor.
    func checkAll() throws {
        let held = heldContainers
        for r in model.records { try checkRead(r.lsn, held: held) }
        guard log.lastLSN == model.last else { throw ModelViolation("lastLSN \(log.lastLSN), model \(model.last)") }
        let infos = log.streams()
        guard Set(infos.map(\.name)) == Set(model.streams.keys) else {
            throw ModelViolation("streams \(infos.map(\.name).sorted()), model \(model.streams.keys.sorted())")
        }
        for info in infos {
            guard let s = model.streams[info.name] else { continue }
            let lastLSN = s.lsns.last ?? .null
            guard info.id == s.id, info.baseLSN == s.base, info.archiveTail == s.archiveTail, info.restartLSN == (s.restarts.last ?? .null),
                info.reservedRecords == s.reserved.count, info.largestReservedRecord == (s.reserved.max() ?? 0),
                info.lastLSN == lastLSN
            else {
                throw ModelViolation(
                    "stream \"\(info.name)\": \(info), model id \(s.id) base \(s.base) tail \(s.archiveTail) restart \(s.restarts.last ?? .null) reserved \(s.reserved) last \(lastLSN)"
                )
            }
        }
        guard log.info().archiveTail == model.logArchiveTail else {
            throw ModelViolation("archive tail \(log.info().archiveTail), model \(model.logArchiveTail)")
        }
        if let start = model.records.first(where: { mustBeReadable($0.lsn, held: held) })?.lsn {
            try checkCursor(from: start, stream: nil, limit: .max)
        }
    }

    /// A cursor from `start` yields the model's records from there, in order (at most `limit`).
    func checkCursor(from start: LSN, stream: ModelStream?, limit: Int) throws {
        var cursor = try stream.map { try log.openStream($0.name).records(from: start) } ?? log.records(from: start)
        if let stream, stream.id == 0 { cursor = try log.defaultStream.records(from: start) }
        let want = model.records.lazy.filter { $0.lsn >= start && (stream == nil || $0.stream == stream?.id) }.prefix(limit)
        for w in want {
            guard let got = try cursor.next() else { throw ModelViolation("cursor from \(start) ended before \(w.lsn)") }
            try same(got, w)
        }
        if limit == .max, let extra = try cursor.next() { throw ModelViolation("cursor from \(start) went on to \(extra.lsn)") }
    }

    /// Walks a chain from `lsn` along `link` and compares it with the model's links.
    func checkChain(from lsn: LSN, stream: ModelStream?, undo: Bool, held: Set<UInt32>) throws {
        var chain: LogChain
        if let stream {
            let handle = stream.id == 0 ? log.defaultStream : try log.openStream(stream.name)
            chain = undo ? handle.undoNextChain(from: lsn) : handle.previousChain(from: lsn)
        } else {
            chain = undo ? log.undoNextChain(from: lsn) : log.previousChain(from: lsn)
        }
        var next = lsn
        while next.isValid {
            guard let want = model.record(next), mustBeReadable(next, held: held), stream == nil || want.stream == stream?.id else {
                // Gone, below the floor, or another stream's (for a stream's chain): the walk ends in notFound.
                do {
                    let r = try chain.next()
                    throw ModelViolation("chain from \(lsn) returned \(String(describing: r?.lsn)) at \(next); expected notFound")
                } catch let e as LogError where e.code == .notFound {}
                return
            }
            guard let got = try chain.next() else { throw ModelViolation("chain from \(lsn) ended before \(next)") }
            try same(got, want)
            next = undo ? want.undoNext : want.previous
        }
        if let extra = try chain.next() { throw ModelViolation("chain from \(lsn) went on to \(extra.lsn)") }
    }
}
