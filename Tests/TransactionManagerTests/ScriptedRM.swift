// A scriptable resource manager for tests: it records every notification it gets and answers each
// according to a policy set per notification kind (optionally per transaction). A durable one writes
// real records to its own stream: "prepare <tx>" before prepareComplete(), "commit <tx>" or
// "rollback <tx>" before acknowledging an outcome.

import Foundation
import LogStore
import Testing
@testable import TransactionManager

final class ScriptedRM: @unchecked Sendable {
    typealias Kind = TransactionNotification.Kind

    /// How the RM answers a notification.
    enum Reply: Sendable {
        /// The normal answer: prePrepareComplete, prepareComplete, commitComplete, rollbackComplete, recover.
        case answer
        /// `Enlistment.rollback()`.
        case veto
        /// `Enlistment.readOnly()`.
        case readOnly
        /// `Enlistment.singlePhaseReject()`.
        case rejectSinglePhase
        /// The normal answer, given later from another thread (exercises the TM's waiting paths).
        case answerLater
        /// Don't answer now: the notification is kept in ``held`` until ``release(_:tx:reply:)``.
        case hold
    }

    /// One notification as received.
    struct Received: @unchecked Sendable {
        var kind: Kind
        var transactionID: GUID?
        var enlistment: Enlistment?
        var recoveryInformation: [UInt8]
    }

    private let lock = NSLock()
    private var received: [Received] = []
    private var heldNotes: [Received] = []
    private var replies: [Kind: Reply] = [:]
    private var repliesForTx: [GUID: [Kind: Reply]] = [:]
    private var answerErrors: [String] = []
    /// The resource manager; set right after creation, before any notification can arrive.
    private(set) var rm: ResourceManager!

    private init() {}

    /// Creates a resource manager on `tm` (durable unless `volatile`) driven by a new ScriptedRM.
    static func create(_ tm: TransactionManager, _ description: String = "scripted", volatile: Bool = false, id: GUID = .random())
        throws -> ScriptedRM
    {
        let s = ScriptedRM()
        s.rm = try tm.createResourceManager(id: id, description: description, volatile: volatile) { [weak s] n in s?.handle(n) }
        return s
    }

    /// Creates a resource manager and recovers it (online, ready to enlist).
    static func online(_ tm: TransactionManager, _ description: String = "scripted", volatile: Bool = false) throws -> ScriptedRM {
        let s = try create(tm, description, volatile: volatile)
        try s.rm.recover()
        return s
    }

    /// Opens a registered durable resource manager (after a restart); call `rm.recover()` next.
    static func open(_ tm: TransactionManager, id: GUID, configure: (ScriptedRM) -> Void = { _ in }) throws -> ScriptedRM {
        let s = ScriptedRM()
        configure(s)
        s.rm = try tm.openResourceManager(id: id) { [weak s] n in s?.handle(n) }
        return s
    }

    var id: GUID { rm.id }

    // MARK: Script

    /// Answers every `kind` notification with `reply` (for transaction `tx` only, if given).
    func on(_ kind: Kind, _ reply: Reply, tx: GUID? = nil) {
        lock.withLock {
            if let tx { repliesForTx[tx, default: [:]][kind] = reply } else { replies[kind] = reply }
        }
    }

    /// Enlists in `tx`, optionally setting recovery information.
    func enlist(_ tx: Transaction, mask: NotificationMask = .twoPhase, info: [UInt8] = []) throws -> Enlistment {
        let e = try rm.enlist(tx, mask: mask)
        if !info.isEmpty { try e.setRecoveryInformation(info) }
        return e
    }

    // MARK: What happened

    /// Every notification received, in order.
    var notes: [Received] { lock.withLock { received } }

    /// The kinds received for transaction `tx`, in order.
    func kinds(_ tx: GUID) -> [Kind] { notes.filter { $0.transactionID == tx }.map(\.kind) }

    /// The kinds received, in order, including recovery-complete and tm-online.
    var allKinds: [Kind] { notes.map(\.kind) }

    /// Notifications held (policy ``Reply/hold``) and not yet released.
    var held: [Received] { lock.withLock { heldNotes } }

    /// Errors thrown by the RM's own answers (a correct TM leaves this empty).
    var errors: [String] { lock.withLock { answerErrors } }

    /// The RM's own stream's records as text ("prepare <tx>", "commit <tx>", ...).
    func ownRecords() throws -> [String] {
        try dataRecords(try #require(rm.stream)).map { String(decoding: $0.data, as: UTF8.self) }
    }

    /// The LSNs of the RM's own records.
    func ownRecordLSNs() throws -> [LSN] { try dataRecords(try #require(rm.stream)).map(\.lsn) }

    /// Waits until a `kind` notification for `tx` (any transaction if nil) has arrived `count` times.
    func waitFor(_ kind: Kind, tx: GUID? = nil, count: Int = 1) async -> Bool {
        await eventually { self.notes.filter { $0.kind == kind && (tx == nil || $0.transactionID == tx) }.count >= count }
    }

    /// Answers the oldest held `kind` notification (of `tx`, if given) now, with `reply`.
    func release(_ kind: Kind, tx: GUID? = nil, reply: Reply = .answer) throws {
        let note: Received? = lock.withLock {
            guard let i = heldNotes.firstIndex(where: { $0.kind == kind && (tx == nil || $0.transactionID == tx) }) else { return nil }
            return heldNotes.remove(at: i)
        }
        let n = try #require(note, "no held \(kind.rawValue) notification")
        try respond(n, reply)
    }

    // MARK: Handling

    private func handle(_ n: TransactionNotification) {
        let note = Received(kind: n.kind, transactionID: n.transactionID, enlistment: n.enlistment, recoveryInformation: n.recoveryInformation)
        let reply: Reply = lock.withLock {
            received.append(note)
            let r = n.transactionID.flatMap { repliesForTx[$0]?[n.kind] } ?? replies[n.kind] ?? .answer
            if r == .hold, n.enlistment != nil { heldNotes.append(note) }
            return r
        }
        switch reply {
        case .hold: return
        case .answerLater: DispatchQueue.global().async { self.respondRecordingErrors(note, .answer) }
        default: respondRecordingErrors(note, reply)
        }
    }

    private func respondRecordingErrors(_ note: Received, _ reply: Reply) {
        do { try respond(note, reply) } catch { lock.withLock { answerErrors.append("\(note.kind.rawValue): \(error)") } }
    }

    private func respond(_ n: Received, _ reply: Reply) throws {
        guard let e = n.enlistment else { return }
        switch reply {
        case .hold: return
        case .answerLater: DispatchQueue.global().async { self.respondRecordingErrors(n, .answer) }
        case .veto: try e.rollback()
        case .readOnly: try e.readOnly()
        case .rejectSinglePhase: try e.singlePhaseReject()
        case .answer:
            switch n.kind {
            case .prePrepare: try e.prePrepareComplete()
            case .prepare:
                try writeOwn("prepare", e)
                try e.prepareComplete()
            case .commit, .singlePhaseCommit:
                try writeOwn("commit", e)
                try e.commitComplete()
            case .rollback:
                try writeOwn("rollback", e)
                try e.rollbackComplete()
            case .recover: try e.recover()
            case .inDoubt, .recoveryComplete, .tmOnline: return
            }
        }
    }

    /// A durable RM logs its own prepare and outcome records (not flushed: the TM's forced record flushes
    /// them, the shared-log fast path).
    private func writeOwn(_ what: String, _ e: Enlistment) throws {
        guard let stream = rm.stream else { return }
        try stream.append(Array("\(what) \(e.transactionID)".utf8))
    }
}
