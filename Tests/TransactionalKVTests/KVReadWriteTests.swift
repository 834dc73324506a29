// Reads and writes inside a transaction: read-your-writes, deletes, range scans in byte order with
// bounds and limits, the single-phase commit path, and transactions that write nothing.

import Foundation
import LogStore
import Testing
import TransactionManager
@testable import TransactionalKV

@Suite struct KVReadWriteTests {
    @Test func readYourWritesAndDeletes() async throws {
        let w = try KVWorld(stores: 1, tag: "ryw")
        defer { w.finish() }
        try await w.load(w.a, [("a", "1"), ("b", "2"), ("c", "3")])
        let tx = try w.tm.createTransaction()
        let v = try w.a.begin(tx)
        #expect(try w.a.begin(tx) === v, "begin twice gives the same view")
        #expect(s(try v.get(b("a"))) == "1")
        try v.put(b("a"), b("10"))
        try v.put(b("d"), b("4"))
        try v.delete(b("b"))
        try v.delete(b("zz"))  // deleting an absent key is allowed
        #expect(s(try v.get(b("a"))) == "10")
        #expect(s(try v.get(b("d"))) == "4")
        #expect(try v.get(b("b")) == nil)
        #expect(keysOf(try v.scan()) == ["a", "c", "d"])
        #expect(try v.scan().map { s($0.value)! } == ["10", "3", "4"])
        // Others see nothing yet.
        #expect(s(w.a.get(b("a"))) == "1" && w.a.get(b("d")) == nil && s(w.a.get(b("b"))) == "2")
        let other = try w.tm.createTransaction()
        #expect(keysOf(try w.a.begin(other).scan()) == ["a", "b", "c"])
        // Put after delete, delete after put.
        try v.put(b("b"), b("20"))
        try v.delete(b("d"))
        #expect(s(try v.get(b("b"))) == "20")
        #expect(try v.get(b("d")) == nil)
        try await tx.commit()
        #expect(w.contents(w.a) == ["a": "10", "b": "20", "c": "3"])
        #expect(w.a.count == 3)
        // The view is finished: further use is refused.
        expectLogError(.invalidState) { try v.put(b("x"), b("y")) }
        expectLogError(.invalidState) { _ = try v.get(b("a")) }
        try other.rollback()
    }

    @Test func rangeScansInByteOrder() async throws {
        let w = try KVWorld(stores: 1, tag: "scan")
        defer { w.finish() }
        // Byte order: unsigned, shorter first on a common prefix.
        let keys: [[UInt8]] = [[], [0x00], [0x01], [0x01, 0x00], [0x7F], [0x80], [0xFF], [0xFF, 0xFF], b("a"), b("ab"), b("b")]
        let tx0 = try w.tm.createTransaction()
        let v0 = try w.a.begin(tx0)
        for (i, k) in keys.shuffled().enumerated() { try v0.put(k, b("\(i)")) }
        try await tx0.commit()
        let sorted = keys.sorted { $0.lexicographicallyPrecedes($1) }
        #expect(w.a.scan().map(\.key) == sorted)
        #expect(sorted == [[], [0x00], [0x01], [0x01, 0x00], b("a"), b("ab"), b("b"), [0x7F], [0x80], [0xFF], [0xFF, 0xFF]])
        #expect(w.a.scan(from: [0x01], to: [0x80]).map(\.key) == [[0x01], [0x01, 0x00], b("a"), b("ab"), b("b"), [0x7F]])
        #expect(w.a.scan(from: [0x80]).map(\.key) == [[0x80], [0xFF], [0xFF, 0xFF]])
        #expect(w.a.scan(from: [0x01], limit: 2).map(\.key) == [[0x01], [0x01, 0x00]])
        #expect(w.a.scan(from: b("ab"), to: b("ab")).isEmpty)
        #expect(w.a.scan(limit: 0).isEmpty)

        // In a transaction, the scan merges own puts and deletes with committed keys, and limits after merging.
        let tx = try w.tm.createTransaction()
        let v = try w.a.begin(tx)
        try v.delete([0x01])
        try v.delete([0x01, 0x00])
        try v.put([0x02], b("new"))
        try v.put([0x7F], b("changed"))
        try v.put([0xFF, 0x00], b("past"))
        #expect(try v.scan(from: [0x01], to: [0x80]).map(\.key) == [[0x02], b("a"), b("ab"), b("b"), [0x7F]])
        #expect(try v.scan(from: [0x01], to: [0x80], limit: 2).map(\.key) == [[0x02], b("a")])
        #expect(try v.scan(from: [0x01], to: [0x80], limit: 1).map(\.value) == [b("new")])
        // Limits at the edges: none, all (a limit near Int.max plus the buffered writes used to trap), negative.
        #expect(try v.scan(limit: 0).isEmpty)
        #expect(try v.scan(from: [0x01], to: [0x80], limit: Int.max - 1).map(\.key) == [[0x02], b("a"), b("ab"), b("b"), [0x7F]])
        expectLogError(.invalidArgument) { _ = try v.scan(limit: -1) }
        #expect(try v.scan(from: b("b"), to: [0x80]).map(\.value) == [w.a.get(b("b"))!, b("changed")])
        #expect(try v.scan(from: [0xFF]).map(\.key) == [[0xFF], [0xFF, 0x00], [0xFF, 0xFF]])
        #expect(try v.scan(limit: 3).map(\.key) == [[], [0x00], [0x02]])
        // Deleting everything the limit would have returned still yields `limit` rows.
        for k in sorted.prefix(4) { try v.delete(k) }
        #expect(try v.scan(limit: 2).map(\.key) == [[0x02], b("a")])
        try await tx.commit()
        #expect(w.a.scan(limit: 3).map(\.key) == [[0x02], b("a"), b("ab")])
        #expect(w.a.count == 9)
    }

