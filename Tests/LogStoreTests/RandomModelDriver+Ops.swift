// The reading, restart-area, base, archive-tail, reservation, container and policy operations of the
// randomized model test, each checked against the documented contract as it returns.

import Foundation
import LogStore

extension ModelDriver {
    // MARK: Reading

    func readOne() throws {
        let held = checker.heldContainers
        switch rng.below(6) {
        case 0, 1:
            guard let r = rng.pick(model.records) else { return }
            note("read", "\(r.lsn)")
            try checker.checkRead(r.lsn, held: held)
        case 2:
            // Through a stream: its own record, or another stream's (notFound).
            guard let r = readableRecord(), let s = rng.pick(Array(model.streams.values)) else { return }
            note("stream.read", "\(s.name) \(r.lsn)")
            if r.stream == s.id {
                try checker.same(try handle(s).read(r.lsn), r)
            } else {
                expectCode(.notFound, "\(s.name).read(\(r.lsn)) of stream \(r.stream)'s record") { _ = try self.handle(s).read(r.lsn) }
            }
        case 3:
            // A slot no record has, in a block that exists.
            guard let r = rng.pick(model.records) else { return }
            let lsn = LSN(uncheckedContainer: r.lsn.container, blockOffset: r.lsn.blockOffset, slot: LSN.maxSlot)
            guard model.record(lsn) == nil else { return }
            note("read never written", "\(lsn)")
            expectCode(lsn > model.last ? .invalidArgument : .notFound, "read(\(lsn)) of a slot no record has") { _ = try self.log.read(lsn) }
        case 4:
            // Inside a block: no block starts there.
            guard let r = rng.pick(model.records) else { return }
            let lsn = LSN(uncheckedContainer: r.lsn.container, blockOffset: r.lsn.blockOffset + 512, slot: 0)
            guard !model.records.contains(where: { $0.lsn.blockLSN == lsn }), lsn < model.last else { return }
            note("read inside a block", "\(lsn)")
            expectCode(.notFound, "read(\(lsn)) where no block starts") { _ = try self.log.read(lsn) }
        default:
            note("read bad LSN")
            expectCode(.invalidArgument, "read(null)") { _ = try self.log.read(.null) }
            expectCode(.invalidArgument, "read(invalid)") { _ = try self.log.read(.invalid) }
            if model.last.isValid, model.last.slot < LSN.maxSlot {
                let beyond = LSN(uncheckedContainer: model.last.container, blockOffset: model.last.blockOffset, slot: model.last.slot + 1)
                expectCode(.invalidArgument, "read(\(beyond)) beyond the end") { _ = try self.log.read(beyond) }
            }
        }
    }

    func cursor() throws {
        switch rng.below(5) {
        case 4:
            // The log's cursor from its base (null: the log's base, or the oldest container's start).
            let base = model.streams.values.map(\.base).filter { $0 != .null }.min() ?? .null
            let held = checker.heldContainers
            note("log cursor from the base", "\(base)")
            var cursor = try log.records()
            for w in model.records.filter({ base == .null ? held.contains($0.lsn.container) : $0.lsn >= base }).prefix(40) {
                guard let got = try cursor.next() else { throw ModelViolation("log.records() ended before \(w.lsn)") }
                try checker.same(got, w)
            }
        case 0:
            guard let r = readableRecord() else { return }
            note("log cursor", "\(r.lsn)")
            try checker.checkCursor(from: r.lsn, stream: nil, limit: 40)
        case 1:
            guard let r = readableRecord(), let s = rng.pick(Array(model.streams.values)) else { return }
            note("stream cursor", "\(s.name) from \(r.lsn)")
            try checker.checkCursor(from: r.lsn, stream: s, limit: 40)
        case 2:
            // From the stream's base (its default).
            let s = randomStream()
            note("stream cursor from its base", "\(s.name) base \(s.base)")
            var cursor = try handle(s).records()
            let want = s.base == .null ? [] : model.records.filter { $0.stream == s.id && $0.lsn >= s.base }.prefix(40)
            for w in want {
                guard let got = try cursor.next() else { throw ModelViolation("\(s.name).records() ended before \(w.lsn)") }
                try checker.same(got, w)
            }
        default:
            // From below the floor: the cursor starts at the log's base.
            let floor = model.floor
            guard floor != .null, let r = model.records.last(where: { $0.lsn < floor }) else { return }
            let s = randomStream()
            let base = model.streams.values.map(\.base).filter { $0 != .null }.min() ?? .null
            note("stream cursor below the floor", "\(s.name) from \(r.lsn), log base \(base)")
            var cursor = try handle(s).records(from: r.lsn)
            for w in model.records.filter({ $0.stream == s.id && $0.lsn >= base }).prefix(40) {
                guard let got = try cursor.next() else { throw ModelViolation("\(s.name).records(from: \(r.lsn)) ended before \(w.lsn)") }
                try checker.same(got, w)
            }
        }
    }

