// The write history kept to validate range scans is bounded: a transaction left open cannot make it grow
// without limit. Past the limit, that transaction's range scan conflicts (retryable); point reads and
// newer transactions are unaffected.

import LogStore
import Testing
import TransactionManager
@testable import TransactionalKV

@Suite struct KVValidationHistoryTests {
    @Test func aTransactionLeftOpenDoesNotGrowTheHistoryBeyondItsLimit() async throws {
        let w = try KVWorld(stores: 1, tag: "history")
        defer { w.finish() }
        w.a.lock.withLock { w.a.historyLimit = 16 }
        try await w.load(w.a, [("item/1", "a")])
        // Left open across many commits: one scanning a range, one reading a key only.
        let scanner = try w.tm.createTransaction()
        let vs = try w.a.begin(scanner)
        _ = try vs.scan(from: b("item/"), to: b("item0"))
        try vs.put(b("count"), b("1"))
        let reader = try w.tm.createTransaction()
        let vr = try w.a.begin(reader)
        #expect(s(try vr.get(b("item/1"))) == "a")
        try vr.put(b("seen"), b("a"))

        // Commits outside the scanned range: they never conflict with it by content.
        for i in 0..<100 { try await w.load(w.a, [("other/\(i)", "x")]) }
        let kept = w.a.lock.withLock { w.a.recentWrites.count }
        #expect(kept <= 16, "history holds \(kept) commits")
        #expect(w.a.lock.withLock { w.a.historyFloor } > 0)

        await expectLogError(.conflict, "the scan can no longer be validated") { try await scanner.commit() }
        #expect(w.a.get(b("count")) == nil)
        try await reader.commit()  // point reads validate by version, not by history
        #expect(s(w.a.get(b("seen"))) == "a")

        // A retry, begun after the history was cut, scans and commits.
        let retry = try w.tm.createTransaction()
        let v2 = try w.a.begin(retry)
        #expect(try v2.scan(from: b("item/"), to: b("item0")).count == 1)
        try v2.put(b("count"), b("1"))
        try await retry.commit()
        #expect(s(w.a.get(b("count"))) == "1")
    }

    @Test func withNoTransactionOpenTheHistoryStaysSmallAndNothingConflicts() async throws {
        let w = try KVWorld(stores: 1, tag: "history-idle")
        defer { w.finish() }
        w.a.lock.withLock { w.a.historyLimit = 16 }
        for i in 0..<100 { try await w.load(w.a, [("k/\(i)", "x")]) }
        #expect(w.a.lock.withLock { w.a.recentWrites.count } <= 16)
        #expect(w.a.lock.withLock { w.a.historyFloor } == 0)
        let tx = try w.tm.createTransaction()
        let v = try w.a.begin(tx)
        #expect(try v.scan(from: b("k/"), to: b("k0")).count == 100)
        try v.put(b("n"), b("100"))
        try await tx.commit()
    }
}
