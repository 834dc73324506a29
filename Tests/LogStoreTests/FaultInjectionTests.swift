// Fault injection through the FileIO seam (T1): EIO, ENOSPC, short and torn writes, at every point of
// the writer (including container switches) and of the metadata operations. For each writer fault:
// the flush throws `failed`, the log stays failed (I5), nothing after the fault is acknowledged, and a
// reopen finds every acknowledged record byte for byte (I1) in a log that is a prefix of what was
// appended (I2, I3).

import Foundation
import Testing
@testable import LogStore
import TxLogTestSupport

private typealias Kit = FaultTestKit
private let EIO = FaultyFileIO.EIO
private let ENOSPC = FaultyFileIO.ENOSPC

/// Records per round (one flush per round): about 29 KB, so a 512 KiB container lasts ~17 rounds.
private let recordsPerRound = 48

/// A fresh closed log with four tiny containers; sweeps copy it instead of creating one each time.
private func makeTemplate(_ tag: String) throws -> String {
    let dir = Kit.temporaryPath(tag)
    try removingOnThrow(dir) { try LogStore.create(at: dir, options: Kit.tinyOptions(containers: 4)).close() }
    return dir
}

/// What one writer-fault iteration saw.
private struct Outcome {
    var faulted: FaultyFileIO.Call
    /// A base-file write (container switch) happened before the fault.
    var switchedBefore: Bool
    /// A container write of the failed flush completed before the fault (its blocks may survive).
    var wroteDataInFailedRound: Bool
    var acked: Int
    var survived: Int
    /// The calls up to and including the faulted one.
    var calls: [FaultyFileIO.Call]
}

/// Checks the failed state after the writer hit a fault: sticky `failed` on every append and flush,
/// nothing more acknowledged, no further writes or syncs, and close releases every file.
private func checkFailedState(_ log: LogStore, _ io: FaultyFileIO, _ ledger: FaultLedger, errno: Int32, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(log.isFailed, sourceLocation: sourceLocation)
    for _ in 0..<2 {
        let e = Kit.logError { _ = try log.append([1, 2, 3]) }
        #expect(e?.code == .failed, "append after the failure: \(String(describing: e))", sourceLocation: sourceLocation)
    }
    if let last = ledger.entries.last {
        let e = Kit.logError { try log.flush(upTo: last.lsn) }
        #expect(e?.code == .failed, "flush after the failure: \(String(describing: e))", sourceLocation: sourceLocation)
        #expect(e?.errno == errno, sourceLocation: sourceLocation)
    }
    if ledger.acked > 0 {
        // Even a target that was durable before the fault: the instance rejects every flush.
        let e = Kit.logError { try log.flush(upTo: ledger.entries[ledger.acked - 1].lsn) }
        #expect(e?.code == .failed, sourceLocation: sourceLocation)
    }
    let e = Kit.logError { try log.flush() }
    #expect(e?.code == .failed, sourceLocation: sourceLocation)
    if ledger.acked < ledger.entries.count {
        #expect(log.durableLSN < ledger.entries[ledger.acked].lsn,
                "durableLSN \(log.durableLSN) covers a record whose flush failed", sourceLocation: sourceLocation)
    }
    #expect(log.isFailed, sourceLocation: sourceLocation)
    let c = Kit.logError { try log.close() }
    #expect(c?.code == .failed, "close of a failed log: \(String(describing: c))", sourceLocation: sourceLocation)
    #expect(io.openFiles.isEmpty, "files left open: \(io.openFiles)", sourceLocation: sourceLocation)
    // fsync is never retried to report success, nothing more is written, and close records no clean shutdown.
    let calls = io.calls
    if let fault = calls.firstIndex(where: { $0.fault != nil }) {
        let later = calls[(fault + 1)...].filter { [.pwritev, .fdatasync, .fsync].contains($0.op) }
        #expect(later.isEmpty, "I/O after the failure: \(later)", sourceLocation: sourceLocation)
    } else {
        Issue.record("no fault fired", sourceLocation: sourceLocation)
    }
}

