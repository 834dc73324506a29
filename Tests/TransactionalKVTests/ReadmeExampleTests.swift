// The code of README.md's "Using the library" section (and of docs/KV.md's first example), run in the
// documents' order against the public API (plain imports: nothing internal is visible here). Keep them in
// step: when a document's example changes, change this file the same way. Differences, all marked: paths are temporary directories,
// containers are 1 MiB instead of 64 MiB (creating 256 MiB of zeroed files is slow for a unit test),
// the store identities are made up, and `print` is replaced by a count. A line that differs carries the
// document's line after `// README: ` or `// KV.md: `; `DocExampleSyncTests` checks that every code line of
// the documents' examples is here, as code or so marked, in the documents' order.

import Foundation
import LogStore
import Testing
import TransactionManager
import TransactionalKV

@Suite struct ReadmeExampleTests {
    @Test func usingTheLibrary() async throws {
        let root = NSTemporaryDirectory() + "/txlog-readme-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)  // README: /var/lib/app exists
        defer { try? FileManager.default.removeItem(atPath: root) }
        let path = root + "/log"  // README: "/var/lib/app/log"

        // --- README: Using the library ---
        var options = LogCreateOptions()
        options.containerSize = 1 << 20  // README: options.containerSize = 64 << 20
        options.containerCount = 4
        var log = try LogStore.create(at: path, options: options)  // README: var log = try LogStore.create(at: "/var/lib/app/log", options: options)

        let first = try log.append(Array("debit 100".utf8))
        let second = try log.append(Array("credit 100".utf8), previous: first)
        try await log.flush(upTo: second)  // both records are durable once this returns

        var cursor = try log.records(from: first)
        var seen: [LSN] = []
        while let record = try cursor.next() { seen.append(record.lsn) }  // README: while let record = try cursor.next() { print(record.lsn, record.data.count) }
        #expect(seen == [first, second])

        try log.close()
        log = try LogStore.open(at: path)  // README: log = try LogStore.open(at: "/var/lib/app/log")
        #expect(try log.read(second).data == Array("credit 100".utf8))

        // --- README: named streams (on the reopened log) ---
        let app = try log.createStream("app")
        let lsn = try app.append(Array("prepare T1".utf8))
        try app.writeRestartArea(Array("checkpoint".utf8), newBase: lsn)  // flushed and recorded atomically
        app.onTailPinned { target in try? app.advanceBase(to: target) }  // called as the log fills up
        var mine = try app.records()  // only this stream's records
        #expect(try mine.next()?.data == Array("prepare T1".utf8))

        // --- README: Transactions and the key-value store (same log) ---
        let checkingID = GUID.random(), savingsID = GUID.random()  // README: the application's own ids
        let dataDirectory = root + "/data"  // README: "/var/lib/app/data"

        let tm = try TransactionManager.openOrCreate(log: log)  // its state lives in stream "ktm"
        try tm.recover()  // rebuild from the last checkpoint
        let checking = try KVStore.open(transactionManager: tm, id: checkingID, directory: dataDirectory)  // README: let checking = try KVStore.open(transactionManager: tm, id: checkingID, directory: "/var/lib/app/data")
        let savings = try KVStore.open(transactionManager: tm, id: savingsID, directory: dataDirectory)  // README: let savings = try KVStore.open(transactionManager: tm, id: savingsID, directory: "/var/lib/app/data")

        let tx = try tm.createTransaction(description: "transfer", timeout: .seconds(5))
        try checking.begin(tx).put(Array("alice".utf8), Array("60".utf8))
        try savings.begin(tx).put(Array("alice".utf8), Array("40".utf8))
        try await tx.commit()  // two-phase commit, one log flush; throws `conflict` if it must be retried

        #expect(checking.get(Array("alice".utf8)) == Array("60".utf8))
        #expect(savings.get(Array("alice".utf8)) == Array("40".utf8))
        checking.close()
        savings.close()
        try tm.close()
        try log.close()
    }

    @Test func kvGuideExample() async throws {
        let root = NSTemporaryDirectory() + "/txlog-kv-guide-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)  // docs/KV.md: /data/bank
        defer { try? FileManager.default.removeItem(atPath: root) }
        let accountsID = GUID.random(), auditID = GUID.random()

        // --- docs/KV.md: API ---
        let small = LogCreateOptions(containerSize: 1 << 20, containerCount: 2)  // KV.md: the default options (2 × 64 MiB)
        let log = try LogStore.create(at: root + "/log", options: small)  // KV.md: let log = try LogStore.create(at: "/data/bank/log")
        let tm = try TransactionManager.create(log: log)  // or TransactionManager.open(log:)
        try tm.recover()  // always before opening stores
        let accounts = try KVStore.open(transactionManager: tm, id: accountsID, directory: root + "/kv")  // KV.md: let accounts = try KVStore.open(transactionManager: tm, id: accountsID, directory: "/data/bank/kv")
        let audit = try KVStore.open(transactionManager: tm, id: auditID, directory: root + "/kv")  // KV.md: let audit = try KVStore.open(transactionManager: tm, id: auditID, directory: "/data/bank/kv")

        // A transfer: read, write, commit; retry on conflict.
        while true {
            let tx = try tm.createTransaction(timeout: .seconds(5))
            do {
                let a = try accounts.begin(tx), trail = try audit.begin(tx)  // one view per store
                let alice = Int(String(decoding: try a.get(Array("alice".utf8)) ?? [], as: UTF8.self)) ?? 0
                try a.put(Array("alice".utf8), Array("\(alice - 10)".utf8))
                try a.put(Array("bob".utf8), Array("10".utf8))
                try trail.put(Array("transfer/0001".utf8), Array("alice->bob 10".utf8))
                try await tx.commit()  // two stores: one two-phase commit, one sync
                break
            } catch let e as LogError where e.code == .conflict {
                try await Task.sleep(for: .milliseconds(1))  // someone else won; back off, then retry
            }
        }

        let rows = accounts.scan(from: Array("a".utf8), to: Array("c".utf8), limit: 100)  // committed data
        try accounts.checkpoint()  // snapshot; lets the log recycle

        #expect(rows.map(\.key) == [Array("alice".utf8), Array("bob".utf8)])
        #expect(accounts.get(Array("alice".utf8)) == Array("-10".utf8))
        #expect(audit.get(Array("transfer/0001".utf8)) == Array("alice->bob 10".utf8))
        accounts.close()
        audit.close()
        try tm.close()
        try log.close()
    }
}
