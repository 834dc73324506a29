// The stream API against the CLFS behaviours its docs claim (reference: clfs.md, sections 1.2, 1.5 and
// 1.9): bases and archive tails per stream and the log's, reservations per stream, a stream's lifecycle
// and the stream limit. Chains and restart areas are in StreamClfsSemanticsTests.

import Foundation
import Testing
import TxLogTestSupport
@testable import LogStore

@Suite("Streams against CLFS semantics: bases, archive tails, reservations, lifecycle")
struct StreamClfsTailsAndSpaceTests {
    static let filler = StreamClfsSemanticsTests.filler

    static func tinyLog(_ dir: StreamTestDirectory, containers: Int = 3) throws -> LogStore {
        try StreamClfsSemanticsTests.tinyLog(dir, containers: containers)
    }

    /// Appends ten records to `stream`, makes them durable and sets the stream's archive tail to the first.
    static func archivedRecords(_ stream: LogStream) throws -> [LSN] {
        var lsns: [LSN] = []
        for i in 0..<10 { lsns.append(try stream.append(streamPayload(stream.name, i))) }
        try stream.flush(upTo: lsns[9])
        try stream.setArchiveTail(lsns[0])
        return lsns
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
        let lsns = try Self.archivedRecords(s)
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

    @Test("an archive tail cleared and its container reused: the writer, its cursors and an older read-only view get notFound or the same records, never another cycle's")
    func clearedArchiveTailThenReused() throws {
        let dir = StreamTestDirectory()
        let log = try Self.tinyLog(dir, containers: 4)
        let s = try log.createStream("archived")
        let lsns = try Self.archivedRecords(s)
        try StreamClfsSemanticsTests.fill(log, by: s, until: lsns[0].container + 2, moving: [s])
        let view = try LogStore.open(at: dir.path, options: LogOpenOptions(readOnly: true))
        #expect(view.oldestReadableLSN == lsns[0])
        var mine = try s.records(from: lsns[2])
        #expect(try mine.next()?.lsn == lsns[2])
        var theirs = try view.records(from: lsns[2])
        #expect(try theirs.next()?.lsn == lsns[2])
        try s.setArchiveTail(.null)
        #expect(log.archiveExtents().isEmpty)
        // The container that held them now holds newer records of the filler.
        try StreamClfsSemanticsTests.fill(log, by: s, until: lsns[0].container + 5, moving: [s])
        #expect(!log.info().containers.contains { $0.logicalID == lsns[0].container })
        for (i, lsn) in lsns.enumerated() {
            expectLogError(.notFound) { _ = try log.read(lsn) }
            // The view still names the records: it reads them as they were, or finds them gone.
            do { #expect(try view.read(lsn).data == streamPayload("archived", i)) } catch let e as LogError { #expect(e.code == .notFound) }
        }
        for var cursor in [mine, theirs] {
            do {
                while let r = try cursor.next(), r.lsn <= lsns[9] { #expect(r.data == streamPayload("archived", Int(r.lsn.slot))) }
            } catch let e as LogError { #expect(e.code == .notFound) }
        }
        _ = try view.refresh()
        expectLogError(.notFound) { _ = try view.read(lsns[3]) }
        try view.close()
        try log.close()
    }

    @Test("a deleted stream's archive tail, the lowest, keeps nothing: its records are notFound and no archive extent names them")
    func deletedStreamsArchiveTailKeepsNothing() throws {
        let dir = StreamTestDirectory()
        let log = try Self.tinyLog(dir, containers: 4)
        let s = try log.createStream("s")
        let t = try log.createStream("t")
        let lsns = try Self.archivedRecords(t)
        try StreamClfsSemanticsTests.fill(log, by: s, until: lsns[0].container + 2, moving: [s, t])
        #expect(try log.read(lsns[3]).data == streamPayload("t", 3))
        #expect(log.archiveExtents().first?.logicalID == lsns[0].container)
        try log.deleteStream("t")
        #expect(log.archiveExtents().isEmpty)
        #expect(log.oldestReadableLSN == log.baseLSN)
        expectLogError(.notFound) { _ = try log.read(lsns[3]) }
        try StreamClfsSemanticsTests.fill(log, by: s, until: lsns[0].container + 5, moving: [s])
        expectLogError(.notFound) { _ = try log.read(lsns[3]) }
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
}