/// Opens a copy of `template` through a FaultyFileIO, arms one fault, runs flush rounds until a flush
/// fails, checks the failed state, then reopens with plain POSIX I/O and verifies the log.
private func runWriterFault(
    template: String, _ op: FaultyFileIO.Op, nth: Int, _ action: FaultyFileIO.Action, pathContains: String? = nil,
    errno: Int32, maxRounds: Int = 60, sourceLocation: SourceLocation = #_sourceLocation
) throws -> Outcome? {
    let dir = try Kit.copy(template, tag: "fault")
    defer { Kit.remove(dir) }
    let io = FaultyFileIO()
    var ledger = FaultLedger()
    let log = try LogStore.open(at: dir, io: io)
    io.clearLog()
    io.inject(op, nth: nth, action, pathContains: pathContains)
    var failure: LogError?
    var callsAtLastAck = 0
    for _ in 0..<maxRounds {
        callsAtLastAck = io.calls.count
        if let e = ledger.round(log, count: recordsPerRound) {
            failure = e
            break
        }
        // A flush that returns success after the fault fired would acknowledge data the fault may have lost.
        #expect(io.faultsFired == 0, "a flush succeeded after the injected fault (I5)", sourceLocation: sourceLocation)
        if io.faultsFired > 0 { break }
    }
    guard let failure else {
        Issue.record("\(op) #\(nth) never failed a flush in \(maxRounds) rounds", sourceLocation: sourceLocation)
        try log.close()
        return nil
    }
    #expect(io.faultsFired == 1, sourceLocation: sourceLocation)
    #expect(failure.code == .failed, "flush error: \(failure)", sourceLocation: sourceLocation)
    #expect(failure.errno == errno, "flush error: \(failure)", sourceLocation: sourceLocation)
    let calls = io.calls
    let faultIndex = try #require(calls.firstIndex { $0.fault != nil }, sourceLocation: sourceLocation)
    let switched = calls[..<faultIndex].contains { $0.op == .pwritev && $0.path.hasSuffix(Format.baseFileName) }
    let wroteData = calls[callsAtLastAck..<faultIndex].contains { $0.op == .pwritev && $0.path.contains("container-") }
    checkFailedState(log, io, ledger, errno: errno, sourceLocation: sourceLocation)

    let acked = ledger.acked
    let survived = try ledger.reopenVerifyAndContinue(directory: dir, continueAndRecheck: nth % 4 == 0, sourceLocation: sourceLocation)
    return Outcome(
        faulted: calls[faultIndex], switchedBefore: switched, wroteDataInFailedRound: wroteData, acked: acked, survived: survived,
        calls: Array(calls[...faultIndex]))
}

