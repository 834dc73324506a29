// The stream API against the CLFS behaviours its docs claim (reference: clfs.md, sections 1.7 and 1.8):
// chains by previous and undo-next links, restart areas and their chain, reading while containers
// recycle. Bases, archive tails, reservations and the stream limit are in StreamClfsTailsAndSpaceTests.

import Foundation
import Testing
import TxLogTestSupport
@testable import LogStore

@Suite("Streams against CLFS semantics: chains, restart areas, reading while recycling")
struct StreamClfsSemanticsTests {
    /// Three 512 KiB containers, uncompressed: a few hundred 3000-byte records fill one.
    static func tinyLog(_ dir: StreamTestDirectory, containers: Int = 3) throws -> LogStore {
        try LogStore.create(at: dir.path, options: streamTestOptions(containers: containers, codec: .none))
    }

    static let filler = [UInt8](repeating: 0x5A, count: 3000)

    /// Appends filler records to `writer` until the log reaches logical container `container`, moving the
    /// bases of `streams` along at each new container (a base may be any stream's record) and to the last
    /// filler record at the end, so the containers behind are recycled. Returns that last record.
    @discardableResult
    static func fill(_ log: LogStore, by writer: LogStream, until container: UInt32, moving streams: [LogStream]) throws -> LSN {
        var last = LSN.null
        func moveBases() throws {
            try writer.flush(upTo: last)
            for s in streams { try s.advanceBase(to: last) }
        }
        while log.lastLSN.container < container {
            last = try writer.append(filler)
            if last.slot == 0, last.blockOffset == 4096 { try moveBases() }
        }
        try moveBases()
        return last
    }

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
        try Self.fill(log, by: other, until: old.container + 4, moving: [other, undo])
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
        let last = try Self.fill(again, by: a, until: 5, moving: names.map { try again.openStream($0) })
        #expect(!again.info().containers.contains { $0.logicalID == 1 })
        let newest = try a.writeRestartArea(Array("a late".utf8), newBase: last)
        #expect(try walk(a) == [newest])
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
}
