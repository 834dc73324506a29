// Support for the crash matrix and the tool tests: finding and running the built `txlog` binary, and
// recovering a log in process with resource managers that record every notification they get.

import Foundation
import LogStore
import Testing
@testable import TransactionManager

#if canImport(Glibc)
import Glibc
#endif

/// The fixed identities `txlog tm crash-child` uses (tools/txlog/TMCrashChild.swift, `CrashChildIDs`).
enum CrashIDs {
    static let tm = GUID("c0000000-0000-4000-8000-000000000001")!
    static let rm1 = GUID("c0000000-0000-4000-8000-0000000000a1")!
    static let rm2 = GUID("c0000000-0000-4000-8000-0000000000a2")!
    static let transaction = GUID("c0000000-0000-4000-8000-0000000000f1")!
    static let rms = [rm1, rm2]
}

/// The `txlog` executable and how to run it.
enum TxlogBinary {
    /// $TXLOG_BIN, or `txlog` beside the test bundle (`swift build --build-tests` builds both into the same
    /// directory). This target does not link txlog: it only runs the built executable.
    static func path() throws -> String { try TxlogProcess.binary() }

    struct Run: Sendable {
        /// The exit status, or the signal number when `signaled`.
        var status: Int32
        var signaled: Bool
        var out: String
        var err: String
        var object: [String: Any] { ((try? JSONSerialization.jsonObject(with: Data(out.utf8))) as? [String: Any]) ?? [:] }
        var array: [[String: Any]] { ((try? JSONSerialization.jsonObject(with: Data(out.utf8))) as? [[String: Any]]) ?? [] }
        var killed: Bool { signaled && status == SIGKILL }
        var summary: String { "status \(status)\(signaled ? " (signal)" : ""), stdout: \(out), stderr: \(err)" }
    }

    /// Runs txlog to completion (or kills it after `timeout` seconds) with output captured in files.
    ///
    /// A run that could not open the log because it is `locked` is repeated (for up to 5 s) unless
    /// `retryLocked` is false: see ``openWritable(_:)`` for why a log nobody holds can look locked for a moment.
    static func run(_ arguments: [String], timeout: Double = 60, retryLocked: Bool = true) async throws -> Run {
        let deadline = Date().addingTimeInterval(5)
        while true {
            let r = try await runOnce(arguments, timeout: timeout)
            guard retryLocked, !r.signaled, r.status == 2, r.err.contains("locked:"), Date() < deadline else { return r }
            try await Task.sleep(nanoseconds: 10_000_000)
        }
    }

    /// The shared runner (``TxlogProcess/run(_:scratch:killAfter:currentDirectory:hangAfter:)``), its
    /// output captured in files under the temporary directory; a child still running after `timeout`
    /// seconds is killed and fails the test (`TxlogProcess.Failure.hung`).
    private static func runOnce(_ arguments: [String], timeout: Double) async throws -> Run {
        let ended = try await TxlogProcess.run(arguments, scratch: FileManager.default.temporaryDirectory.path, hangAfter: timeout)
        return Run(status: ended.status, signaled: ended.signaled, out: ended.stdout, err: ended.stderr)
    }
}

/// Opens a log for writing, retrying for up to 5 s while it is `locked`.
///
/// The lock is a `flock` on the base file, held by its open file description. Foundation's `Process` on
/// Linux spawns a child that closes the inherited descriptors one by one before `exec` (O_CLOEXEC only acts
/// at exec), so while a test running in parallel spawns a process, that child briefly holds a copy of every
/// descriptor this process has open, and a log this process just closed can look locked for a moment.
func openWritable(_ dir: String) throws -> LogStore {
    let deadline = Date().addingTimeInterval(5)
    while true {
        do {
            return try LogStore.open(at: dir)
        } catch let e as LogError where e.code == .locked && Date() < deadline {
            usleep(10_000)
        }
    }
}

/// A resource manager's side of recovery: records the notifications for each transaction, answers
/// recover → recover(), commit → commitComplete(), rollback → rollbackComplete(), and appends a
/// `committed` / `aborted` record to its own stream before answering an outcome (as a real RM would).
final class RecordingRM: @unchecked Sendable {
    private let lock = NSLock()
    private var notes: [GUID: [TransactionNotification.Kind]] = [:]
    private var stream: LogStream?
    private var errors: [String] = []