@Suite("FaultInjection: writer faults")
struct FaultInjectionWriterTests {
    @Test("EIO on fdatasync, swept over the first 40 syncs (container syncs, base syncs at switches)")
    func fdatasyncEIOSweep() throws {
        let template = try makeTemplate("tmpl")
        defer { Kit.remove(template) }
        var outcomes: [Outcome] = []
        for n in 1...40 {
            if let o = try runWriterFault(template: template, .fdatasync, nth: n, .fail(errno: EIO), errno: EIO) { outcomes.append(o) }
        }
        // The sweep reached the interesting places, or it proves little.
        #expect(outcomes.count == 40)
        #expect(outcomes.contains { $0.faulted.path.hasSuffix(Format.baseFileName) }, "no fault hit the base-file sync of a container switch")
        #expect(outcomes.contains { $0.faulted.path.contains("container-000001") }, "no fault hit the second container")
        #expect(outcomes.contains { $0.switchedBefore && $0.faulted.path.contains("container-000000") } == false,
                "container 0 synced after the switch away from it")
    }

    @Test("EIO on pwritev, swept over the first 40 writes (data runs and base writes at switches)")
    func pwritevEIOSweep() throws {
        let template = try makeTemplate("tmpl")
        defer { Kit.remove(template) }
        var outcomes: [Outcome] = []
        for n in 1...40 {
            if let o = try runWriterFault(template: template, .pwritev, nth: n, .fail(errno: EIO), errno: EIO) { outcomes.append(o) }
        }
        #expect(outcomes.count == 40)
        #expect(outcomes.contains { $0.faulted.path.hasSuffix(Format.baseFileName) }, "no fault hit a base-file write")
        #expect(outcomes.contains { $0.faulted.path.contains("container-000001") })
        // When the failed flush wrote nothing before the fault, exactly the acknowledged records survive.
        // (At a switch, the old container's last blocks are written and synced before the base write.)
        #expect(outcomes.contains { $0.wroteDataInFailedRound })
        for o in outcomes where !o.wroteDataInFailedRound {
            #expect(o.survived == o.acked, "\(o.faulted): \(o.survived) survived, \(o.acked) acknowledged")
        }
    }

    @Test("ENOSPC on pwritev at assorted points")
    func pwritevENOSPCSweep() throws {
        let template = try makeTemplate("tmpl")
        defer { Kit.remove(template) }
        var outcomes: [Outcome] = []
        for n in stride(from: 1, through: 40, by: 3) {
            if let o = try runWriterFault(template: template, .pwritev, nth: n, .fail(errno: ENOSPC), errno: ENOSPC) { outcomes.append(o) }
        }
        #expect(outcomes.count == 14)
        for o in outcomes where !o.wroteDataInFailedRound { #expect(o.survived == o.acked) }
    }

    @Test("Torn writes (a prefix reaches the file, then EIO) at assorted points and prefix lengths")
    func tornWriteSweep() throws {
        let template = try makeTemplate("tmpl")
        defer { Kit.remove(template) }
        let keeps = [1, 63, 64, 100, 511, 512, 2000, 4095, 4096, 6000]
        var outcomes: [Outcome] = []
        for n in 1...30 {
            let keep = keeps[n % keeps.count]
            if let o = try runWriterFault(template: template, .pwritev, nth: n, .tornWrite(keepBytes: keep), errno: EIO) { outcomes.append(o) }
        }
        #expect(outcomes.count == 30)
        #expect(outcomes.contains { $0.faulted.path.hasSuffix(Format.baseFileName) }, "no torn base-file write")
    }

    @Test("Torn container write that keeps whole blocks: unacknowledged complete blocks may survive, nothing else")
    func tornWriteKeepingWholeBlocks() throws {
        let template = try makeTemplate("tmpl")
        defer { Kit.remove(template) }
        // Rounds write ~8 blocks per pwritev; keeping 3 blocks and a bit leaves whole blocks behind a torn one.
        let o = try #require(try runWriterFault(
            template: template, .pwritev, nth: 3, .tornWrite(keepBytes: 3 * 4096 + 700), pathContains: "container-", errno: EIO))
        #expect(o.survived >= o.acked)
    }

    @Test("EIO on the base-file write at a container switch", arguments: [
        (FaultyFileIO.Op.pwritev, FaultyFileIO.Action.fail(errno: EIO)),
        (.pwritev, .tornWrite(keepBytes: 200)),
        (.pwritev, .fail(errno: ENOSPC)),
        (.fdatasync, .fail(errno: EIO)),
    ])
    func baseWriteFailsAtSwitch(op: FaultyFileIO.Op, action: FaultyFileIO.Action) throws {
        let template = try makeTemplate("tmpl")
        defer { Kit.remove(template) }
        let errno: Int32 = action == .fail(errno: ENOSPC) ? ENOSPC : EIO
        let o = try #require(try runWriterFault(template: template, op, nth: 1, action, pathContains: Format.baseFileName, errno: errno))
        // The first base write after open is the switch to the second container; all of container 0 was
        // acknowledged-or-not before it, and nothing of the new container was written.
        #expect(o.acked > 0)
        #expect(o.faulted.path.hasSuffix(Format.baseFileName))
        #expect(!o.calls.contains { $0.op == .pwritev && $0.path.contains("container-000001") },
                "a block was written to the new container before the base file recorded the switch")
    }

    @Test("Sticky EIO on fdatasync: the failed log stays failed, and reopening through the same faulty device fails too")
    func stickyFdatasync() throws {
        let dir = Kit.temporaryPath("sticky")
        defer { Kit.remove(dir) }
        let io = FaultyFileIO()
        var ledger = FaultLedger()
        let log = try LogStore.create(at: dir, options: Kit.tinyOptions(), io: io)
        #expect(ledger.round(log, count: 30) == nil)
        io.inject(.fdatasync, nth: 1, sticky: true, .fail(errno: EIO), pathContains: "container-")
        let e = ledger.round(log, count: 30)
        #expect(e?.code == .failed)
        #expect(e?.errno == EIO)
        checkFailedState(log, io, ledger, errno: EIO)
        // Opening syncs the recovered tail before it trusts it; with the device still failing, it must not open.
        let reopen = Kit.logError { _ = try LogStore.open(at: dir, io: io) }
        #expect(reopen?.code == .io)
        #expect(reopen?.errno == EIO)
        #expect(io.openFiles.isEmpty, "a failed open left files open: \(io.openFiles)")
        try ledger.reopenVerifyAndContinue(directory: dir)
    }

    @Test("One fault, then the device recovers: the log still never acknowledges again (no fsync retry)")
    func transientFaultNeverAcknowledges() throws {
        let dir = Kit.temporaryPath("transient")
        defer { Kit.remove(dir) }
        let io = FaultyFileIO()
        var ledger = FaultLedger()
        let log = try LogStore.create(at: dir, options: Kit.tinyOptions(), io: io)
        #expect(ledger.round(log, count: 10) == nil)
        io.inject(.fdatasync, nth: 1, .fail(errno: EIO))
        #expect(ledger.round(log, count: 10)?.code == .failed)
        let syncsAtFailure = io.calls.filter { $0.op == .fdatasync }.count
        for _ in 0..<3 {
            #expect(ledger.round(log, count: 1)?.code == .failed)
        }
        #expect(io.calls.filter { $0.op == .fdatasync }.count == syncsAtFailure)
        checkFailedState(log, io, ledger, errno: EIO)
        try ledger.reopenVerifyAndContinue(directory: dir)
    }

    @Test("Async flushers: every concurrent waiter gets `failed`")
    func asyncFlushersAllFail() async throws {
        let dir = Kit.temporaryPath("async")
        defer { Kit.remove(dir) }
        let (io, log, first) = try await Kit.logWhoseNextSyncFails(at: dir)
        let results = await withTaskGroup(of: LogError?.self) { group in
            for t in 0..<8 {
                group.addTask {
                    do {
                        var last = LSN.null
                        for i in 0..<20 { last = try log.append(Kit.payload(1000 * (t + 1) + i)) }
                        try await log.flush(upTo: last)
                        return nil
                    } catch let e as LogError {
                        return e
                    } catch {
                        return LogError(.io, "unexpected \(error)")
                    }
                }
            }
            var all: [LogError?] = []
            for await r in group { all.append(r) }
            return all
        }
        #expect(io.faultsFired == 1)
        for r in results {
            #expect(r?.code == .failed, "a concurrent flusher got \(String(describing: r))")
        }
        #expect(log.isFailed)
        await #expect(throws: LogError.self) { try await log.flush() }
        #expect(log.durableLSN == first)
        #expect(throws: LogError.self) { try log.close() }
        let again = try LogStore.open(at: dir)
        #expect(try again.read(first).data == Kit.payload(0))
        try again.close()
    }

    @Test("A background write (no flush pending) fails: appends waiting on back-pressure wake up with `failed`",
          .hangGuard)
    func backgroundWriteFailureWakesAppenders() throws {
        let dir = Kit.temporaryPath("backpressure")
        defer { Kit.remove(dir) }
        let io = FaultyFileIO()
        var options = LogOpenOptions()
        options.groupCommit.maxDirtyBytes = 32 * 1024
        options.groupCommit.maxBatchBytes = 16 * 1024
        var ledger = FaultLedger()
        let log = try LogStore.create(at: dir, options: Kit.tinyOptions(), openOptions: options, io: io)
        #expect(ledger.round(log, count: 20) == nil)
        io.inject(.pwritev, nth: 3, sticky: true, .fail(errno: EIO), pathContains: "container-")
        var failure: LogError?
        for i in 0..<5000 {
            do {
                let data = Kit.payload(ledger.next)
                let lsn = try log.append(data)
                ledger.entries.append(FaultLedger.Entry(lsn: lsn, data: data))
                ledger.next += 1
            } catch let e as LogError {
                failure = e
                #expect(i > 0)
                break
            }
        }
        #expect(failure?.code == .failed)
        #expect(failure?.errno == EIO)
        checkFailedState(log, io, ledger, errno: EIO)
        try ledger.reopenVerifyAndContinue(directory: dir)
    }

    @Test("Short writes on every pwritev (containers, base file, creation) are transparent")
    func shortWritesAreTransparent() throws {
        let dir = Kit.temporaryPath("short")
        defer { Kit.remove(dir) }
        let io = FaultyFileIO()
        io.inject(.pwritev, nth: 1, sticky: true, .shortWrite(maxBytes: 1537), pathContains: "container-")
        io.inject(.pwritev, nth: 1, sticky: true, .shortWrite(maxBytes: 100), pathContains: Format.baseFileName)
        var ledger = FaultLedger()
        let log = try LogStore.create(at: dir, options: Kit.tinyOptions(), io: io)
        for _ in 0..<45 {
            let e = ledger.round(log, count: recordsPerRound)
            #expect(e == nil, "short writes made a flush fail: \(String(describing: e))")
            if e != nil { break }
        }
        #expect(!log.isFailed)
        #expect(log.info().containers.filter { $0.state == .active }.count >= 3, "the workload did not cross two container switches")
        try log.close()
        // Short writes really happened, including in the middle of blocks and of base slots.
        let short = io.calls.filter { if case .shortWrite = $0.fault { return ($0.bytes ?? 0) > 100 } else { return false } }
        #expect(short.count > 100)
        #expect(io.openFiles.isEmpty)
        let survived = try ledger.verify(directory: dir)
        #expect(survived == ledger.entries.count)
        try ledger.reopenVerifyAndContinue(directory: dir)
    }
}

