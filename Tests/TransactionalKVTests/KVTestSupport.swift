// Shared helpers of the TransactionalKV tests: temporary directories, a tiny log with a TM and stores,
// a simulated crash (the log is closed under the TM and the stores, which are then abandoned), byte
// helpers, a seeded random generator, and an error matcher.

import Foundation
import LogStore
import Testing
@_exported import TxLogTestSupport
import TransactionManager
@testable import TransactionalKV

/// A fresh directory under the system's temporary directory.
func makeTempDirectory(_ tag: String) throws -> String {
    let dir = NSTemporaryDirectory() + "/txlog-kv-\(tag)-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

/// Bytes of a string.
func b(_ s: String) -> [UInt8] { Array(s.utf8) }

/// A string of bytes (for readable expectations).
func s(_ bytes: [UInt8]?) -> String? { bytes.map { String(decoding: $0, as: UTF8.self) } }

/// The keys of a scan result, as strings.
func keysOf(_ rows: [(key: [UInt8], value: [UInt8])]) -> [String] { rows.map { String(decoding: $0.key, as: UTF8.self) } }

/// A log directory with a TM and a few stores, which can be "crashed" and reopened.
///
/// A crash closes the LogStore without closing the TM or the stores (so the TM writes no final
/// checkpoint and no store closes its RM) and abandons those objects; `reopen` then runs the startup
/// order: `TransactionManager.open(log:)`, `recover()`, `KVStore.open` for each store.
final class KVWorld: @unchecked Sendable {
    static let tinyLog = LogCreateOptions(containerSize: 1 << 20, containerCount: 2, blockSize: 8192)

    let directory: String
    let storeIDs: [GUID]
    private(set) var log: LogStore
    private(set) var tm: TransactionManager
    private(set) var stores: [KVStore]
    /// Objects of earlier lives, kept alive so nothing they own runs deinit code against a new log.
    private var abandoned: [AnyObject] = []

    var dataDirectory: String { directory + "/data" }

    init(stores count: Int = 2, tag: String = "world", options: LogCreateOptions = KVWorld.tinyLog) throws {
        let directory = try makeTempDirectory(tag)
        let ids = (0..<count).map { _ in GUID.random() }
        self.directory = directory
        storeIDs = ids
        (log, tm, stores) = try removingOnThrow(directory) {
            let log = try LogStore.create(at: directory + "/log", options: options)
            let tm = try TransactionManager.create(log: log)
            try tm.recover()
            var stores: [KVStore] = []
            for id in ids { stores.append(try KVStore.open(transactionManager: tm, id: id, directory: directory + "/data")) }
            return (log, tm, stores)
        }
    }

    var a: KVStore { stores[0] }
    var b: KVStore { stores[1] }

    /// Closes the log under the TM and the stores (a crash, as far as they are concerned).
    func crash() throws {
        abandoned.append(tm)
        abandoned.append(contentsOf: stores as [AnyObject])
        try log.close()
    }

    /// Reopens the log, the TM and every store, and runs recovery.
    func reopen() throws {
        abandoned.append(log)
        log = try LogStore.open(at: directory + "/log")
        tm = try TransactionManager.open(log: log)
        try tm.recover()
        stores = []
        for id in storeIDs { stores.append(try KVStore.open(transactionManager: tm, id: id, directory: dataDirectory)) }
    }

    func crashAndReopen() throws {
        try crash()
        try reopen()
    }

    /// Closes the log and removes the directory.
    func finish() {
        try? log.close()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Commits one transaction that puts `pairs` into `store` (single-phase).
    func load(_ store: KVStore, _ pairs: [(String, String)]) async throws {
        let tx = try tm.createTransaction()
        let v = try store.begin(tx)
        for (k, val) in pairs { try v.put(Array(k.utf8), Array(val.utf8)) }
        try await tx.commit()
    }

    /// Prepares a transaction that puts k=p in store a and j=p in store b under a superior, and returns
    /// the superior (its outcome undecided: both stores hold the writes prepared, keys locked).
    func preparedUnderASuperior() async throws -> SuperiorEnlistment {
        let p = try tm.createTransaction()
        try a.begin(p).put(Array("k".utf8), Array("p".utf8))
        try b.begin(p).put(Array("j".utf8), Array("p".utf8))
        let sup = try p.enlistSuperior()
        #expect(try await sup.prepare() == .prepared)
        return sup
    }

    /// Every committed key and value of `store`, as strings.
    func contents(_ store: KVStore) -> [String: String] {
        var out: [String: String] = [:]
        for row in store.scan() { out[String(decoding: row.key, as: UTF8.self)] = String(decoding: row.value, as: UTF8.self) }
        return out
    }

    /// The number of syncs the log has done so far.
    var syncs: Int { Int(log.info().statistics.syncs) }

    /// The snapshot files in the data directory.
    func snapshotFiles() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dataDirectory)) ?? []).filter { $0.hasSuffix(".snap") }.sorted()
    }
}
