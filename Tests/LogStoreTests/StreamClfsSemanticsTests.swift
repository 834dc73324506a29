// The stream API against the CLFS behaviours its docs claim (reference: clfs.md, sections 1.5 to 1.9):
// chains by previous and undo-next links, restart areas and their chain, bases and archive tails per
// stream, reservations per stream, and the stream limit.

import Foundation
import Testing
import TxLogTestSupport
@testable import LogStore

@Suite("Streams against CLFS semantics")
struct StreamClfsSemanticsTests {
    /// Three 512 KiB containers, uncompressed: a few hundred 3000-byte records fill one.
    static func tinyLog(_ dir: StreamTestDirectory, containers: Int = 3) throws -> LogStore {
        try LogStore.create(at: dir.path, options: streamTestOptions(containers: containers, codec: .none))
    }

    static let filler = [UInt8](repeating: 0x5A, count: 3000)

    @Test("an undo-next chain spanning containers ends at its invalid link; a null link ends it too")
    func undoNextAcrossContainers() throws {
        let dir = StreamTestDirectory()
        let log = try Self.tinyLog(dir, containers: 8)
        let undo = try log.createStream("undo")
        let other = try log.createStream("other")
        var chain: [LSN] = []
        var link = LSN.invalid
        // One record of the chain per ~100 filler records of the other stream: the chain spans containers.
        for i in 0..<6 {
            link = try undo.append(streamPayload("undo", i), undoNext: link)
            chain.append(link)
            for _ in 0..<100 { try other.append(Self.filler) }
        }
        #expect(chain.first!.container < chain.last!.container)
        var c = undo.undoNextChain(from: chain.last!)
        var walked: [LSN] = []
        while let r = try c.next() { walked.append(r.lsn) }
        #expect(walked == chain.reversed())
        // A chain whose link is null ends there as well.
        let head = try undo.append([1], undoNext: .null)
        var n = undo.undoNextChain(from: head)
        #expect(try n.next()?.lsn == head)
        #expect(try n.next() == nil)
        try log.close()
    }

    @Test("a chain into a recycled container stops with notFound, never another cycle's record")
    func chainIntoRecycledContainer() throws {
        let dir = StreamTestDirectory()
        let log = try Self.tinyLog(dir)
        let undo = try log.createStream("undo")
        let other = try log.createStream("other")
        let old = try undo.append(Array("old".utf8))
        try undo.flush(upTo: old)
        // Fill past several containers, moving both bases, so the old record's container is recycled.
        // Both bases follow the filler (a base may be any stream's record), so containers recycle.
        var last = LSN.null
        while log.lastLSN.container < old.container + 4 {
            last = try other.append(Self.filler)
            if last.slot == 0, last.blockOffset == 4096 {
                try other.flush(upTo: last)
                try other.advanceBase(to: last)
                try undo.advanceBase(to: last)
            }
        }
        let head = try undo.append(Array("new".utf8), undoNext: old)
        try undo.flush(upTo: head)
        #expect(!log.info().containers.contains { $0.logicalID == old.container })
        var c = undo.undoNextChain(from: head)
        #expect(try c.next()?.lsn == head)
        expectLogError(.notFound) { _ = try c.next() }
        expectLogError(.notFound) { _ = try undo.read(old) }
        try log.close()
    }

    @Test("a stream's chain that links to another stream's record is notFound; the log's chain follows it")
    func linkToAnotherStream() throws {
        let dir = StreamTestDirectory()
        let log = try Self.tinyLog(dir)
        let a = try log.createStream("a")
        let b = try log.createStream("b")
        let theirs = try b.append([2])
        let mine = try a.append([1], previous: theirs)
        var c = a.previousChain(from: mine)
        #expect(try c.next()?.lsn == mine)
        expectLogError(.notFound) { _ = try c.next() }
        var whole = log.previousChain(from: mine)
        #expect(try whole.next()?.lsn == mine)
        #expect(try whole.next()?.lsn == theirs)
        #expect(try whole.next() == nil)
        try log.close()
    }

    @Test("a future LSN: as a link it is invalidArgument at append; as a chain's start, a read or a cursor's, invalidArgument")
    func futureLSN() throws {
        let dir = StreamTestDirectory()
        let log = try Self.tinyLog(dir)
        let s = try log.createStream("s")
        let last = try s.append([1])
        let future = LSN(rawValue: last.rawValue + (1 << 32))
        expectLogError(.invalidArgument) { try s.append([2], previous: future) }
        expectLogError(.invalidArgument) { try s.append([2], undoNext: future) }
        var c = s.previousChain(from: future)
        expectLogError(.invalidArgument) { _ = try c.next() }
        expectLogError(.invalidArgument) { _ = try s.read(future) }
        expectLogError(.invalidArgument) { _ = try s.records(from: future) }
        expectLogError(.invalidArgument) { _ = try s.records(from: .invalid) }
        var none = s.previousChain(from: .invalid)
        #expect(try none.next() == nil)
        try log.close()
    }

