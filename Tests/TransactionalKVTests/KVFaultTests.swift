// The store when the file system or the log under it fails: a snapshot write that fails at each step
// (write, fsync, rename, directory fsync), and a log that fails in the middle of a commit.

import Foundation
import LogStore
import Synchronization
import Testing
import TransactionManager
@testable import TransactionalKV
import TxLogTestSupport

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
            let dir = try makeTempDirectory(tag)
            let ids = (0..<count).map { _ in GUID.random() }
            self.dir = dir
            self.ids = ids
            (log, tm, stores) = try removingOnThrow(dir) {
                let log = try LogStore.create(at: dir + "/log", options: KVFaultTests.tinyLog, io: logIO)
                let tm = try TransactionManager.create(log: log)
                try tm.recover()
                var s: [KVStore] = []
                for id in ids { s.append(try KVStore.open(transactionManager: tm, id: id, directory: dir + "/data", io: snapIO)) }
                return (log, tm, s)
            }
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

    /// Fails the log now: every later data sync gets EIO, and one is made.
    static func failLog(_ io: KVFaultIO, _ log: LogStore, _ stream: LogStream) {
        io.failAlways(.fdatasync)
        if let lsn = try? stream.append(b("poison")) { _ = try? stream.flush(upTo: lsn) }
    }

    /// Two stores commit together; the log fails after the decision is durable and before the stores
    /// log their commit records (a third participant, told first, fails it). Neither store can
    /// acknowledge. Before, commit() waited forever; now it returns (the decision is durable), every
    /// later call is refused or returns, and after a reopen both stores hold the writes.
    @Test(.hangGuard) func theLogFailingBetweenTheDecisionAndTheCommitRecordsLosesNothing() async throws {
        let io = KVFaultIO()
        let w = try Setup("fail-mid-commit", stores: 2, logIO: io)
        defer { try? FileManager.default.removeItem(atPath: w.dir) }
        let (a, b2) = (w.stores[0], w.stores[1])
        let log = w.log
        let poison = try log.createStream("poison")
        let trigger = try w.tm.createResourceManager(description: "trigger") { n in
            guard let e = n.enlistment else { return }
            switch n.kind {
            case .prePrepare: try? e.prePrepareComplete()
            case .prepare: try? e.prepareComplete()
            case .commit:
                KVFaultTests.failLog(io, log, poison)
                try? e.commitComplete()
            default: break
            }
        }
        try trigger.recover()
        let tx = try w.tm.createTransaction()
        _ = try trigger.enlist(tx)
        try a.begin(tx).put(b("k"), b("A"))
        try b2.begin(tx).put(b("k"), b("B"))
        let commit = BackgroundCall { try await tx.commit() }
        await commit.expectSuccess("commit: its decision is durable")
        #expect(log.isFailed)
        #expect(await eventually { w.tm.currentState == .failed })
        // The stores were told the transaction committed and could not log it: it is not in doubt.
        #expect(a.inDoubtTransactions.isEmpty && b2.inDoubtTransactions.isEmpty, "\(a.inDoubtTransactions) \(b2.inDoubtTransactions)")
        // Everything after the failure is refused, nothing hangs.
        expectLogError(.failed) { _ = try w.tm.createTransaction() }
        #expect(throws: LogError.self) { try a.checkpoint() }
        a.close()
        b2.close()
        try? w.tm.close()
        #expect(throws: LogError.self) { try log.close() }

        io.heal()
        let (log2, _, stores2) = try w.reopen()
        defer { try? log2.close() }
        #expect(s(stores2[0].get(b("k"))) == "A" && s(stores2[1].get(b("k"))) == "B")
        #expect(stores2[0].inDoubtTransactions.isEmpty && stores2[1].inDoubtTransactions.isEmpty)
    }

    /// A single-phase commit whose record's sync fails: the record may or may not be durable (here it
    /// reached the file, only its sync failed, so recovery finds it). commit() throws `failed`, and the
    /// transaction must not claim an outcome it does not know: before, the store vetoed and the
    /// transaction said `aborted`, while the reopened store held its write.
    @Test(.hangGuard) func aSinglePhaseCommitWhoseSyncFailsClaimsNoOutcome() async throws {
        let io = KVFaultIO()
        let w = try Setup("fail-single-phase", stores: 1, logIO: io)
        defer { try? FileManager.default.removeItem(atPath: w.dir) }
        let store = w.stores[0]
        try await Self.put(w.tm, store, "k", "1")
        io.failAlways(.fdatasync)
        let tx = try w.tm.createTransaction()
        try store.begin(tx).put(b("k"), b("2"))
        let commit = BackgroundCall { try await tx.commit() }
        let error = await commit.expectLogError(.failed, "commit")
        #expect(error?.message.contains("not known") == true, "\(String(describing: error))")
        #expect(tx.outcome == .undetermined, "the outcome is not known here")
        #expect(throws: LogError.self) { try store.checkpoint() }
        store.close()
        #expect(throws: LogError.self) { try w.log.close() }

        io.heal()
        let (log2, _, stores2) = try w.reopen()
        defer { try? log2.close() }
        #expect(s(stores2[0].get(b("k"))) == "2", "the record reached the file; recovery applies it")
    }

    /// A transaction begun before the log failed: its reads and writes stay in memory, its commit is
    /// refused with `failed`, its rollback and every store and TM call return; nothing hangs or traps,
    /// and a reopen shows only what was acknowledged.
    @Test(.hangGuard) func callsAfterTheLogFailedAreRefusedOrReturn() async throws {
        let io = KVFaultIO()
        let w = try Setup("calls-after-failure", stores: 2, logIO: io)
        defer { try? FileManager.default.removeItem(atPath: w.dir) }
        let (a, b2) = (w.stores[0], w.stores[1])
        try await Self.put(w.tm, a, "k", "1")
        let tx = try w.tm.createTransaction()
        let va = try a.begin(tx), vb = try b2.begin(tx)
        try va.put(b("k"), b("2"))
        Self.failLog(io, w.log, try w.log.createStream("poison"))
        #expect(await eventually { w.tm.currentState == .failed })
        try vb.put(b("m"), b("2"))
        #expect(s(try va.get(b("k"))) == "2")
        await expectLogError(.failed) { try await tx.commit() }
        try? tx.rollback()
        let tx2 = BackgroundCall { () async throws -> Void in _ = try a.begin(try w.tm.createTransaction()) }
        await tx2.expectLogError(.failed, "begin after the failure")
        #expect(throws: LogError.self) { try a.checkpoint() }
        #expect(throws: LogError.self) { _ = try KVStore.open(transactionManager: w.tm, id: GUID.random(), directory: w.data) }
        a.close()
        b2.close()
        try? w.tm.close()
        #expect(throws: LogError.self) { try w.log.close() }

        io.heal()
        let (log2, _, stores2) = try w.reopen()
        defer { try? log2.close() }
        #expect(s(stores2[0].get(b("k"))) == "1" && stores2[1].get(b("m")) == nil)
    }
}