    func chain() throws {
        let s = randomStream()
        guard let r = readableRecord(stream: s.id) else { return }
        let undo = rng.chance(0.5)
        let onStream = rng.chance(0.5)
        note("chain", "\(undo ? "undoNext" : "previous") \(onStream ? s.name : "log") from \(r.lsn)")
        try checker.checkChain(from: r.lsn, stream: onStream ? s : nil, undo: undo, held: checker.heldContainers)
    }

    // MARK: Restart areas, bases, archive tails

    func restartArea() throws {
        let s = randomStream()
        let h = try handle(s)
        let data = payload(rng.below(1500))
        let kind = rng.below(4)
        var newBase: LSN? = nil
        var covered: LSN? = nil
        if kind == 1, let r = readableRecord(), s.base == .null || r.lsn >= s.base { newBase = r.lsn }
        if kind == 2, let c = rng.pick(s.lsns.filter { $0 >= s.base }.suffix(20)) { covered = c }
        if kind == 3, s.base != .null, let below = model.records.last(where: { $0.lsn < s.base && $0.lsn >= model.floor }) {
            note("restart area with a base below the stream's", "\(s.name) \(below.lsn) < \(s.base)")
            expectCode(.invalidArgument, "restart area moving the base back") { _ = try h.writeRestartArea(data, newBase: below.lsn) }
            return
        }
        note("restart area", "\(s.name) \(data.count) bytes newBase \(String(describing: newBase)) covered \(String(describing: covered))")
        let useReservation = LogModel.fittingReservation(s.reserved, data.count) != nil && rng.chance(0.5)
        let previous = s.restarts.last ?? .invalid
        let lastOfStream = s.lsns.last ?? .null
        let lsn: LSN
        do {
            if let covered {
                lsn = try h.writeRestartArea(data, coveredThrough: covered, usingReservation: useReservation)
            } else {
                lsn = try h.writeRestartArea(data, newBase: newBase, usingReservation: useReservation)
            }
        } catch let e as LogError where e.code == .logFull {
            try expectFull(e, size: data.count, usingReservation: useReservation)
            return try relieve()
        }
        try model.add(ModelRecord(lsn: lsn, stream: s.id, type: .restart, data: data, previous: previous, undoNext: .invalid))
        if useReservation, let i = LogModel.fittingReservation(s.reserved, data.count) { model.streams[s.name]?.reserved.remove(at: i) }
        model.durable = max(model.durable, lsn)
        var target = newBase
        if let covered { target = covered >= lastOfStream ? lsn : covered }
        if let target, let b = model.streams[s.name]?.base, target > b { model.streams[s.name]?.base = target }
        try checkRestartAreas(model.streams[s.name] ?? s)
    }

