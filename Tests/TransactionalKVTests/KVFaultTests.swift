// The store when the file system or the log under it fails: a snapshot write that fails at each step
// (write, fsync, rename, directory fsync), and a log that fails in the middle of a commit.

import Foundation
import LogStore
import Synchronization
import Testing
import TransactionManager
@testable import TransactionalKV

/// Forwards to the real file system; fails chosen calls with EIO once armed.
final class KVFaultIO: ForwardingFileIO, Sendable {
    enum Step: String, Sendable, CaseIterable { case pwritev, fsync, rename, fsyncDirectory, fdatasync }
    let base: any FileIO = PosixFileIO()
    /// Steps whose next call fails (once each), and steps that fail every time.
    let once = Mutex<Set<Step>>([])
    let always = Mutex<Set<Step>>([])

    func failNext(_ s: Step) { _ = once.withLock { $0.insert(s) } }
    func failAlways(_ s: Step) { _ = always.withLock { $0.insert(s) } }
    func heal() {
        once.withLock { $0.removeAll() }
        always.withLock { $0.removeAll() }
    }
    private func check(_ s: Step) throws {
        let fail = always.withLock { $0.contains(s) } || once.withLock { $0.remove(s) != nil }
        if fail { throw LogError(.io, "injected \(s.rawValue) failure", errno: 5) }
    }
    func pwritev(_ fd: Int32, _ buffers: [UnsafeRawBufferPointer], at offset: UInt64) throws -> Int {
        try check(.pwritev)
        return try base.pwritev(fd, buffers, at: offset)
    }
    func fsync(_ fd: Int32) throws {
        try check(.fsync)
        try base.fsync(fd)
    }
    func fdatasync(_ fd: Int32) throws {
        try check(.fdatasync)
        try base.fdatasync(fd)
    }
    func rename(_ from: String, _ to: String) throws {
        try check(.rename)
        try base.rename(from, to)
    }
    func fsyncDirectory(_ path: String) throws {
        try check(.fsyncDirectory)
        try base.fsyncDirectory(path)
    }
}

@Suite struct KVFaultTests {
    static let tinyLog = LogCreateOptions(containerSize: 1 << 20, containerCount: 2, blockSize: 8192)

    /// A log on `logIO`, a TM and `count` stores whose snapshots go through `snapIO`.
    struct Setup {
        let dir: String
        let ids: [GUID]
        let log: LogStore
        let tm: TransactionManager
        let stores: [KVStore]
        var data: String { dir + "/data" }

        init(_ tag: String, stores count: Int, logIO: any FileIO = PosixFileIO(), snapIO: any FileIO = PosixFileIO()) throws {
            dir = try makeTempDirectory(tag)
            ids = (0..<count).map { _ in GUID.random() }
            log = try LogStore.create(at: dir + "/log", options: KVFaultTests.tinyLog, io: logIO)
            tm = try TransactionManager.create(log: log)
            try tm.recover()
            var s: [KVStore] = []
            for id in ids { s.append(try KVStore.open(transactionManager: tm, id: id, directory: dir + "/data", io: snapIO)) }
            stores = s
        }

        /// Opens the log again (the objects above are abandoned: a crash) with every store.
        func reopen(io: any FileIO = PosixFileIO()) throws -> (LogStore, TransactionManager, [KVStore]) {
            let log = try LogStore.open(at: dir + "/log", io: io)
            let tm = try TransactionManager.open(log: log)
            try tm.recover()
            return (log, tm, try ids.map { try KVStore.open(transactionManager: tm, id: $0, directory: data, io: io) })
        }

        func files() -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: data)) ?? []).sorted() }
    }

    static func put(_ tm: TransactionManager, _ store: KVStore, _ k: String, _ v: String) async throws {
        let tx = try tm.createTransaction()
        try store.begin(tx).put(b(k), b(v))
        try await tx.commit()
    }

    /// A snapshot that fails at any step leaves the store working and its next open intact, and the
    /// next checkpoint leaves no file of the failed one behind (before, a failed rename left its
    /// temporary file, the size of the whole snapshot, for good).
    @Test(arguments: [KVFaultIO.Step.pwritev, .fsync, .rename, .fsyncDirectory])
    func aFailedSnapshotLosesNothingAndLeavesNothingBehind(step: KVFaultIO.Step) async throws {
        let io = KVFaultIO()
        let w = try Setup("snapfault-\(step.rawValue)", stores: 1, snapIO: io)
        defer { try? FileManager.default.removeItem(atPath: w.dir) }
        let store = w.stores[0]
        try await Self.put(w.tm, store, "a", "1")
        try store.checkpoint()
        try await Self.put(w.tm, store, "b", "2")
        io.failNext(step)
        #expect(throws: LogError.self) { try store.checkpoint() }
        try await Self.put(w.tm, store, "c", "3")
        // A crash now: the store opens from the previous checkpoint and its records.
        try w.log.close()
        do {
            let (log2, tm2, stores2) = try w.reopen()
            #expect(stores2[0].scan().map { s($0.value) } == ["1", "2", "3"])
            try await Self.put(tm2, stores2[0], "d", "4")
            try stores2[0].checkpoint()
            #expect(w.files().count == 1, "files after a successful checkpoint: \(w.files())")
            stores2[0].close()
            try tm2.close()
            try log2.close()
        }
        let (log3, _, stores3) = try w.reopen()
        defer { try? log3.close() }
        #expect(stores3[0].scan().map { s($0.value) } == ["1", "2", "3", "4"])
    }

    /// The same, without a crash in between: the next checkpoint of the same instance cleans up.
    @Test(arguments: [KVFaultIO.Step.pwritev, .fsync, .rename, .fsyncDirectory])
    func theNextCheckpointCleansUpAfterAFailedOne(step: KVFaultIO.Step) async throws {
        let io = KVFaultIO()
        let w = try Setup("snapfault2-\(step.rawValue)", stores: 1, snapIO: io)
        defer { try? FileManager.default.removeItem(atPath: w.dir) }
        let store = w.stores[0]
        try await Self.put(w.tm, store, "a", "1")
        io.failNext(step)
        #expect(throws: LogError.self) { try store.checkpoint() }
        try store.checkpoint()
        #expect(w.files().count == 1, "\(w.files())")
        try w.log.close()
        let (log2, _, stores2) = try w.reopen()
        defer { try? log2.close() }
        #expect(stores2[0].scan().map { s($0.value) } == ["1"])
    }

    /// A temporary file a crashed checkpoint left under another generation's name is deleted by the
    /// next checkpoint, as older snapshots are.
    @Test func aTemporaryFileACrashLeftIsDeletedByTheNextCheckpoint() async throws {
        let w = try Setup("snaptemp", stores: 1)
        defer { try? FileManager.default.removeItem(atPath: w.dir) }
        let store = w.stores[0]
        try await Self.put(w.tm, store, "a", "1")
        let stale = w.data + "/" + KVSnapshotFile.name(store: store.id, generation: 99) + ".tmp"
        #expect(FileManager.default.createFile(atPath: stale, contents: Data(count: 4096)))
        try store.checkpoint()
        #expect(!FileManager.default.fileExists(atPath: stale), "\(w.files())")
        #expect(w.files().count == 1, "\(w.files())")
        try w.log.close()
    }
}