@Suite("FaultInjection: metadata and reads")
struct FaultInjectionMetadataTests {
    struct CreateFault: Sendable, CustomTestStringConvertible {
        var op: FaultyFileIO.Op
        var nth: Int
        var errno: Int32
        var pathContains: String?
        /// After the failure, the base file is in place (the failure came after the rename).
        var baseExists: Bool
        var testDescription: String { "\(op.rawValue) #\(nth) \(pathContains ?? "") errno \(errno)" }
    }

    @Test("A fault during create: a typed error, no leaked files, and the directory is usable afterwards", arguments: [
        // Directory syncs in create: the parent (the new directory's entry), the log directory after the
        // containers, the log directory after the base file's rename.
        CreateFault(op: .fsyncDirectory, nth: 1, errno: EIO, pathContains: nil, baseExists: false),
        CreateFault(op: .fsyncDirectory, nth: 2, errno: EIO, pathContains: nil, baseExists: false),
        CreateFault(op: .fsyncDirectory, nth: 3, errno: EIO, pathContains: nil, baseExists: true),
        CreateFault(op: .pwritev, nth: 1, errno: ENOSPC, pathContains: "container-000001", baseExists: false),
        CreateFault(op: .fsync, nth: 1, errno: EIO, pathContains: "container-", baseExists: false),
        CreateFault(op: .fsync, nth: 1, errno: EIO, pathContains: "txlog.base.tmp", baseExists: false),
        CreateFault(op: .pwritev, nth: 1, errno: ENOSPC, pathContains: "txlog.base.tmp", baseExists: false),
        CreateFault(op: .rename, nth: 1, errno: EIO, pathContains: nil, baseExists: false),
        CreateFault(op: .open, nth: 1, errno: EIO, pathContains: "container-000001", baseExists: false),
    ])
    func faultDuringCreate(_ f: CreateFault) throws {
        let dir = Kit.temporaryPath("create")
        defer { Kit.remove(dir) }
        let io = FaultyFileIO()
        io.inject(f.op, nth: f.nth, .fail(errno: f.errno), pathContains: f.pathContains)
        let e = Kit.logError { _ = try LogStore.create(at: dir, options: Kit.tinyOptions(containers: 2), io: io) }
        #expect(e?.code == .io)
        #expect(e?.errno == f.errno)
        #expect(io.faultsFired == 1)
        #expect(io.openFiles.isEmpty, "files left open: \(io.openFiles)")
        #expect(FileManager.default.fileExists(atPath: dir + "/" + Format.baseFileName) == f.baseExists)
        if f.baseExists {
            // The rename reached the directory; only its fsync failed. The log exists and is empty.
            let log = try LogStore.open(at: dir)
            #expect(log.lastLSN == .null)
            try log.close()
            #expect(Kit.logError { _ = try LogStore.create(at: dir, options: Kit.tinyOptions(containers: 2)) }?.code == .invalidArgument)
        } else {
            #expect(Kit.logError { _ = try LogStore.open(at: dir) }?.code == .notFound)
            // Leftovers of the failed create do not stop a second attempt.
            var ledger = FaultLedger()
            let log = try LogStore.create(at: dir, options: Kit.tinyOptions(containers: 2))
            #expect(ledger.round(log, count: 10) == nil)
            try log.close()
            try ledger.verify(directory: dir)
        }
    }