    /// The latest restart area, then the chain of previous ones until one is no longer held.
    func checkRestartAreas(_ s: ModelStream) throws {
        let h = try handle(s)
        let held = checker.heldContainers
        guard let latest = s.restarts.last, let want = model.record(latest) else { return }
        guard checker.mustBeReadable(latest, held: held) else { return }
        guard let got = try h.readRestartArea() else { throw ModelViolation("\(s.name) has no restart area; model \(latest)") }
        try checker.same(got, want)
        var at = latest
        for earlier in s.restarts.dropLast().reversed() {
            let previous = try h.previousRestartArea(before: at)
            if !checker.mustBeReadable(earlier, held: held) {
                if let previous { throw ModelViolation("previousRestartArea(before: \(at)) gave \(previous.lsn), below the floor") }
                return
            }
            guard let previous, let w = model.record(earlier) else { throw ModelViolation("restart chain ended at \(at); model \(earlier)") }
            try checker.same(previous, w)
            at = earlier
        }
        if let extra = try h.previousRestartArea(before: at) { throw ModelViolation("restart chain went on to \(extra.lsn)") }
    }

    func advanceBase() throws {
        let s = randomStream()
        let h = try handle(s)
        switch rng.below(6) {
        case 5:
            guard let r = readableRecord(), s.base == .null || r.lsn >= s.base else { return }
            let inside = LSN(uncheckedContainer: r.lsn.container, blockOffset: r.lsn.blockOffset, slot: LSN.maxSlot)
            guard model.record(inside) == nil, inside < model.last else { return }
            note("advanceBase to no record", "\(s.name) \(inside)")
            expectCode(.invalidArgument, "advanceBase to an LSN that names no record") { try h.advanceBase(to: inside) }
        case 0 where s.base != .null:
            guard let below = model.records.last(where: { $0.lsn < s.base && $0.lsn >= model.floor }) else { return }
            note("advanceBase backwards", "\(s.name) \(below.lsn)")
            expectCode(.invalidArgument, "advanceBase below the base") { try h.advanceBase(to: below.lsn) }
        case 1:
            guard model.last.isValid, model.last.slot < LSN.maxSlot else { return }
            let beyond = LSN(uncheckedContainer: model.last.container, blockOffset: model.last.blockOffset, slot: model.last.slot + 1)
            note("advanceBase beyond the end", "\(s.name) \(beyond)")
            expectCode(.invalidArgument, "advanceBase beyond the last LSN") { try h.advanceBase(to: beyond) }
        default:
            guard let r = readableRecord(), s.base == .null || r.lsn >= s.base else { return }
            note("advanceBase", "\(s.name) \(r.lsn)")
            try h.advanceBase(to: r.lsn)
            model.streams[s.name]?.base = r.lsn
            model.durable = max(model.durable, r.lsn)
        }
    }

    func archiveTail() throws {
        let s = randomStream()
        let onLog = rng.chance(0.5)
        let set: (LSN) throws -> Void = onLog ? { try self.log.setArchiveTail($0) } : { try self.handle(s).setArchiveTail($0) }
        func record(_ lsn: LSN) {
            if onLog { model.logArchiveTail = lsn } else { model.streams[s.name]?.archiveTail = lsn }
        }
        switch rng.below(5) {
        case 4:
            let floor = model.floor
            guard floor != .null, let r = model.records.last(where: { $0.lsn < floor }) else { return }
            note("archive tail below the floor", "\(r.lsn) < \(floor)")
            expectCode(.invalidArgument, "archive tail below the base and every tail") { try set(r.lsn) }
        case 0:
            note("clear archive tail", onLog ? "log" : s.name)
            try set(.null)
            record(.null)
        case 1:
            guard let r = model.records.last, r.lsn > log.durableLSN else { return }
            note("archive tail beyond durable", "\(r.lsn)")
            expectCode(.invalidArgument, "archive tail beyond the durable LSN") { try set(r.lsn) }
        default:
            guard let r = readableRecord(), r.lsn <= model.durable else { return }
            note("set archive tail", "\(onLog ? "log" : s.name) \(r.lsn)")
            try set(r.lsn)
            record(r.lsn)
        }
    }

