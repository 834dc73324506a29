// The size limits as docs/KV.md states them, on real logs: the largest key and value commit and come back
// from replay and from a snapshot; one byte more is `invalid-argument` and leaves nothing buffered; a write
// set too large for one log record fails the commit with `invalid-argument` in every store, nothing
// applied and no key left locked; empty keys and values survive; many keys in one transaction span blocks.

import Foundation
import LogStore
import Testing
import TransactionManager
@testable import TransactionalKV

@Suite struct KVLimitsTests {
    /// A 64 KiB key with a 16 MiB value, on a log whose records can hold them (32 MiB containers).
    @Test func theLargestKeyAndValueCommitAndComeBack() async throws {
        var options = LogCreateOptions(containerSize: 32 << 20, containerCount: 2, blockSize: 64 << 10)
        options.maxRecordSize = 17 << 20
        let w = try KVWorld(stores: 1, tag: "largest", options: options)
        defer { w.finish() }
        let key = [UInt8](repeating: 0xAB, count: KVRecord.maxKey)
        var value = [UInt8](repeating: 0x5A, count: KVRecord.maxValue)
        value[0] = 1
        value[value.count / 2] = 2
        value[value.count - 1] = 3
        let tx = try w.tm.createTransaction()
        let v = try w.a.begin(tx)
        expectLogError(.invalidArgument) { try v.put(key + [0], []) }
        expectLogError(.invalidArgument) { try v.put(key, value + [0]) }
        expectLogError(.invalidArgument) { try v.delete(key + [0]) }
        #expect(try v.get(key) == nil, "a refused put buffers nothing")
        try v.put(key, value)
        try await tx.commit()
        #expect(w.a.get(key) == value)
        try w.crashAndReopen()  // from the stream
        #expect(w.a.get(key) == value)
        try w.a.checkpoint()
        try w.crashAndReopen()  // from the snapshot
        #expect(w.a.get(key) == value)
        #expect(w.a.count == 1)
    }

    /// A write set over the log's `maxRecordSize`: alone in its store (single-phase) and beside a second
    /// store (two-phase). The commit throws `invalid-argument`, neither store applies anything, the keys
    /// are not left locked, and a crash brings nothing of it back.
    @Test(arguments: [false, true]) func aWriteSetTooLargeForOneRecordFailsTheCommit(twoStores: Bool) async throws {
        let w = try KVWorld(stores: 2, tag: "too-large")
        defer { w.finish() }
        let tx = try w.tm.createTransaction()
        let va = try w.a.begin(tx)
        // Each value fits; together they do not (1 MiB containers: about 1 MiB per record).
        for i in 0..<4 { try va.put(b("big\(i)"), [UInt8](repeating: UInt8(i), count: w.log.maxRecordSize / 3)) }
        if twoStores { try w.b.begin(tx).put(b("small"), b("1")) }
        await expectLogError(.invalidArgument) { try await tx.commit() }
        #expect(tx.outcome == .aborted)
        #expect(w.a.count == 0 && w.b.count == 0)
        for s in [w.a, w.b] { #expect(s.lock.withLock { s.locks.isEmpty && s.active.isEmpty }) }
        let t2 = try w.tm.createTransaction()
        try w.a.begin(t2).put(b("big0"), b("2"))
        if twoStores { try w.b.begin(t2).put(b("small"), b("2")) }
        try await t2.commit()
        try w.crashAndReopen()
        #expect(w.contents(w.a) == ["big0": "2"])
        #expect(w.contents(w.b) == (twoStores ? ["small": "2"] : [:]))
    }

    /// The empty key and empty values are keys and values like any other (an empty value is not a delete).
    @Test func emptyKeysAndValuesSurvive() async throws {
        let w = try KVWorld(stores: 1, tag: "empty")
        defer { w.finish() }
        let tx = try w.tm.createTransaction()
        let v = try w.a.begin(tx)
        try v.put([], [])
        try v.put(b("e"), [])
        #expect(try v.get([]) == [] && v.scan().count == 2)
        try await tx.commit()
        #expect(w.a.get([]) == [] && w.a.get(b("e")) == [])
        try w.crashAndReopen()
        #expect(w.a.get([]) == [] && w.a.get(b("e")) == [])
        try w.a.checkpoint()
        try w.crashAndReopen()
        #expect(w.a.get([]) == [] && w.a.get(b("e")) == [])
        #expect(w.a.scan().map(\.key) == [[], b("e")])
    }

    /// 20 000 keys in one transaction (one record spanning many 8 KiB blocks of a 1 MiB container),
    /// overwritten and half deleted by a second: both come back from replay and from a snapshot.
    @Test func manyKeysInOneTransaction() async throws {
        let w = try KVWorld(stores: 1, tag: "many", options: LogCreateOptions(containerSize: 1 << 20, containerCount: 4, blockSize: 8192))
        defer { w.finish() }
        let n = 20_000
        func key(_ i: Int) -> [UInt8] { b("k\(i)") }
        let t1 = try w.tm.createTransaction()
        let v1 = try w.a.begin(t1)
        for i in 0..<n { try v1.put(key(i), b("\(i)")) }
        try await t1.commit()
        let t2 = try w.tm.createTransaction()
        let v2 = try w.a.begin(t2)
        for i in 0..<n { if i % 2 == 0 { try v2.delete(key(i)) } else { try v2.put(key(i), b("x\(i)")) } }
        try await t2.commit()
        func check() {
            #expect(w.a.count == n / 2)
            #expect(w.a.get(key(2)) == nil && s(w.a.get(key(3))) == "x3" && s(w.a.get(key(n - 1))) == "x\(n - 1)")
        }
        check()
        try w.crashAndReopen()
        check()
        try w.a.checkpoint()
        try w.crashAndReopen()
        check()
    }
}