    @Test func putRejectsOversizedKeysAndValues() async throws {
        let w = try KVWorld(stores: 1, tag: "limits")
        defer { w.finish() }
        let tx = try w.tm.createTransaction()
        let v = try w.a.begin(tx)
        expectLogError(.invalidArgument) { try v.put([UInt8](repeating: 1, count: KVRecord.maxKey + 1), []) }
        expectLogError(.invalidArgument) { try v.delete([UInt8](repeating: 1, count: KVRecord.maxKey + 1)) }
        try v.put([UInt8](repeating: 1, count: 1000), [UInt8](repeating: 2, count: 5000))
        try await tx.commit()
        #expect(w.a.get([UInt8](repeating: 1, count: 1000))?.count == 5000)
    }

    /// One store written: the store commits alone with one flushed commitOnePhase record; the TM logs nothing.
    @Test func singlePhaseCommitPath() async throws {
        let w = try KVWorld(stores: 2, tag: "onephase")
        defer { w.finish() }
        let tmLast = w.tm.stream!.lastLSN
        let syncs0 = w.syncs
        let tx = try w.tm.createTransaction()
        try w.a.begin(tx).put(b("k"), b("v"))
        try await tx.commit()
        #expect(w.syncs - syncs0 == 1)
        #expect(w.tm.stream!.lastLSN == tmLast, "a single-phase commit writes no TM record")
        #expect(w.a.statistics.singlePhaseCommits == 1 && w.a.statistics.commits == 0)
        var records: [KVRecord] = []
        var cursor = try w.a.stream.records()
        while let r = try cursor.next() {
            if r.type == .data { records.append(try KVRecord.decode(r.data)) }
        }
        #expect(records == [.commitOnePhase(tx.id, [KVWrite(key: b("k"), value: b("v"))])])
        // Two stores enlisted but only one written: two-phase (the reading one logs nothing), one sync.
        let syncs1 = w.syncs
        let tx2 = try w.tm.createTransaction()
        try w.a.begin(tx2).put(b("k"), b("v2"))
        #expect(try w.b.begin(tx2).get(b("k")) == nil)
        try await tx2.commit()
        #expect(w.syncs - syncs1 == 1)
        #expect(s(w.a.get(b("k"))) == "v2")
        #expect(w.a.statistics.commits == 1)
        try w.crashAndReopen()
        #expect(s(w.a.get(b("k"))) == "v2")
    }

    /// A transaction that writes nothing appends nothing to the stores' streams. Reading in one store,
    /// or doing nothing, syncs nothing and writes no TM record either; reading in two stores costs the
    /// TM's one forced decision (the stores hold the reads until then).
    @Test func transactionThatWritesNothing() async throws {
        let w = try KVWorld(stores: 2, tag: "nowrite")
        defer { w.finish() }
        try await w.load(w.a, [("x", "1")])
        try await w.load(w.b, [("y", "1")])
        let aLast = w.a.stream.lastLSN, bLast = w.b.stream.lastLSN, tmLast = w.tm.stream!.lastLSN
        let syncs0 = w.syncs
        let oneStoreReader = try w.tm.createTransaction()
        #expect(s(try w.a.begin(oneStoreReader).get(b("x"))) == "1")
        try await oneStoreReader.commit()
        let idle = try w.tm.createTransaction()
        _ = try w.a.begin(idle)
        _ = try w.b.begin(idle)
        try await idle.commit()
        let bare = try w.tm.createTransaction()  // no store enlisted at all
        try await bare.commit()
        #expect(w.syncs == syncs0)
        #expect(w.tm.stream!.lastLSN == tmLast)
        let reader = try w.tm.createTransaction()
        #expect(s(try w.a.begin(reader).get(b("x"))) == "1")
        #expect(keysOf(try w.b.begin(reader).scan()) == ["y"])
        try await reader.commit()
        #expect(w.syncs - syncs0 == 1)
        #expect(w.a.stream.lastLSN == aLast && w.b.stream.lastLSN == bLast)
        #expect(w.contents(w.a) == ["x": "1"])
        #expect(w.a.inDoubtTransactions.isEmpty)
        #expect(w.a.lock.withLock { w.a.active.isEmpty && w.a.locks.isEmpty })
    }
}
