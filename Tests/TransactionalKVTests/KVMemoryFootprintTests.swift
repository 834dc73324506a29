// The memory a store needs per key (docs/KV.md, "Memory"). Not part of the normal run: it loads 1M keys.
//
//     TXLOG_KV_MEMORY=1 swift test --skip-build --scratch-path .build-h3 --filter KVMemoryFootprintTests
//
// Prints the growth of the resident set, for a store loaded through transactions and for the same store
// reopened from its snapshot, and the bytes per key beyond the keys' and values' own bytes.

import Foundation
import LogStore
import Testing
import TransactionManager
@testable import TransactionalKV

#if canImport(Glibc)
import Glibc
#endif

// (glibc's mallinfo is not visible through the Glibc module, so the resident set is what is measured.)

@Suite(.serialized) struct KVMemoryFootprintTests {
    static let enabled = ProcessInfo.processInfo.environment["TXLOG_KV_MEMORY"] == "1"

    static func residentBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        return fields.count > 1 ? (Int(fields[1]) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE))) : 0
    }

    static func report(_ what: String, keys: Int, dataBytes: Int, rss: Int) {
        let perKey = Double(rss - dataBytes) / Double(keys)
        print(String(format: "kv memory, %@: %d keys, %.1f MB of keys+values; RSS +%.1f MB, %.0f B/key over the data",
                     what, keys, Double(dataBytes) / 1e6, Double(rss) / 1e6, perKey))
    }

    @Test(.enabled(if: enabled)) func oneMillionSmallKeys() async throws {
        let keys = 1_000_000, batch = 10_000
        let options = LogCreateOptions(containerSize: 64 << 20, containerCount: 2, blockSize: 1 << 20)
        let w = try KVWorld(stores: 1, tag: "memory", options: options)
        defer { w.finish() }
        func key(_ i: Int) -> [UInt8] { Array(String(format: "k%07d", i).utf8) }  // 8 bytes
        func value(_ i: Int) -> [UInt8] { Array(String(format: "v%07d", i).utf8) }  // 8 bytes
        let dataBytes = keys * 16
        let rss0 = Self.residentBytes()
        for start in stride(from: 0, to: keys, by: batch) {
            let tx = try w.tm.createTransaction()
            let v = try w.a.begin(tx)
            for i in start..<start + batch { try v.put(key(i), value(i)) }
            try await tx.commit()
        }
        #expect(w.a.count == keys)
        w.a.lock.withLock { w.a.trimRecentWritesLocked() }  // the bounded validation history, not data
        Self.report("loaded by 100 commits", keys: keys, dataBytes: dataBytes, rss: Self.residentBytes() - rss0)

        try w.a.checkpoint()
        try w.crash()
        let log = try LogStore.open(at: w.directory + "/log")
        defer { try? log.close() }
        let tm = try TransactionManager.open(log: log)
        try tm.recover()
        let rss1 = Self.residentBytes()
        let store = try KVStore.open(transactionManager: tm, id: w.storeIDs[0], directory: w.dataDirectory)
        #expect(store.count == keys)
        Self.report("reopened from its snapshot", keys: keys, dataBytes: dataBytes, rss: Self.residentBytes() - rss1)
        #expect(store.get(key(123_456)) == value(123_456))
    }
}
