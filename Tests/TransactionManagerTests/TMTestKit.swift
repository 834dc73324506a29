// Shared test support: scratch logs in temporary directories, a scriptable resource manager that
// records every notification, reading back the TM stream, and error assertions.

import Foundation
import LogStore
import Testing
@_exported import TxLogTestSupport
@testable import TransactionManager

// MARK: Scratch logs

/// A temporary log directory. Call `remove()` in a `defer` (that also keeps the value alive).
struct TMScratch {
    /// Tiny containers: recovery and creation stay fast.
    static let options = LogCreateOptions(containerSize: 1 << 20, containerCount: 2, blockSize: 8192)

    let path: String

    init(_ tag: String) {
        path = NSTemporaryDirectory() + "/txlog-tm-\(tag)-\(UUID().uuidString)"
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }

    /// Creates the log and a TM on it, and recovers the TM (it is online).
    func createOnline(options tmOptions: TransactionManagerOptions = .init(), log logOptions: LogCreateOptions = Self.options) throws
        -> (LogStore, TransactionManager)
    {
        let log = try LogStore.create(at: path, options: logOptions)
        let tm = try TransactionManager.create(log: log, options: tmOptions)
        try tm.recover()
        return (log, tm)
    }

    /// Opens the log again (after `log.close()`, with no `tm.close()`: the TM "crashed") and recovers
    /// its TM. No resource manager is opened.
    func reopenOnline() throws -> (LogStore, TransactionManager) {
        let log = try LogStore.open(at: path)
        let tm = try TransactionManager.open(log: log)
        try tm.recover()
        return (log, tm)
    }
}

/// RMs "a" and "b" (recovered) and a transaction both are enlisted in.
func twoRMs(_ tm: TransactionManager, volatile: Bool = false, timeout: Duration? = nil) throws -> (ScriptedRM, ScriptedRM, Transaction) {
    let a = try ScriptedRM.online(tm, "a", volatile: volatile)
    let b = try ScriptedRM.online(tm, "b", volatile: volatile)
    let tx = try tm.createTransaction(timeout: timeout)
    _ = try a.enlist(tx)
    _ = try b.enlist(tx)
    return (a, b, tx)
}

/// A scripted RM "a" enlisted in a new transaction that a superior has prepared.
func preparedUnderSuperior(_ tm: TransactionManager) async throws -> (rm: ScriptedRM, tx: Transaction, superior: SuperiorEnlistment) {
    let a = try ScriptedRM.online(tm, "a")
    let tx = try tm.createTransaction(description: "prepared under a superior")
    _ = try a.enlist(tx)
    let superior = try tx.enlistSuperior()
    #expect(try await superior.prepare() == .prepared)
    return (a, tx, superior)
}

/// fdatasync/fsync calls made by the log so far.
func syncCount(_ log: LogStore) -> UInt64 { log.info().statistics.syncs }

/// The TM's data records (not its restart areas), decoded, in log order.
func tmRecords(_ tm: TransactionManager) throws -> [TMRecord] { try tmEntries(tm).map(\.record) }

/// The TM stream's data records with the virtual clock of each header.
func tmEntries(_ tm: TransactionManager) throws -> [(record: TMRecord, clock: UInt64)] {
    try dataRecords(try #require(tm.stream)).map { try TMRecord.decode($0.data) }
}

/// The LSNs of the TM stream's data records.
func tmDataLSNs(_ tm: TransactionManager) throws -> [LSN] { try dataRecords(try #require(tm.stream)).map(\.lsn) }

/// A stream's data records (restart areas left out), from its base.
func dataRecords(_ stream: LogStream) throws -> [LogRecord] {
    var cursor = try stream.records()
    var out: [LogRecord] = []
    while let r = try cursor.next() {
        if r.type == .data { out.append(r) }
    }
    return out
}

/// Just the kinds of ``tmRecords(_:)``.
func tmRecordKinds(_ tm: TransactionManager) throws -> [TMRecord.Kind] { try tmRecords(tm).map(\.kind) }

/// The TM's latest checkpoint, decoded from its restart area (reassembled when written in parts).
func tmCheckpoint(_ tm: TransactionManager) throws -> TMCheckpoint {
    let stream = try #require(tm.stream)
    let restart = try #require(try stream.readRestartArea())
    return try TransactionManager.loadCheckpoint(restart, read: stream.read)
}

// MARK: Resource managers

/// A notification handler that gives the normal answer to every notification at once and keeps
/// nothing: pre-prepare, prepare, commit (and single-phase), rollback, recover.
@Sendable func answerAtOnce(_ n: TransactionNotification) {
    guard let e = n.enlistment else { return }
    switch n.kind {
    case .prePrepare: try? e.prePrepareComplete()
    case .prepare: try? e.prepareComplete()
    case .commit, .singlePhaseCommit: try? e.commitComplete()
    case .rollback: try? e.rollbackComplete()
    case .recover: try? e.recover()
    default: break
    }
}

// MARK: Assertions

