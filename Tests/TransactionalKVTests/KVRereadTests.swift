// A transaction that reads a key twice, with a commit to that key in between, saw two values: no serial
// order of the transactions gives it both, so it must not commit.

import Foundation
import LogStore
import Testing
import TransactionManager
@testable import TransactionalKV

@Suite struct KVRereadTests {
    /// Before, each read of a key overwrote the version recorded for it: the second read kept the new
    /// version, validation found it current, and a transaction that acted on the first value committed.
    @Test func rereadingAKeyChangedMeanwhileIsAConflict() async throws {
        let w = try KVWorld(stores: 1, tag: "reread")
        defer { w.finish() }
        try await w.load(w.a, [("a", "1")])
        let t1 = try w.tm.createTransaction()
        let v1 = try w.a.begin(t1)
        let first = try v1.get(b("a"))
        try await w.load(w.a, [("a", "2")])
        #expect(s(try v1.get(b("a"))) == "2", "a read sees the latest committed value")
        // It writes what it saw first: serial order t1, load would leave copy = 1 and a = 2 with t1 never
        // having seen 2; load, t1 would give copy = 2.
        try v1.put(b("copy"), try #require(first))
        await expectLogError(.conflict, "t1 saw a = 1 and then a = 2") { try await t1.commit() }
        #expect(w.contents(w.a) == ["a": "2"])
        #expect(w.a.statistics.conflicts == 1)
    }

    /// The same for a transaction that only reads (it commits in a single phase with nothing to log),
    /// and for a key first read absent and then present.
    @Test func aReadOnlyTransactionThatSawTwoValuesIsAConflict() async throws {
        let w = try KVWorld(stores: 1, tag: "reread-ro")
        defer { w.finish() }
        try await w.load(w.a, [("a", "1")])
        let t1 = try w.tm.createTransaction()
        let v1 = try w.a.begin(t1)
        #expect(s(try v1.get(b("a"))) == "1")
        #expect(try v1.get(b("fresh")) == nil)
        try await w.load(w.a, [("a", "2"), ("fresh", "x")])
        #expect(s(try v1.get(b("a"))) == "2")
        #expect(s(try v1.get(b("fresh"))) == "x")
        await expectLogError(.conflict) { try await t1.commit() }
        // Reading a key twice with no commit in between stays valid.
        let t2 = try w.tm.createTransaction()
        let v2 = try w.a.begin(t2)
        #expect(s(try v2.get(b("a"))) == "2")
        #expect(s(try v2.get(b("a"))) == "2")
        try v2.put(b("copy"), b("2"))
        try await t2.commit()
        #expect(w.contents(w.a) == ["a": "2", "fresh": "x", "copy": "2"])
    }
}
