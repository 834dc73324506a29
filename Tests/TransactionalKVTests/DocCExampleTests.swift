// The examples of the TransactionalKV DocC catalogue's getting-started article
// (Sources/TransactionalKV/TransactionalKV.docc/GettingStarted.md), in order, against the public API
// (plain imports). Keep the two in step. Differences, marked: a temporary directory, small containers,
// and expectations where the article has comments.

import Foundation
import LogStore
import Testing
import TransactionManager
import TransactionalKV

@Suite struct KVDocCExampleTests {
    @Test func gettingStarted() async throws {
        let root = NSTemporaryDirectory() + "/txlog-kv-docc-\(UUID().uuidString)"  // article: /var/lib/app
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let small = LogCreateOptions(containerSize: 1 << 20, containerCount: 2)  // article: the default options

        // --- GettingStarted: Open a store ---
        let log = try LogStore.create(at: root + "/log", options: small)
        let tm = try TransactionManager.create(log: log)
        try tm.recover()  // always before opening stores
        let inventoryID = GUID.random()  // keep it: the store's identity
        let inventory = try KVStore.open(transactionManager: tm, id: inventoryID, directory: root + "/kv")

        // --- GettingStarted: Write in a transaction ---
        let tx = try tm.createTransaction(timeout: .seconds(5))
        let view = try inventory.begin(tx)
        try view.put(Array("apples".utf8), Array("12".utf8))
        try view.put(Array("pears".utf8), Array("7".utf8))
        try await tx.commit()  // durable once this returns

        // --- GettingStarted: Read committed data ---
        let apples = inventory.get(Array("apples".utf8))  // "12"
        let fruit = inventory.scan(from: Array("a".utf8), to: Array("q".utf8))  // apples, pears
        #expect(apples == Array("12".utf8))  // (not in the article)
        #expect(fruit.map { String(decoding: $0.key, as: UTF8.self) } == ["apples", "pears"])  // (not in the article)

        // --- GettingStarted: Retry on conflict ---
        func take(_ n: Int, of item: String) async throws {
            while true {
                let tx = try tm.createTransaction(timeout: .seconds(5))
                do {
                    let v = try inventory.begin(tx)
                    let have = Int(String(decoding: try v.get(Array(item.utf8)) ?? [], as: UTF8.self)) ?? 0
                    try v.put(Array(item.utf8), Array("\(have - n)".utf8))
                    try await tx.commit()
                    return
                } catch let e as LogError where e.code == .conflict {
                    continue  // someone else changed it first: run it again
                }
            }
        }
        try await take(2, of: "apples")

        // --- GettingStarted: Checkpoint and close ---
        try inventory.checkpoint()
        inventory.close()
        try tm.close()
        try log.close()

        // --- GettingStarted: Open again after a restart ---
        let log2 = try LogStore.open(at: root + "/log")
        let tm2 = try TransactionManager.open(log: log2)
        try tm2.recover()
        let reopened = try KVStore.open(transactionManager: tm2, id: inventoryID, directory: root + "/kv")
        let left = reopened.get(Array("apples".utf8))  // "10"
        #expect(left == Array("10".utf8))  // (not in the article)
        #expect(reopened.count == 2)  // (not in the article)

        reopened.close()  // (not in the article)
        try tm2.close()
        try log2.close()
    }
}