    @Test("create orders its syncs: containers synced, directory synced, base file synced, renamed, directory synced")
    func createOrdering() throws {
        let dir = Kit.temporaryPath("order")
        defer { Kit.remove(dir) }
        let io = FaultyFileIO()
        let log = try LogStore.create(at: dir, options: Kit.tinyOptions(containers: 2), io: io)
        let calls = io.calls
        // The new directory's entry is synced in its parent before anything is written into it.
        let parentSync = try #require(calls.firstIndex(.fsyncDirectory))
        let firstWrite = try #require(calls.firstIndex(.pwritev))
        #expect(parentSync < firstWrite)
        let dirSync1 = try #require(calls.firstIndex(.fsyncDirectory, pathContains: dir))
        for c in ["container-000000", "container-000001"] {
            let lastWrite = try #require(calls.lastIndex(.pwritev, pathContains: c))
            let sync = try #require(calls.firstIndex(.fsync, pathContains: c))
            #expect(lastWrite < sync && sync < dirSync1, "\(c) not written, synced, then the directory synced")
        }
        let tmpSync = try #require(calls.firstIndex(.fsync, pathContains: "txlog.base.tmp"))
        let rename = try #require(calls.firstIndex(.rename))
        let dirSync2 = try #require(calls.firstIndex(.fsyncDirectory, from: rename))
        let openBase = try #require(calls.firstIndex { $0.op == .open && $0.path.hasSuffix("/" + Format.baseFileName) })
        #expect(dirSync1 < tmpSync && tmpSync < rename && rename < dirSync2 && dirSync2 < openBase)
        try log.close()
    }

    @Test("addContainer orders its syncs: file written and synced, directory synced, then the base file")
    func addContainerOrdering() throws {
        let dir = Kit.temporaryPath("order")
        defer { Kit.remove(dir) }
        let io = FaultyFileIO()
        let log = try LogStore.create(at: dir, options: Kit.tinyOptions(containers: 2), io: io)
        io.clearLog()
        let id = try log.addContainer()
        #expect(id == 2)
        let calls = io.calls
        let name = "container-000002"
        let create = try #require(calls.firstIndex(.open, pathContains: name))
        let lastWrite = try #require(calls.lastIndex(.pwritev, pathContains: name))
        let sync = try #require(calls.firstIndex(.fsync, pathContains: name))
        let dirSync = try #require(calls.firstIndex(.fsyncDirectory))
        let baseWrite = try #require(calls.firstIndex(.pwritev, pathContains: Format.baseFileName))
        let baseSync = try #require(calls.firstIndex(.fdatasync, pathContains: Format.baseFileName))
        #expect(create < lastWrite && lastWrite < sync && sync < dirSync && dirSync < baseWrite && baseWrite < baseSync)
        try log.close()
    }

    @Test("At a container switch: old container synced, then the base file written and synced, then the new container written")
    func containerSwitchOrdering() throws {
        let dir = Kit.temporaryPath("order")
        defer { Kit.remove(dir) }
        let io = FaultyFileIO()
        var ledger = FaultLedger()
        let log = try LogStore.create(at: dir, options: Kit.tinyOptions(containers: 2), io: io)
        io.clearLog()
        var rounds = 0
        while log.info().containers.allSatisfy({ $0.physicalID == 0 || $0.state == .inactive }), rounds < 30 {
            try #require(ledger.round(log, count: recordsPerRound) == nil)
            rounds += 1
        }
        let calls = io.calls
        let firstNew = try #require(calls.firstIndex(.pwritev, pathContains: "container-000001"), "no switch happened")
        let before = Array(calls[..<firstNew])
        let lastOld = try #require(before.lastIndex(.pwritev, pathContains: "container-000000"))
        let oldSync = try #require(before.lastIndex(.fdatasync, pathContains: "container-000000"))
        let baseWrite = try #require(before.lastIndex(.pwritev, pathContains: Format.baseFileName))
        let baseSync = try #require(before.lastIndex(.fdatasync, pathContains: Format.baseFileName))
        #expect(lastOld < oldSync && oldSync < baseWrite && baseWrite < baseSync && baseSync < firstNew)
        try log.close()
        try ledger.verify(directory: dir)
    }