    func attach(_ rm: ResourceManager) { lock.withLock { stream = rm.stream } }

    func notifications(for tx: GUID) -> [TransactionNotification.Kind] { lock.withLock { notes[tx] ?? [] } }
    var problems: [String] { lock.withLock { errors } }

    func handle(_ n: TransactionNotification) {
        guard let e = n.enlistment, let tx = n.transactionID else { return }
        let s = lock.withLock { () -> LogStream? in
            notes[tx, default: []].append(n.kind)
            return stream
        }
        do {
            switch n.kind {
            case .recover: try e.recover()
            case .commit:
                _ = try s?.append(Array("committed tx=\(tx) rm=\(e.resourceManagerID)".utf8))
                try e.commitComplete()
            case .rollback:
                _ = try s?.append(Array("aborted tx=\(tx) rm=\(e.resourceManagerID)".utf8))
                try e.rollbackComplete()
            default: break
            }
        } catch {
            lock.withLock { errors.append("\(n): \(error)") }
        }
    }
}

/// The kinds (`work`, `prepare`, `committed`, `aborted`) of an RM's own records about `tx`, in order.
func rmRecordKinds(_ log: LogStore, rm: GUID, tx: GUID) throws -> [String] {
    let name = ResourceManager.streamName(for: rm)
    guard log.streams().contains(where: { $0.name == name }) else { return [] }
    var cursor = try log.openStream(name).records()
    var kinds: [String] = []
    while let r = try cursor.next() {
        let words = String(decoding: r.data, as: UTF8.self).split(separator: " ")
        if words.count >= 2, words[1] == "tx=\(tx)" { kinds.append(String(words[0])) }
    }
    return kinds
}

/// What one RM saw after a crash: its own durable records, then the notifications recovery sent it.
struct CrashRMView: CustomStringConvertible {
    var rm: GUID
    var recordsBefore: [String]
    var notes: [TransactionNotification.Kind]

    /// The outcome the RM applies: the one it is told; else, with no recover notification, the one its
    /// own stream holds; a prepare record nobody asks about is rolled back (presumed abort).
    var outcome: Outcome {
        if notes.contains(.commit) { return .committed }
        if notes.contains(.rollback) { return .aborted }
        if notes.contains(.recover) || notes.contains(.inDoubt) { return .undetermined }
        if recordsBefore.contains("committed") { return .committed }
        return .aborted
    }

    var description: String { "rm \(rm): records \(recordsBefore), notifications \(notes.map(\.rawValue)), outcome \(outcome)" }
}

/// An in-process recovery of a crashed log: TM and both RMs, every outcome acknowledged.
struct CrashRecovery {
    var stats: RecoveryStatistics
    var views: [CrashRMView]
    /// Transactions the TM still owed after both RMs recovered and acknowledged.
    var owedAfterAcks: Int
    var problems: [String]

    /// Opens the log (writable), recovers the TM, opens and recovers both crash RMs, then closes the TM
    /// (a checkpoint) and the log.
    static func run(_ dir: String) throws -> CrashRecovery {
        let log = try openWritable(dir)
        defer { try? log.close() }
        let before = try CrashIDs.rms.map { try rmRecordKinds(log, rm: $0, tx: CrashIDs.transaction) }
        let tm = try TransactionManager.open(log: log)
        try #require(tm.id == CrashIDs.tm)
        try tm.recover()
        let stats = tm.lastRecovery
        var views: [CrashRMView] = []
        var problems: [String] = []
        for (i, id) in CrashIDs.rms.enumerated() {
            let recorder = RecordingRM()
            let rm = try tm.openResourceManager(id: id) { recorder.handle($0) }
            recorder.attach(rm)
            try rm.recover()
            views.append(CrashRMView(rm: id, recordsBefore: before[i], notes: recorder.notifications(for: CrashIDs.transaction)))
            problems += recorder.problems
        }
        let owed = tm.transactionSnapshots().count
        try tm.close()
        try log.close()
        return CrashRecovery(stats: stats, views: views, owedAfterAcks: owed, problems: problems)
    }
}