    @Test("restart areas of interleaved streams: each chain holds its own, latest first, also after reopen and once the base passed the older ones")
    func interleavedRestartAreas() throws {
        let dir = StreamTestDirectory()
        let log = try Self.tinyLog(dir)
        let names = ["a", "b", "c"]
        let streams = try names.map { try log.createStream($0) }
        var written: [String: [LSN]] = [:]
        for round in 0..<5 {
            for (k, s) in streams.enumerated() {
                _ = try s.append(streamPayload(names[k], round))
                written[names[k], default: []].append(try s.writeRestartArea(Array("\(names[k]) \(round)".utf8)))
            }
        }
        func walk(_ s: LogStream) throws -> [LSN] {
            var out: [LSN] = []
            var at = try s.readRestartArea()
            while let r = at {
                #expect(r.stream == s.id && r.type == .restart)
                out.append(r.lsn)
                at = try s.previousRestartArea(before: r.lsn)
            }
            return out
        }
        for (k, s) in streams.enumerated() { #expect(try walk(s) == written[names[k]]!.reversed()) }
        // Another stream's restart area is not one of this stream's.
        expectLogError(.notFound) { _ = try streams[0].previousRestartArea(before: written["b"]!.last!) }
        // A data record is not a restart area.
        let data = try streams[0].append([9])
        expectLogError(.invalidArgument) { _ = try streams[0].previousRestartArea(before: data) }
        try log.close()
        let again = try LogStore.open(at: dir.path)
        for name in names { #expect(try walk(again.openStream(name)) == written[name]!.reversed()) }
        // The bases move past the older restart areas and their containers are recycled: the chain ends
        // at the first one gone.
        let a = try again.openStream("a")
        var last = LSN.null
        while again.lastLSN.container < 5 {
            last = try a.append(Self.filler)
            if last.slot == 0, last.blockOffset == 4096 {
                try a.flush(upTo: last)
                for name in names { try again.openStream(name).advanceBase(to: last) }
            }
        }
        try a.flush(upTo: last)
        for name in names { try again.openStream(name).advanceBase(to: last) }
        #expect(!again.info().containers.contains { $0.logicalID == 1 })
        let newest = try a.writeRestartArea(Array("a late".utf8), newBase: last)
        #expect(try walk(a) == [newest])
        try again.close()
    }

    @Test("bases: backwards, beyond the last LSN or invalid is invalidArgument; the log's base is the lowest stream base")
    func baseRules() throws {
        let dir = StreamTestDirectory()
        let log = try Self.tinyLog(dir)
        let a = try log.createStream("a")
        let b = try log.createStream("b")
        let idle = try log.createStream("idle")
        let a1 = try a.append([1])
        let b1 = try b.append([2])
        let a2 = try a.append([3])
        try a.advanceBase(to: a2)
        expectLogError(.invalidArgument) { try a.advanceBase(to: a1) }
        expectLogError(.invalidArgument) { try a.advanceBase(to: LSN(rawValue: a2.rawValue + 1)) }
        expectLogError(.invalidArgument) { try a.advanceBase(to: LSN(rawValue: a2.rawValue + (1 << 32))) }
        expectLogError(.invalidArgument) { try a.advanceBase(to: .invalid) }
        expectLogError(.invalidArgument) { try a.writeRestartArea([0], newBase: a1) }
        #expect(try a.info().baseLSN == a2)
        #expect(try idle.info().baseLSN == .null)
        #expect(log.info().baseLSN == b1)
        try b.advanceBase(to: a2)
        #expect(log.info().baseLSN == a2)
        // A restart area every base has passed is gone, as a data record is.
        let restart = try idle.writeRestartArea([4])
        let after = try idle.append([5])
        for s in [a, b, idle] { try s.advanceBase(to: after) }
        expectLogError(.notFound) { _ = try idle.readRestartArea() }
        #expect(try idle.info().restartLSN == restart)
        try log.close()
    }

    @Test("records between a stream's archive tail and its base stay readable until archived, as in CLFS")
    func archiveTailKeepsRecordsReadable() throws {
        let dir = StreamTestDirectory()
        let log = try Self.tinyLog(dir, containers: 4)
        let s = try log.createStream("archived")
        var lsns: [LSN] = []
        for i in 0..<10 { lsns.append(try s.append(streamPayload("archived", i))) }
        try s.flush(upTo: lsns.last!)
        try s.setArchiveTail(lsns[0])
        var last = LSN.null
        while log.lastLSN.container < lsns[0].container + 2 { last = try s.append(Self.filler) }
        try s.flush(upTo: last)
        try s.advanceBase(to: last)
        #expect(log.info().containers.contains { $0.logicalID == lsns[0].container && $0.state == .pendingArchive })
        #expect(try s.read(lsns[3]).data == streamPayload("archived", 3))
        var c = try log.records(from: lsns[0])
        #expect(try c.next()?.lsn == lsns[0])
        var mine = try s.records(from: lsns[2])
        #expect(try mine.next()?.lsn == lsns[2])
        var chain = s.previousChain(from: lsns[1])
        #expect(try chain.next()?.lsn == lsns[1])
        try s.setArchiveTail(last)
        expectLogError(.notFound) { _ = try s.read(lsns[3]) }
        try log.close()
    }

    @Test("reservations are per stream: another stream cannot use them; deleting the stream gives them back")
    func reservationsPerStream() throws {
        let dir = StreamTestDirectory()
        let log = try Self.tinyLog(dir)
        let a = try log.createStream("a")
        let b = try log.createStream("b")
        try a.reserve(recordSizes: [100, 200])
        #expect(try a.info().reservedRecords == 2)
        #expect(try b.info().reservedRecords == 0)
        expectLogError(.invalidArgument) { try b.append([UInt8](repeating: 1, count: 50), usingReservation: true) }
        let used = try a.append([UInt8](repeating: 1, count: 150), usingReservation: true)
        #expect(try a.read(used).data.count == 150)
        #expect(try a.info().reservedRecords == 1 && a.info().largestReservedRecord == 100)
        let total = log.info().reservedBytes
        #expect(try total > 0 && total == a.info().reservedBytes)
        try log.deleteStream("a")
        #expect(log.info().reservedBytes == 0)
        // A reservation larger than the log could ever hold is logFull, with nothing reserved.
        expectLogError(.logFull) { try b.reserve(recordSizes: [Int](repeating: log.maxRecordSize, count: 8)) }
        #expect(log.info().reservedBytes == 0)
        try log.close()
    }

    @Test("a deleted stream's name made again is a new stream: none of the old records, no restart area, no base")
    func nameReusedAfterDelete() throws {
        let dir = StreamTestDirectory()
        let log = try Self.tinyLog(dir)
        let old = try log.createStream("s")
        _ = try old.append([1])
        _ = try old.writeRestartArea([2])
        try log.deleteStream("s")
        let fresh = try log.createStream("s")
        #expect(fresh.id != old.id)
        #expect(try fresh.readRestartArea() == nil)
        #expect(try fresh.info().baseLSN == .null)
        var c = try fresh.records()
        #expect(try c.next() == nil)
        let r = try fresh.writeRestartArea([3])
        #expect(try fresh.previousRestartArea(before: r) == nil)
        try log.close()
        let again = try LogStore.open(at: dir.path)
        let s = try again.openStream("s")
        #expect(s.id == fresh.id)
        var c2 = try s.records()
        #expect(try c2.next()?.lsn == r)
        #expect(try c2.next() == nil)
        try again.close()
    }

    @Test("4095 named streams over a log's lifetime (deleted ones count), the 4096th is invalidArgument; the last id works after reopen")
    func streamLimit() throws {
        // On the in-memory disk: each create writes and syncs the base file.
        let disk = SimulatedDisk()
        try disk.makeDirectory("/s")
        let path = "/s/log"
        let log = try LogStore.create(at: path, options: streamTestOptions(containers: 2), io: disk)
        _ = try log.createStream("gone")
        try log.deleteStream("gone")
        for i in 2...4095 { _ = try log.createStream("s\(i)") }
        expectLogError(.invalidArgument) { _ = try log.createStream("one-too-many") }
        #expect(log.streams().count == 4095)  // the default stream and 4094 named ones
        let top = try log.openStream("s4095")
        #expect(top.id == 4095)
        let lsn = try top.append([7])
        try top.flush(upTo: lsn)
        try log.close()
        let again = try LogStore.open(at: path, io: disk)
        expectLogError(.invalidArgument) { _ = try again.createStream("one-too-many") }
        var c = try again.openStream("s4095").records()
        #expect(try c.next()?.lsn == lsn)
        try again.close()
    }

    @Test("a stream's reader that moves its base as it reads gets every record in order while another stream fills and recycles containers")
    func readerWhileAnotherStreamRecycles() async throws {
        let dir = StreamTestDirectory()
        let log = try Self.tinyLog(dir)
        let mine = try log.createStream("mine")
        let other = try log.createStream("other")
        let count = 3000
        let producer = Thread {
            var i = 0
            var otherLast = LSN.null
            while i < count {
                do {
                    otherLast = try other.append(Self.filler)
                    try mine.append(streamPayload("mine", i))
                    i += 1
                    if i % 20 == 0, otherLast != .null {
                        try other.flush(upTo: otherLast)
                        try other.advanceBase(to: otherLast)
                    }
                } catch let e as LogError where e.code == .logFull {
                    usleep(500)  // the reader has not moved its base yet
                } catch {
                    return
                }
            }
        }
        producer.start()
        let read: [[UInt8]] = try await onOwnThread {
            var out: [[UInt8]] = []
            var cursor = try mine.records()
            var idle = 0  // bounded: a minute or more without a new record ends the wait
            while out.count < count, idle < 1_000_000 {
                guard let r = try cursor.next() else {
                    idle += 1
                    usleep(50)
                    continue
                }
                idle = 0
                out.append(r.data)
                if out.count % 10 == 0 { try mine.advanceBase(to: r.lsn) }
            }
            return out
        }
        #expect(read.count == count)
        #expect(read == (0..<count).map { streamPayload("mine", $0) })
        #expect(log.info().containers.map(\.logicalID).max() ?? 0 > 4, "the other stream recycled containers")
        try log.close()
    }

    /// A restart record's previous-LSN link was the restart area in force when `writeRestartArea` began:
    /// one written by another thread meanwhile (appended between that and this record) was skipped by
    /// the chain, which CLFS keeps through every restart record of the stream.
    @Test("restart areas written at once: the chain holds every one of them, in LSN order")
    func concurrentRestartAreasAllChain() throws {
        let dir = StreamTestDirectory()
        let log = try Self.tinyLog(dir)
        let s = try log.createStream("ckpt")
        let first = try s.writeRestartArea(Array("first".utf8))
        // Another writer's restart area goes in after this call's checks and before its record.
        let inner = LockedBox<LSN?>(nil)
        log.core.beforeRestartAppendedForTesting = {
            guard inner.snapshot == nil else { return }
            inner.withLock { $0 = .null }
            let lsn = try? s.writeRestartArea(Array("inner".utf8))
            inner.withLock { $0 = lsn }
        }
        let outer = try s.writeRestartArea(Array("outer".utf8))
        log.core.beforeRestartAppendedForTesting = nil
        let between = try #require(inner.snapshot ?? nil)
        #expect(first < between && between < outer)
        var walked: [LSN] = []
        var at = try s.readRestartArea()
        while let r = at {
            walked.append(r.lsn)
            at = try s.previousRestartArea(before: r.lsn)
        }
        #expect(walked == [outer, between, first])
        // The next one, after a reopen, links to the one in force.
        try log.close()
        let again = try LogStore.open(at: dir.path)
        let r = try again.openStream("ckpt").writeRestartArea(Array("after".utf8))
        #expect(try again.openStream("ckpt").previousRestartArea(before: r)?.lsn == outer)
        try again.close()
    }

    /// A reservation more than the log could hold even grown to its policy's maximum went through the
    /// log-full path: auto-grow took the log to that maximum (for good, with auto-shrink off), and the
    /// reservation was refused anyway.
    @Test("a reservation the log could not hold even at its policy's maximum is logFull at once, without growing the log")
    func reservationBeyondThePolicyMaximum() throws {
        let dir = StreamTestDirectory()
        let log = try LogStore.create(at: dir.path, options: streamTestOptions(containers: 2, codec: .none))
        var policy = LogPolicy()
        policy.autoGrow = true
        policy.maxContainers = 6
        policy.growthIncrement = 1
        try log.setPolicy(policy)
        let s = try log.createStream("s")
        // About 3 MiB: more than five 512 KiB containers.
        expectLogError(.logFull) { try s.reserve(recordSizes: [Int](repeating: 200_000, count: 16)) }
        #expect(log.info().containers.count == 2)
        #expect(log.info().reservedBytes == 0)
        // One that fits the grown log still grows it.
        try s.reserve(recordSizes: [Int](repeating: 200_000, count: 8))
        #expect(log.info().containers.count > 2)
        try log.close()
    }
}
