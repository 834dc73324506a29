// Recovery's scan of the TM stream checks for cancellation (terminate) for every block it reads, not
// only every 256 TM records: in a log shared with busy RM streams the TM's few records after its
// checkpoint sit among thousands of blocks of other streams, and the scan reads all of them.

import Foundation
import LogStore
import Synchronization
import Testing
@testable import TransactionManager

@Suite struct RecoveryCancellationTests {
    static let log = LogCreateOptions(containerSize: 8 << 20, containerCount: 2, blockSize: 8192)
    /// Blocks of RM records written after the committed transaction: enough that a scan that reads them
    /// all is told apart from one that stops at once.
    static let filler = 400

    /// A log whose TM owes one committed transaction (its RM holds the commit unanswered), followed by
    /// `filler` blocks of that RM's own records and no further TM record; then a crash (no TM close).
    static func makeSparseTMLog(_ scratch: TMScratch) async throws -> GUID {
        let (log, tm) = try scratch.createOnline(
            options: { var o = TransactionManagerOptions(); o.checkpointEveryRecords = 0; return o }(), log: Self.log)
        let a = try ScriptedRM.online(tm, "a")
        let b = try ScriptedRM.online(tm, "b")
        a.on(.commit, .hold)
        let tx = try tm.createTransaction()
        _ = try a.enlist(tx)
        _ = try b.enlist(tx)
        let driver = Task { try await tx.commit() }
        #expect(await a.waitFor(.commit, tx: tx.id))
        let stream = try #require(b.rm.stream)
        let record = [UInt8](repeating: 7, count: 1000)
        for _ in 0..<(Self.filler * 8) { try stream.append(record) }
        try await log.flush()
        try log.close()
        try? tm.close()  // the log is closed: nothing is written, the driver is woken
        _ = try? await driver.value
        withExtendedLifetime((a, b)) {}
        return a.id
    }

    /// Cancelled from the start, recovery stops before reading the RM's blocks and throws `terminated`;
    /// the TM stays initialized, and a second recovery finds the committed transaction.
    @Test func cancelledRecoveryStopsAmongOtherStreamsBlocks() async throws {
        let scratch = TMScratch("cancel-sparse")
        defer { scratch.remove() }
        let rmID = try await Self.makeSparseTMLog(scratch)
        let log = try LogStore.open(at: scratch.path)
        defer { try? log.close() }
        let tm = try TransactionManager.open(log: log)
        Self.expectCancelledRecovery(tm)
        #expect(tm.currentState == .initialized)
        try tm.recover()
        #expect(tm.lastRecovery.committing == 1)
        let a = try ScriptedRM.open(tm, id: rmID)
        try a.rm.recover()
        #expect(await eventually { a.allKinds.contains(.commit) })
        withExtendedLifetime(a) {}
    }

    /// The same through OnlineResource: terminate called as recovery starts stops the scan (a counting
    /// file layer sees few reads after it), terminate settles, and the next open recovers the commit.
    @Test func terminateStopsASparseRecoveryScan() async throws {
        let scratch = TMScratch("terminate-sparse")
        defer { scratch.remove() }
        let rmID = try await Self.makeSparseTMLog(scratch)
        let io = ReadCountingIO()
        let statuses = StatusLog()
        let spec = OnlineResource.ResourceManagerSpec(id: rmID, handler: answerAtOnce)
        var config = OnlineResource.Configuration(logDirectory: scratch.path, resourceManagers: [spec])
        config.onlineBudget = .zero
        config.io = io
        let box = ResourceBox()
        let resource = OnlineResource(config) { s in
            statuses.add(s)
            if case .onlinePending(let step, _) = s, step == "recover transaction manager" {
                io.mark()
                box.value?.terminate()
            }
        }
        box.set(resource)
        _ = try? resource.online()
        #expect(await resource.waitUntilSettled() == .terminated)
        resource.terminate()
        // Without a check per block the scan read every one of the filler blocks after the terminate.
        #expect(io.readsSinceMark < Self.filler / 4)
        let log = try LogStore.open(at: scratch.path)
        defer { try? log.close() }
        let tm = try TransactionManager.open(log: log)
        try tm.recover()
        #expect(tm.lastRecovery.committing == 1)
    }

