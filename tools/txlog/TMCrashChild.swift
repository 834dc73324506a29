// `txlog tm crash-child` (hidden): one two-phase commit across two durable RMs that SIGKILLs its own
// process at a chosen step, for Tests/TransactionManagerTests/CrashMatrixTests.swift.
//
// Identities are fixed (the test reopens them): TM, RM1, RM2, the transaction and both enlistments, see
// `CrashChildIDs`. Each RM writes its own records to its stream — `work`, then `prepare` before answering
// prepare, then `committed` or `aborted` when told the outcome — and never flushes: a record is durable only
// if the protocol's own forced writes (the TM's decision record, in the same log) made it so.

import ArgumentParser
import Foundation
import LogStore
import TransactionManager

#if canImport(Glibc)
import Glibc
#endif

/// The fixed identities of the crash workload (repeated in the test's support file).
enum CrashChildIDs {
    static let tm = GUID("c0000000-0000-4000-8000-000000000001")!
    static let rm1 = GUID("c0000000-0000-4000-8000-0000000000a1")!
    static let rm2 = GUID("c0000000-0000-4000-8000-0000000000a2")!
    static let transaction = GUID("c0000000-0000-4000-8000-0000000000f1")!
    static let enlistment1 = GUID("c0000000-0000-4000-8000-0000000000e1")!
    static let enlistment2 = GUID("c0000000-0000-4000-8000-0000000000e2")!
}

enum CrashStep: String, ExpressibleByArgument, CaseIterable {
    /// After both work records, before commit starts.
    case beforePrepare = "before-prepare"
    /// In the first prepare handler, right after prepareComplete.
    case afterOnePrepared = "after-one-prepared"
    /// In the second prepare handler, right after prepareComplete (before the decision record).
    case afterAllPrepared = "after-all-prepared"
    /// At the start of the first commit handler: the decision is durable, nothing acknowledged.
    case afterCommitRecord = "after-commit-record"
    /// In the last commit handler, right after commitComplete (the end record is appended, not forced).
    case beforeEndRecord = "before-end-record"
    /// Commit, close the TM and the log.
    case none
    /// Reopen a log left by after-commit-record, recover the TM and RM1, die in RM1's commit handler.
    case duringRecovery = "during-recovery"
}

struct TMCrashChildCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "crash-child", abstract: "Crash-matrix child: one two-phase commit that SIGKILLs itself at --step (changes the log).",
        shouldDisplay: false)

    @Argument(help: "The log directory (created if missing).") var path: String
    @Option(help: "Where to die: \(CrashStep.allCases.map(\.rawValue).joined(separator: ", ")).") var step: CrashStep

    func run() async throws {
        let plan = CrashPlan(step: step)
        let path = self.path
        if step == .duringRecovery {
            try await onThread { try plan.recoverOnlyRM1(path) }
            FileHandle.standardError.write(Data("txlog: crash-child: no commit notification during RM1's recovery\n".utf8))
            throw ExitCode(3)
        }
        let (log, tm, rm1, rm2) = try await onThread { try plan.setUp(path) }
        let tx = try tm.createTransaction(id: CrashChildIDs.transaction, description: "crash-matrix transfer")
        _ = try rm1.enlist(tx, mask: .twoPhase, id: CrashChildIDs.enlistment1)
        _ = try rm2.enlist(tx, mask: .twoPhase, id: CrashChildIDs.enlistment2)
        for rm in [rm1, rm2] { _ = try rm.stream!.append(CrashPlan.record("work", rm.id)) }
        if step == .beforePrepare { plan.die() }
        try await tx.commit()
        try await onThread {
            try tm.close()
            try log.close()
        }
        print("committed \(CrashChildIDs.transaction)")
    }
}

/// The two RMs' handler and the kill points.
final class CrashPlan: @unchecked Sendable {
    let step: CrashStep
    private let lock = NSLock()
    private var streams: [GUID: LogStream] = [:]
    private var prepares = 0
    private var commits = 0

    init(step: CrashStep) { self.step = step }

    /// An RM record: `<kind> tx=<transaction> rm=<rm>`.
    static func record(_ kind: String, _ rm: GUID) -> [UInt8] { Array("\(kind) tx=\(CrashChildIDs.transaction) rm=\(rm)".utf8) }

    func die() -> Never {
        FileHandle.standardOutput.write(Data("dying at \(step.rawValue)\n".utf8))
        kill(getpid(), SIGKILL)
        while true { pause() }
    }

    func openLog(_ path: String) throws -> LogStore {
        do {
            if FileManager.default.fileExists(atPath: path) { return try LogStore.open(at: path) }
            return try LogStore.create(at: path, options: LogCreateOptions(containerSize: 512 << 10, containerCount: 2, blockSize: 4096))
        } catch {
            throw fail(error, opening: true)
        }
    }

    func openTM(_ log: LogStore) throws -> TransactionManager {
        let exists = log.streams().contains { $0.name == TransactionManager.defaultStreamName }
        let tm = exists ? try TransactionManager.open(log: log) : try TransactionManager.create(log: log, id: CrashChildIDs.tm)
        guard tm.id == CrashChildIDs.tm else { throw LogError(.corrupt, "the log holds TM \(tm.id), not the crash workload's") }
        try tm.recover()
        return tm
    }

    func openRM(_ tm: TransactionManager, _ id: GUID, _ name: String) throws -> ResourceManager {
        let rm = try tm.openOrCreateResourceManager(id: id, description: name) { [self] in handle($0) }
        lock.withLock { streams[id] = rm.stream }
        return rm
    }

    func setUp(_ path: String) throws -> (LogStore, TransactionManager, ResourceManager, ResourceManager) {
        let log = try openLog(path)
        let tm = try openTM(log)
        let rm1 = try openRM(tm, CrashChildIDs.rm1, "crash rm1")
        let rm2 = try openRM(tm, CrashChildIDs.rm2, "crash rm2")
        try rm1.recover()
        try rm2.recover()
        return (log, tm, rm1, rm2)
    }

    /// Recovers the TM and RM1 only; RM1's commit handler kills the process.
    func recoverOnlyRM1(_ path: String) throws {
        let tm = try openTM(try openLog(path))
        try openRM(tm, CrashChildIDs.rm1, "crash rm1").recover()
    }

    func handle(_ n: TransactionNotification) {
        guard let e = n.enlistment else { return }
        do {
            guard let stream = lock.withLock({ streams[e.resourceManagerID] }) else { throw LogError(.notFound, "no stream for \(e.resourceManagerID)") }
            switch n.kind {
            case .prePrepare: try e.prePrepareComplete()
            case .prepare:
                _ = try stream.append(Self.record("prepare", e.resourceManagerID))
                try e.prepareComplete()
                let k = lock.withLock { prepares += 1; return prepares }
                if (k == 1 && step == .afterOnePrepared) || (k == 2 && step == .afterAllPrepared) { die() }
            case .commit:
                let k = lock.withLock { commits += 1; return commits }
                if k == 1 && step == .afterCommitRecord { die() }
                _ = try stream.append(Self.record("committed", e.resourceManagerID))
                try e.commitComplete()
                if (k == 2 && step == .beforeEndRecord) || step == .duringRecovery { die() }
            case .rollback:
                _ = try stream.append(Self.record("aborted", e.resourceManagerID))
                try e.rollbackComplete()
            case .recover: try e.recover()
            default: break
            }
        } catch {
            FileHandle.standardError.write(Data("txlog: crash-child: \(n): \(error)\n".utf8))
            exit(4)
        }
    }
}