    @Test("EIO on the directory fsync of addContainer: typed error, log keeps working, base does not name it")
    func directorySyncFailsInAddContainer() throws {
        let dir = Kit.temporaryPath("adddir")
        defer { Kit.remove(dir) }
        let io = FaultyFileIO()
        var ledger = FaultLedger()
        let log = try LogStore.create(at: dir, options: Kit.tinyOptions(containers: 2), io: io)
        #expect(ledger.round(log, count: 20) == nil)
        io.inject(.fsyncDirectory, nth: 1, .fail(errno: EIO))
        let e = Kit.logError { _ = try log.addContainer() }
        #expect(e?.code == .io)
        #expect(e?.errno == EIO)
        #expect(!log.isFailed)
        #expect(log.info().containers.map(\.physicalID) == [0, 1])
        #expect(ledger.round(log, count: 20) == nil, "the log stopped working after a failed addContainer")
        // The next attempt reuses the id and replaces the orphan file.
        #expect(try log.addContainer() == 2)
        #expect(log.info().containers.map(\.physicalID) == [0, 1, 2])
        try log.close()
        #expect(io.openFiles.isEmpty)
        let again = try LogStore.open(at: dir)
        #expect(again.info().containers.map(\.physicalID) == [0, 1, 2])
        try ledger.verify(again)
        try again.close()
    }

    @Test("ENOSPC while adding a container: typed error, file removed, base unchanged, log keeps working")
    func enospcWhileAddingContainer() throws {
        let dir = Kit.temporaryPath("addfull")
        defer { Kit.remove(dir) }
        let io = FaultyFileIO()
        var ledger = FaultLedger()
        let log = try LogStore.create(at: dir, options: Kit.tinyOptions(containers: 2), io: io)
        #expect(ledger.round(log, count: 20) == nil)
        // Container files are zero-filled in 1 MiB writes; a 512 KiB one takes one write, so fail the first.
        io.inject(.pwritev, nth: 1, .fail(errno: ENOSPC), pathContains: "container-000002")
        let e = Kit.logError { _ = try log.addContainer() }
        #expect(e?.code == .io)
        #expect(e?.errno == ENOSPC)
        #expect(!log.isFailed)
        #expect(!FileManager.default.fileExists(atPath: dir + "/container-000002"), "a half-created container was left behind")
        #expect(log.info().containers.map(\.physicalID) == [0, 1])
        #expect(ledger.round(log, count: 20) == nil)
        try log.close()
        #expect(io.openFiles.isEmpty)
        let again = try LogStore.open(at: dir)
        #expect(again.info().containers.map(\.physicalID) == [0, 1], "the base file names a container that failed to be created")
        try ledger.verify(again)
        #expect(try again.addContainer() == 2)
        try again.close()
    }

    @Test("EIO on the base-file write of addContainer: the container is not named, the log fails (fail-stop)")
    func baseWriteFailsInAddContainer() throws {
        let dir = Kit.temporaryPath("addbase")
        defer { Kit.remove(dir) }
        let io = FaultyFileIO()
        var ledger = FaultLedger()
        let log = try LogStore.create(at: dir, options: Kit.tinyOptions(containers: 2), io: io)
        #expect(ledger.round(log, count: 20) == nil)
        io.inject(.pwritev, nth: 1, .fail(errno: EIO), pathContains: Format.baseFileName)
        let e = Kit.logError { _ = try log.addContainer() }
        #expect(e?.code == .failed)
        #expect(e?.errno == EIO)
        #expect(log.isFailed)
        #expect(log.info().containers.count == 2)
        #expect(ledger.round(log, count: 20)?.code == .failed)
        #expect(Kit.logError { try log.close() }?.code == .failed)
        #expect(io.openFiles.isEmpty)
        let again = try LogStore.open(at: dir)
        #expect(again.info().containers.count == 2)
        try ledger.verify(again)
        try again.close()
    }