    /// Recovery cancelled from its start throws, after asking for cancellation at least once.
    static func expectCancelledRecovery(_ tm: TransactionManager) {
        let polls = Atomic<Int>(0)
        #expect(throws: LogError.self) {
            try tm.recover(isCancelled: {
                polls.add(1, ordering: .relaxed)
                return true
            })
        }
        #expect(polls.load(ordering: .relaxed) >= 1)
    }

    /// Brings `config` online on a worker (budget zero) and terminates it as the worker reports the
    /// "open log" step, after calling `mark` (so a counting file layer counts what follows).
    static func terminateAtOpenLog(_ config: OnlineResource.Configuration, mark: @escaping @Sendable () -> Void) async {
        var config = config
        config.onlineBudget = .zero
        let box = ResourceBox()
        let resource = OnlineResource(config) { s in
            if case .onlinePending(let step, _) = s, step == "open log" {
                mark()
                box.value?.terminate()
            }
        }
        box.set(resource)
        _ = try? resource.online()
        #expect(await resource.waitUntilSettled() == .terminated)
        resource.terminate()
    }

    /// A terminate while the *log* is being opened: a log that was not closed cleanly is scanned on open,
    /// and the scan had no cancellation hook, so terminate waited until every block was read. The worker
    /// now passes its cancellation to the open (`LogOpenOptions.isCancelled`), which throws `terminated`
    /// and leaves the log unlocked.
    @Test func terminateStopsTheLogsOwnRecoveryScan() async throws {
        let scratch = TMScratch("terminate-log-scan")
        defer { scratch.remove() }
        let blocks = 3000
        do {
            let live = TMScratch("terminate-log-scan-live")
            defer { live.remove() }
            let log = try LogStore.create(
                at: live.path, options: LogCreateOptions(containerSize: 4 << 20, containerCount: 2, blockSize: 1024, codec: .none))
            let record = [UInt8](repeating: 5, count: 900)  // one record per 1 KiB block
            for _ in 0..<blocks { try log.append(record) }
            try await log.flush()
            try FileManager.default.copyItem(atPath: live.path, toPath: scratch.path)  // a crash image
            try log.close()
        }
        let io = ReadCountingIO()
        var config = OnlineResource.Configuration(logDirectory: scratch.path)
        config.io = io
        await Self.terminateAtOpenLog(config, mark: io.mark)
        // Without the hook the open read every block before the worker looked at the flag again.
        #expect(io.readsSinceMark < blocks / 10, "\(io.readsSinceMark) reads after terminate")
        let log = try LogStore.open(at: scratch.path)  // not left locked
        #expect(log.recoveryReport.blocksScanned == blocks)
        try log.close()
    }

    /// A terminate while the log is being created: `create` zero-fills and syncs every container first,
    /// and terminate waited for all of them. Now it stops before the next container.
    @Test func terminateStopsALogBeingCreated() async throws {
        let scratch = TMScratch("terminate-create")
        defer { scratch.remove() }
        let io = WriteCountingIO()
        let containerSize: UInt64 = 4 << 20
        var config = OnlineResource.Configuration(
            logDirectory: scratch.path, createOptions: LogCreateOptions(containerSize: containerSize, containerCount: 8))
        config.io = io
        await Self.terminateAtOpenLog(config, mark: io.mark)
        // Without the check every container was written (32 MiB) before the worker looked at the flag.
        #expect(io.bytesSinceMark < Int(containerSize), "\(io.bytesSinceMark) bytes written after terminate")
        // Online again (on its worker) creates the log.
        config.onlineBudget = .zero
        let again = OnlineResource(config)
        if try again.online() == .pending { _ = await again.waitUntilSettled() }
        #expect(again.looksAlive)
        try again.offline()
    }
}

