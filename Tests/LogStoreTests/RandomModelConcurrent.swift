// The concurrent variant of RandomModelTests: each worker drives its own stream and checks what it alone
// decides (its records, links, base, restart areas, reservations); one admin thread adds and removes
// containers, sets and clears the log-wide archive tail and changes the policy meanwhile.

import Foundation
import LogStore

struct WorkerModel: Sendable {
    struct Record: Sendable {
        var data: [UInt8]
        var previous: LSN
    }
    var records: [LSN: Record] = [:]
    var order: [LSN] = []
    var base: LSN = .null
    var restarts: [LSN] = []
    var reserved: [Int] = []
}

struct ConcurrentWorker {
    let stream: LogStream
    var rng: SplitMix64
    let problems: LockedBox<[String]>
    var model = WorkerModel()

    init(stream: LogStream, rng: SplitMix64, problems: LockedBox<[String]>) {
        self.stream = stream
        self.rng = rng
        self.problems = problems
    }

    func fail(_ what: String) { problems.withLock { $0.append("\(stream.name): \(what)") } }

    mutating func add(_ lsn: LSN, _ data: [UInt8], previous: LSN) {
        if let last = model.order.last, lsn <= last { fail("LSN \(lsn) after \(last)") }
        model.records[lsn] = .init(data: data, previous: previous)
        model.order.append(lsn)
        if model.base == .null { model.base = lsn }
    }

    /// Its own records from its base on: the log's floor is at or below it, so they must all be readable.
    mutating func ownRecord() -> LSN? { rng.pick(Array(model.order.filter { $0 >= model.base }.suffix(60))) }

    mutating func run(operations: Int, published: LockedBox<[LSN]>) {
        for _ in 0..<operations {
            do { try step(published: published) } catch let e as LogError {
                fail("\(e.code.rawValue): \(e.message)")
            } catch { fail("\(error)") }
            if problems.withLock({ $0.count }) > 20 { return }
        }
        // Leave nothing reserved, and the stream's base at its last restart area.
        if !model.reserved.isEmpty { try? stream.release(recordSizes: model.reserved) }
    }

    mutating func step(published: LockedBox<[LSN]>) throws {
        switch rng.below(20) {
        case 0..<9:
            let size = rng.chance(0.1) ? 1900 + rng.below(200) : rng.below(1200)
            let data = rng.bytes(size)
            let previous = rng.chance(0.5) ? (model.order.suffix(10).last ?? .invalid) : .invalid
            let useReservation = !model.reserved.isEmpty && size <= (model.reserved.max() ?? 0) && rng.chance(0.5)
            for attempt in 0..<400 {
                do {
                    let lsn = try stream.append(data, previous: previous, usingReservation: useReservation)
                    add(lsn, data, previous: previous)
                    if useReservation, let i = LogModel.fittingReservation(model.reserved, size) { model.reserved.remove(at: i) }
                    return
                } catch let e as LogError where e.code == .logFull && !useReservation && attempt < 399 {
                    // Other streams (and the admin's archive tail) pin the log: move this one's base on, wait.
                    do { try checkpoint() } catch let e as LogError where e.code == .logFull {}
                    usleep(2_000)
                }
            }
        case 9, 10:
            guard let last = model.order.last else { return }
            try stream.flush(upTo: last)
            published.withLock { $0 = Array(($0 + [last]).suffix(8)) }
        case 11, 12:
            guard let lsn = ownRecord(), let want = model.records[lsn] else { return }
            let got = try stream.read(lsn)
            if got.data != want.data || got.previous != want.previous || got.stream != stream.id { fail("read \(lsn) differs") }
        case 13:
            var cursor = try stream.records()
            for lsn in model.order.filter({ $0 >= model.base }).prefix(50) {
                guard let got = try cursor.next() else { return fail("cursor from the base ended before \(lsn)") }
                if got.lsn != lsn || got.data != model.records[lsn]?.data { return fail("cursor gave \(got.lsn), model \(lsn)") }
            }
        case 14:
            guard let lsn = ownRecord() else { return }
            var chain = stream.previousChain(from: lsn)
            var next = lsn
            while next.isValid, next >= model.base {
                guard let got = try chain.next(), got.lsn == next else { return fail("previous chain from \(lsn) lost \(next)") }
                next = model.records[next]?.previous ?? .invalid
            }
        case 15:
            if model.reserved.count < 4 {
                let sizes = [rng.below(1500)]
                do {
                    try stream.reserve(recordSizes: sizes)
                    model.reserved += sizes
                } catch let e as LogError where e.code == .logFull {}
            } else {
                try stream.release(recordSizes: [model.reserved.removeLast()])
            }
        case 16, 17:
            try checkpoint()
        default:
            guard let lsn = ownRecord() else { return }
            try stream.advanceBase(to: lsn)
            model.base = max(model.base, lsn)
        }
    }

    /// A restart area covering everything the stream wrote: its base moves to the restart record.
    mutating func checkpoint() throws {
        let covered = model.order.last ?? .null
        let data = rng.bytes(rng.below(300))
        let lsn = try stream.writeRestartArea(data, coveredThrough: covered)
        let previous = model.restarts.last ?? .invalid
        add(lsn, data, previous: previous)
        model.restarts.append(lsn)
        model.base = lsn
        guard let got = try stream.readRestartArea(), got.lsn == lsn, got.data == data else { return fail("restart area \(lsn) not read back") }
    }
}

/// Adds and removes containers, sets and clears the log-wide archive tail, changes the policy, until the
/// workers are done; leaves the tail cleared.
struct ConcurrentAdmin {
    let log: LogStore
    var rng: SplitMix64
    let problems: LockedBox<[String]>
    let published: LockedBox<[LSN]>

    mutating func run(until done: () -> Bool) {
        while !done() {
            do { try step() } catch let e as LogError { problems.withLock { $0.append("admin: \(e.code.rawValue): \(e.message)") } } catch {}
            usleep(500)
        }
        do { try log.setArchiveTail(.null) } catch { problems.withLock { $0.append("admin: clearing the tail: \(error)") } }
    }

    mutating func step() throws {
        let info = log.info()
        switch rng.below(6) {
        case 0 where info.containers.count < 8:
            try log.addContainer()
        case 1:
            guard let free = rng.pick(info.containers.filter { $0.state == .inactive }) else { return }
            do { try log.removeContainer(free.physicalID) } catch let e as LogError where [.invalidArgument, .logFull, .notFound].contains(e.code) {}
        case 2:
            guard let lsn = rng.pick(published.withLock { $0 }) else { return }
            // The bases may have passed it meanwhile: then the tail is refused (invalidArgument).
            do { try log.setArchiveTail(lsn) } catch let e as LogError where e.code == .invalidArgument {}
        case 3, 4:
            try log.setArchiveTail(.null)
        default:
            var p = LogPolicy()
            p.maxContainers = UInt32(4 + rng.below(4))
            p.autoGrow = rng.chance(0.5)
            p.autoShrinkPercent = rng.chance(0.5) ? 0 : 50
            try log.setPolicy(p)
        }
    }
}
