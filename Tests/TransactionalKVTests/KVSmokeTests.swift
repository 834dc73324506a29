import Foundation
import LogStore
import Testing
import TransactionManager
@testable import TransactionalKV

@Suite struct KVSmokeTests {
    /// Test helpers make their directory first: one that then throws must remove it, since its caller
    /// never got the path to remove (every failing run left a directory in the temporary directory).
    @Test("a KVWorld whose log cannot be created leaves no directory behind")
    func failedWorldLeavesNoDirectory() throws {
        let tag = "failed-world-\(UUID().uuidString)"
        #expect(throws: LogError.self) { _ = try KVWorld(tag: tag, options: LogCreateOptions(containerSize: 1 << 20, containerCount: 1)) }
        let left = try FileManager.default.contentsOfDirectory(atPath: NSTemporaryDirectory()).filter { $0.hasPrefix("txlog-kv-\(tag)-") }
        #expect(left.isEmpty, "left behind: \(left)")
    }

    @Test func transferAcrossTwoStoresSurvivesReopen() async throws {
        let dir = NSTemporaryDirectory() + "/kv-smoke-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let a = GUID.random(), b = GUID.random()
        do {
            let log = try LogStore.create(at: dir + "/log", options: LogCreateOptions(containerSize: 1 << 20, containerCount: 2, blockSize: 8192))
            let tm = try TransactionManager.create(log: log)
            try tm.recover()
            let s1 = try KVStore.open(transactionManager: tm, id: a, directory: dir + "/data")
            let s2 = try KVStore.open(transactionManager: tm, id: b, directory: dir + "/data")
            let t0 = try tm.createTransaction()
            try s1.begin(t0).put(Array("alice".utf8), Array("100".utf8))
            try await t0.commit()  // single-phase
            let syncs0 = log.info().statistics.syncs
            let t1 = try tm.createTransaction()
            let v1 = try s1.begin(t1), v2 = try s2.begin(t1)
            #expect(try v1.get(Array("alice".utf8)) == Array("100".utf8))
            try v1.put(Array("alice".utf8), Array("60".utf8))
            try v2.put(Array("bob".utf8), Array("40".utf8))
            try await t1.commit()
            #expect(log.info().statistics.syncs - syncs0 == 1)
            #expect(s1.get(Array("alice".utf8)) == Array("60".utf8))
            #expect(s2.get(Array("bob".utf8)) == Array("40".utf8))
            try s1.checkpoint()
            let t2 = try tm.createTransaction()
            try s1.begin(t2).put(Array("carol".utf8), Array("1".utf8))
            try await t2.commit()
            try log.close()  // a crash, as far as the TM and stores are concerned
        }
        let log = try LogStore.open(at: dir + "/log")
        let tm = try TransactionManager.open(log: log)
        try tm.recover()
        let s1 = try KVStore.open(transactionManager: tm, id: a, directory: dir + "/data")
        let s2 = try KVStore.open(transactionManager: tm, id: b, directory: dir + "/data")
        #expect(s1.get(Array("alice".utf8)) == Array("60".utf8))
        #expect(s1.get(Array("carol".utf8)) == Array("1".utf8))
        #expect(s2.get(Array("bob".utf8)) == Array("40".utf8))
        #expect(s1.scan().map { String(decoding: $0.key, as: UTF8.self) } == ["alice", "carol"])
        // A conflict is a clear, retryable error.
        let x = try tm.createTransaction(), y = try tm.createTransaction()
        let vx = try s1.begin(x), vy = try s1.begin(y)
        _ = try vx.get(Array("alice".utf8))
        try vx.put(Array("alice".utf8), Array("1".utf8))
        _ = try vy.get(Array("alice".utf8))
        try vy.put(Array("alice".utf8), Array("2".utf8))
        try await x.commit()
        await #expect(throws: LogError.self) { try await y.commit() }
        do { try await y.commit() } catch let e as LogError { #expect(e.code == .aborted || e.code == .conflict) }
        try log.close()
    }
}