extension RecoveryCancellationTests {
    /// Records of at most 4 KiB in 8 KiB blocks: a checkpoint of `parts` × ~4 KiB is `parts` part records.
    static let smallRecords: LogCreateOptions = {
        var o = LogCreateOptions(containerSize: 4 << 20, containerCount: 2, blockSize: 8192)
        o.maxRecordSize = 4096
        return o
    }()
    static let parts = 300

    /// Loading a checkpoint in parts checks for cancellation before each part: cancelled from the start,
    /// recovery stops having read a few blocks, not the whole checkpoint (it used to load every part
    /// first and look only once the scan after it began), and a later recovery loads it in full.
    @Test func cancelledRecoveryStopsInACheckpointOfManyParts() async throws {
        let scratch = TMScratch("cancel-parts")
        defer { scratch.remove() }
        let tmID: GUID
        do {
            let (log, tm) = try scratch.createOnline(log: Self.smallRecords)
            tmID = tm.id
            let stream = try #require(tm.stream)
            // In-doubt transactions with long descriptions: ~4 KiB each, so one part per transaction.
            let txs = (0..<Self.parts).map { i in
                LoggedTransaction(
                    id: .random(), outcome: .undetermined, superior: true,
                    description: String(repeating: "d", count: TMLimits.maxDescription - 100) + "\(i)", enlistments: [])
            }
            let cp = TMCheckpoint(tm: tm.id, coveredThrough: stream.lastLSN, clock: 1, rms: [], transactions: txs)
            _ = try TransactionManager.writeCheckpoint(
                TMRecord.checkpoint(cp).encode(clock: 1), tm: tm.id, clock: 1, to: stream, maxRecordSize: log.maxRecordSize, coveredThrough: nil)
            try log.close()
            try? tm.close()
        }
        let io = ReadCountingIO()
        let log = try LogStore.open(at: scratch.path, io: io)
        defer { try? log.close() }
        let tm = try TransactionManager.open(log: log)
        #expect(tm.id == tmID)
        io.mark()
        Self.expectCancelledRecovery(tm)
        // The parts fill ~150 blocks; a load that checks before each part reads at most a couple.
        #expect(io.readsSinceMark < Self.parts / 10, "recovery read \(io.readsSinceMark) blocks before it looked at the cancellation")
        #expect(tm.currentState == .initialized)
        try tm.recover()
        #expect(tm.lastRecovery.inDoubt == Self.parts)
    }
}

/// Counts the reads made after ``mark()``.
private final class ReadCountingIO: ForwardingFileIO, @unchecked Sendable {
    let base: any FileIO = PosixFileIO()
    private let marked = Atomic<Bool>(false)
    private let reads = Atomic<Int>(0)
    func mark() { marked.store(true, ordering: .sequentiallyConsistent) }
    var readsSinceMark: Int { reads.load(ordering: .sequentiallyConsistent) }
    func pread(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws -> Int {
        if marked.load(ordering: .sequentiallyConsistent) { reads.add(1, ordering: .sequentiallyConsistent) }
        return try base.pread(fd, into: buffer, at: offset)
    }
}

/// Counts the bytes written after ``mark()``.
private final class WriteCountingIO: ForwardingFileIO, @unchecked Sendable {
    let base: any FileIO = PosixFileIO()
    private let marked = Atomic<Bool>(false)
    private let bytes = Atomic<Int>(0)
    func mark() { marked.store(true, ordering: .sequentiallyConsistent) }
    var bytesSinceMark: Int { bytes.load(ordering: .sequentiallyConsistent) }
    func pwritev(_ fd: Int32, _ buffers: [UnsafeRawBufferPointer], at offset: UInt64) throws -> Int {
        let n = try base.pwritev(fd, buffers, at: offset)
        if marked.load(ordering: .sequentiallyConsistent) { bytes.add(n, ordering: .sequentiallyConsistent) }
        return n
    }
}