    @Test("EIO on the base-file update of advanceBase: the log fails (sticky), the base on disk is unchanged", arguments: [
        FaultyFileIO.Op.pwritev, .fdatasync,
    ])
    func baseWriteFailsInAdvanceBase(op: FaultyFileIO.Op) throws {
        let dir = Kit.temporaryPath("advance")
        defer { Kit.remove(dir) }
        let io = FaultyFileIO()
        var ledger = FaultLedger()
        let log = try LogStore.create(at: dir, options: Kit.tinyOptions(containers: 3), io: io)
        // Fill past the first container so advancing the base would recycle it.
        while log.info().containers.filter({ $0.state == .active }).count < 2 {
            try #require(ledger.round(log, count: recordsPerRound) == nil)
        }
        #expect(ledger.round(log, count: recordsPerRound) == nil)
        let base0 = log.baseLSN
        let target = ledger.entries[ledger.entries.count - 10].lsn
        #expect(target.container == 2)
        io.inject(op, nth: 1, .fail(errno: EIO), pathContains: Format.baseFileName)
        // A base-file write error is fail-stop, like a container write error.
        let e = Kit.logError { try log.advanceBase(to: target) }
        #expect(e?.code == .failed)
        #expect(e?.errno == EIO)
        #expect(log.baseLSN == base0)
        #expect(log.info().containers.filter { $0.state == .active }.count == 2, "a container was recycled though the base write failed")
        checkFailedState(log, io, ledger, errno: EIO)
        let again = try LogStore.open(at: dir)
        if op == .pwritev {
            // Nothing reached the slot: the old version.
            #expect(again.baseLSN == base0)
            #expect(again.info().containers.filter { $0.state == .active }.count == 2)
            try ledger.verify(again)
        } else {
            // The slot was written and only its sync failed: either version may be what the disk holds
            // (here the page cache still has the new one), but never a blend.
            #expect(again.baseLSN == base0 || again.baseLSN == target)
            var visible = ledger
            if again.baseLSN == target {
                #expect(again.info().containers.filter { $0.state == .active }.count == 1)
                let drop = try #require(ledger.entries.firstIndex { $0.lsn == target })
                visible.entries.removeFirst(drop)
                visible.acked -= drop
            }
            try visible.verify(again)
        }
        // Retrying works and recycles the first container.
        try again.advanceBase(to: target)
        #expect(again.baseLSN == target)
        #expect(again.info().freeContainers == 2)
        try again.close()
        let third = try LogStore.open(at: dir)
        #expect(third.baseLSN == target)
        #expect(Kit.logError { _ = try third.read(ledger.entries[0].lsn) }?.code == .notFound)
        #expect(try third.read(ledger.entries.last!.lsn).data == ledger.entries.last!.data)
        try third.close()
    }