    func reservation() throws {
        let s = randomStream()
        let h = try handle(s)
        switch rng.below(5) {
        case 0, 1:
            let sizes = (0..<(1 + rng.below(3))).map { _ in rng.below(3000) }
            note("reserve", "\(s.name) \(sizes)")
            do {
                try h.reserve(recordSizes: sizes)
                model.streams[s.name]?.reserved += sizes
            } catch let e as LogError where e.code == .logFull {
                let info = log.info()
                let need = UInt64(sizes.reduce(0, +) + sizes.count * blockSize) * 2 + info.reservedBytes
                guard info.freeBytes < need else { throw ModelViolation("reserve \(sizes) got logFull with \(info.freeBytes) bytes free: \(e.message)") }
            }
        case 2:
            note("reserve bad sizes", s.name)
            expectCode(.invalidArgument, "reserve of no sizes") { try h.reserve(recordSizes: []) }
            expectCode(.invalidArgument, "reserve over the max record size") { try h.reserve(recordSizes: [self.log.maxRecordSize + 1]) }
        case 3:
            let unreserved = 3001 + rng.below(100)
            note("release unreserved", "\(s.name) \(unreserved)")
            expectCode(.invalidArgument, "release of a size not reserved") { try h.release(recordSizes: (s.reserved.first.map { [$0] } ?? []) + [unreserved]) }
        default:
            let sizes = s.reserved.filter { _ in rng.chance(0.5) }
            note("release", "\(s.name) \(sizes)")
            guard !sizes.isEmpty else { return }
            try h.release(recordSizes: sizes)
            var rest = s.reserved
            for size in sizes { if let i = rest.firstIndex(of: size) { rest.remove(at: i) } }
            model.streams[s.name]?.reserved = rest
        }
    }

    // MARK: Containers and policy

    func container() throws {
        let info = log.info()
        let kept = info.containers.filter { $0.state != .pendingDelete }
        let reserved = model.streams.values.contains { !$0.reserved.isEmpty }
        switch rng.below(4) {
        case 0 where kept.count < 8:
            note("addContainer")
            let id = try log.addContainer()
            guard log.info().containers.contains(where: { $0.physicalID == id && $0.state == .inactive }) else {
                throw ModelViolation("added container \(id) is not listed free")
            }
        case 1:
            note("removeContainer unknown")
            expectCode(.notFound, "removing an unknown container") { try self.log.removeContainer(60_000) }
        default:
            guard let c = rng.pick(info.containers.filter { $0.state != .pendingDelete }) else { return }
            let current = info.containers.map(\.logicalID).max() ?? 0
            note("removeContainer", "\(c.physicalID) logical \(c.logicalID) of \(kept.count) kept")
            do {
                try log.removeContainer(c.physicalID)
                if kept.count <= 2 || (c.logicalID == current && c.logicalID != 0) {
                    throw ModelViolation("removed container \(c.physicalID) (logical \(c.logicalID), \(kept.count) kept)")
                }
                if let after = log.info().containers.first(where: { $0.physicalID == c.physicalID }), after.state != .pendingDelete {
                    throw ModelViolation("removed container \(c.physicalID) is still \(after.state)")
                }
            } catch let e as LogError {
                let ok =
                    e.code == .invalidArgument && (kept.count <= 2 || c.logicalID == current)
                    || e.code == .logFull && reserved && c.logicalID == 0
                if !ok { throw ModelViolation("removeContainer(\(c.physicalID)) threw \(e.code.rawValue): \(e.message)") }
            }
        }
    }

    func policy() throws {
        var p = LogPolicy()
        p.minContainers = UInt32(2 + rng.below(2))
        p.maxContainers = p.minContainers + UInt32(rng.below(5))
        p.growthIncrement = UInt32(1 + rng.below(2))
        p.autoGrow = rng.chance(0.5)
        p.autoShrinkPercent = rng.chance(0.5) ? 0 : UInt8(30 + rng.below(40))
        p.containerPrefix = rng.chance(0.7) ? Format.defaultContainerPrefix : "rm-"
        note("setPolicy", "\(p)")
        try log.setPolicy(p)
        guard log.policy == p else { throw ModelViolation("policy \(log.policy) after setting \(p)") }
        let kept = log.info().containers.filter { $0.state != .pendingDelete }.count
        guard kept >= Int(p.minContainers) else { throw ModelViolation("\(kept) containers under the policy's minimum \(p.minContainers)") }
    }
}