    @Test("addContainer whose base-file sync fails must not delete a container the base file may already name",
          .bug(id: "faults-3", "LogCore.addContainers unlinks the new files after baseFile.write failed, though the slot may hold them"))
    func addContainerBaseSyncFailureKeepsNamedFiles() throws {
        let dir = Kit.temporaryPath("addsync")
        defer { Kit.remove(dir) }
        let io = FaultyFileIO()
        var ledger = FaultLedger()
        let log = try LogStore.create(at: dir, options: Kit.tinyOptions(containers: 2), io: io)
        #expect(ledger.round(log, count: 20) == nil)
        // The slot write reaches the file (page cache); only its fdatasync reports EIO.
        io.inject(.fdatasync, nth: 1, .fail(errno: EIO), pathContains: Format.baseFileName)
        #expect(Kit.logError { _ = try log.addContainer() }?.code == .failed)
        // A crash now (or a base write that can no longer happen) leaves this base file on disk.
        io.inject(.pwritev, nth: 1, sticky: true, .fail(errno: EIO), pathContains: Format.baseFileName)
        _ = Kit.logError { try log.close() }
        #expect(io.openFiles.isEmpty)
        let bytes = try Kit.fileBytes(dir + "/" + Format.baseFileName)
        let slots = (0..<2).map { k in
            try? Array(bytes[(k * Format.baseSlotSize)..<((k + 1) * Format.baseSlotSize)]).withUnsafeBytes { try BaseRecord.decode($0) }
        }
        let newest = try #require(slots.compactMap { $0 }.max { $0.generation < $1.generation })
        let named = newest.containers.map { dir + "/" + ContainerFiles.name(physicalID: $0.physicalID) }
        for path in named { #expect(FileManager.default.fileExists(atPath: path), "\(path) is named but missing") }
        let again = try LogStore.open(at: dir)
        try ledger.verify(again)
        try again.close()
    }

    struct MetaFault: Sendable, CustomTestStringConvertible {
        var operation: String
        var op: FaultyFileIO.Op
        var nth: Int
        var testDescription: String { "\(operation): \(op.rawValue) #\(nth)" }
    }

    static let metaFaults: [MetaFault] = [
        MetaFault(operation: "addContainer", op: .open, nth: 1), MetaFault(operation: "addContainer", op: .pwritev, nth: 1),
        MetaFault(operation: "addContainer", op: .pwritev, nth: 2), MetaFault(operation: "addContainer", op: .fsync, nth: 1),
        MetaFault(operation: "addContainer", op: .fsyncDirectory, nth: 1),
        // (addContainer with fdatasync #1, the base-file sync, is the known bug in addContainerBaseSyncFailureKeepsNamedFiles.)
        MetaFault(operation: "removeContainer", op: .pwritev, nth: 1), MetaFault(operation: "removeContainer", op: .fdatasync, nth: 1),
        MetaFault(operation: "removeContainer", op: .unlink, nth: 1), MetaFault(operation: "removeContainer", op: .fsyncDirectory, nth: 1),
        MetaFault(operation: "advanceBase", op: .pwritev, nth: 1), MetaFault(operation: "advanceBase", op: .fdatasync, nth: 1),
    ]

    @Test("One fault in a metadata operation, then a crash: the log opens, names only files that exist, keeps every acknowledged record",
          arguments: metaFaults)
    func metadataFaultThenCrash(_ f: MetaFault) throws {
        let dir = Kit.temporaryPath("meta")
        defer { Kit.remove(dir) }
        let io = FaultyFileIO()
        var ledger = FaultLedger()
        let log = try LogStore.create(at: dir, options: Kit.tinyOptions(containers: 3), io: io)
        while log.info().containers.filter({ $0.state == .active }).count < 2 {
            try #require(ledger.round(log, count: recordsPerRound) == nil)
        }
        let target = ledger.entries[ledger.entries.count - 5].lsn
        io.inject(f.op, nth: f.nth, .fail(errno: EIO))
        let e = Kit.logError {
            switch f.operation {
            case "addContainer": _ = try log.addContainer()
            case "removeContainer": try log.removeContainer(2)
            default: try log.advanceBase(to: target)
            }
        }
        #expect(io.faultsFired == 1)
        if f.operation == "removeContainer", f.op == .unlink {
            // The base file no longer names it: the removal stands, the file is an orphan (a stray).
            #expect(e == nil, "\(String(describing: e))")
            #expect(!log.info().containers.contains { $0.physicalID == 2 })
        } else {
            #expect(e?.errno == EIO, "\(String(describing: e))")
        }
        // Crash: no further base-file write reaches the file (close cannot record anything).
        io.clearFaults()
        io.inject(.pwritev, nth: 1, sticky: true, .fail(errno: EIO), pathContains: Format.baseFileName)
        _ = Kit.logError { try log.close() }
        #expect(io.openFiles.isEmpty)

        let again = try LogStore.open(at: dir)
        for c in again.info().containers { #expect(FileManager.default.fileExists(atPath: c.path)) }
        var visible = ledger
        if again.baseLSN == target {
            let drop = try #require(ledger.entries.firstIndex { $0.lsn == target })
            visible.entries.removeFirst(drop)
            visible.acked -= drop
        }
        try visible.verify(again)
        #expect(visible.round(again, count: 10) == nil)
        try again.close()
    }

    @Test("A failed base write in removeContainer keeps the container, in memory and on disk, and fails the log")
    func baseWriteFailsInRemoveContainer() throws {
        let dir = Kit.temporaryPath("removebase")
        defer { Kit.remove(dir) }
        let io = FaultyFileIO()
        var ledger = FaultLedger()
        let log = try LogStore.create(at: dir, options: Kit.tinyOptions(containers: 3), io: io)
        #expect(ledger.round(log, count: 20) == nil)
        io.inject(.pwritev, nth: 1, .fail(errno: EIO), pathContains: Format.baseFileName)
        let e = Kit.logError { try log.removeContainer(2) }
        #expect(e?.code == .failed)
        #expect(e?.errno == EIO)
        #expect(log.isFailed)
        #expect(log.info().containers.map(\.physicalID) == [0, 1, 2])
        #expect(FileManager.default.fileExists(atPath: dir + "/container-000002"))
        #expect(ledger.round(log, count: 20)?.code == .failed)
        #expect(Kit.logError { try log.close() }?.code == .failed)
        #expect(io.openFiles.isEmpty)
        let again = try LogStore.open(at: dir)
        #expect(again.info().containers.map(\.physicalID) == [0, 1, 2])
        try ledger.verify(again)
        try again.removeContainer(2)
        #expect(again.info().containers.map(\.physicalID) == [0, 1])
        try again.close()
    }

    @Test("EIO on pread: reads fail with a typed error, the log is not failed, later reads work")
    func preadEIO() throws {
        let dir = Kit.temporaryPath("pread")
        defer { Kit.remove(dir) }
        var ledger = FaultLedger()
        let first = try LogStore.create(at: dir, options: Kit.tinyOptions(containers: 2))
        #expect(ledger.round(first, count: 50) == nil)
        try first.close()
        let io = FaultyFileIO()
        let log = try LogStore.open(at: dir, io: io)
        io.inject(.pread, nth: 1, .fail(errno: EIO), pathContains: "container-")
        let e = Kit.logError { _ = try log.read(ledger.entries[0].lsn) }
        #expect(e?.code == .io)
        #expect(e?.errno == EIO)
        #expect(!log.isFailed)
        #expect(try log.read(ledger.entries[0].lsn).data == ledger.entries[0].data)
        #expect(ledger.round(log, count: 5) == nil)
        try log.close()
        try ledger.verify(directory: dir)
    }

    @Test("A fault while opening (container open, recovery read, tail sync, base write): typed error, no leaked files, nothing lost",
          arguments: [
              (FaultyFileIO.Op.open, "container-000001"), (.pread, "container-"), (.fdatasync, "container-"),
              (.pwritev, Format.baseFileName), (.fdatasync, Format.baseFileName), (.tryLock, Format.baseFileName),
          ])
    func faultDuringOpen(op: FaultyFileIO.Op, path: String) throws {
        let dir = Kit.temporaryPath("open")
        defer { Kit.remove(dir) }
        var ledger = FaultLedger()
        let first = try LogStore.create(at: dir, options: Kit.tinyOptions(containers: 2))
        #expect(ledger.round(first, count: 50) == nil)
        try first.close()
        let io = FaultyFileIO()
        io.inject(op, nth: 1, .fail(errno: EIO), pathContains: path)
        let e = Kit.logError { _ = try LogStore.open(at: dir, io: io) }
        #expect(io.faultsFired == 1)
        #expect(e?.code == .io)
        #expect(e?.errno == EIO)
        #expect(io.openFiles.isEmpty, "a failed open left files open: \(io.openFiles)")
        try ledger.reopenVerifyAndContinue(directory: dir)
    }
}
