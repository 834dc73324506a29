// `txlog fixture-log` (hidden): writes the small log the golden-output tests run every read command on
// (Tests/LogStoreTests/ToolGoldenOutputTests.swift, committed under Tests/LogStoreTests/Fixtures/tool-log).
//
// The log: 2 × 512 KiB containers, 1 KiB blocks, codec lz4. Container 1 is first filled with filler records
// written with codec none (so git compresses them), and the log's base is moved past them; what follows
// rolls over into container 2. After the filler: default-stream records of several sizes (empty, one larger
// than a block) chained by their previous links; a stream `orders` with previous and undo-next links (a
// compensation record), two restart areas and an advanced stream base; a TM (`ktm`) with a key-value store
// and two plain resource managers, and five transactions: a two-phase commit, a single-phase commit, a
// vetoed one, one left in doubt under its superior, and one resolved by an operator whose commit one
// participant never acknowledges; a TM checkpoint and a store checkpoint after the first two move those
// streams' bases. The TM is not closed, so the last two transactions stay owed work.
//
// Every identity the library lets a caller choose is fixed (the TM, the resource managers, the transactions,
// the plain RMs' enlistments), and the work runs in one task, so regenerating gives the same records at the
// same LSNs. What stays random: the log id (`LogStore.create` draws it), the KV store's enlistment ids
// (`KVStore.begin` draws them) and the forced record's wall-clock time.

import ArgumentParser
import Foundation
import LogStore
import TransactionManager
import TransactionalKV

struct FixtureLogCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fixture-log",
        abstract: "Write the golden-output tests' fixture log to a new directory (changes the filesystem).",
        shouldDisplay: false)

    @Argument(help: "Directory for the log (must not exist).") var path: String

    func run() async throws {
        guard !FileManager.default.fileExists(atPath: path) else {
            // One line, `txlog: <code>: …`, as every other error; exit 64 (usage).
            throw fail(LogError(.invalidArgument, "\(path) already exists: fixture-log writes a new directory", path: path))
        }
        let kv = NSTemporaryDirectory() + "txlog-fixture-kv-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: kv) }
        do {
            try await FixtureLog(path: path, kvDirectory: kv).write()
        } catch let code as ExitCode {
            throw code
        } catch {
            throw fail(error)
        }
        print("wrote fixture log at \(path)")
    }
}

/// The fixed identities of the fixture log.
enum FixtureIDs {
    static func id(_ suffix: UInt64) -> GUID { GUID(high: 0x7E00_0000_0000_4000, low: 0x8000_0000_0000_0000 | suffix) }
    static let tm = id(0x01)
    static let accounts = id(0xA1)
    static let ledger = id(0xA2)
    static let audit = id(0xA3)
    static let transfer = id(0xF1)
    static let deposit = id(0xF2)
    static let refund = id(0xF3)
    static let inDoubt = id(0xF4)
    static let resolved = id(0xF5)
    /// The enlistment of `rm` (0xA2, 0xA3) in transaction `tx` (0xF1...0xF5): 0xE<tx><rm>.
    static func enlistment(_ tx: GUID, _ rm: GUID) -> GUID { id(0xE000 | (tx.low & 0xF) << 8 | (rm.low & 0xFF)) }
}

/// Writes the fixture log; see the file comment.
struct FixtureLog: Sendable {
    let path: String
    let kvDirectory: String
    static let containerSize: UInt64 = 512 << 10

    func write() async throws {
        try await onThread { [self] in try fill() }
        let log = try await onThread { [path] in try LogStore.open(at: path) }
        let events = try await onThread { [self] in try plainStreams(log) }
        try await transactions(log)
        try await onThread {
            _ = try log.append(Array("event 5: shutting down".utf8), previous: events)
            try log.flush()
            try log.close()
        }
    }

    /// Creates the log and fills container 1 up to about 4 KiB before its end with records written with
    /// codec none, one block each; the next open uses the log's codec (lz4) again.
    private func fill() throws {
        var open = LogOpenOptions()
        open.codec = Codec.none
        let options = LogCreateOptions(containerSize: Self.containerSize, containerCount: 2, blockSize: 1024, codec: .lz4)
        let log = try LogStore.create(at: path, options: options, openOptions: open)
        var n = 0
        func filler(_ size: Int) throws -> Int {
            let text = Array("filler record \(n), released by the base; ".utf8)
            let bytes = (0..<size).map { text[$0 % text.count] }
            let lsn = try log.append(bytes)
            try log.flush()
            n += 1
            // What is left of the container after this record's block (headers and sector rounding included).
            return Int(Self.containerSize) - Int(lsn.blockOffset) - (size + 64 + 511) / 512 * 512
        }
        while try filler(16_000) > 20_000 {}
        while try filler(900) > 4_000 {}
        try log.close()
    }

    /// The default stream and `orders`; moves the log's base past the filler. Returns the last event's LSN.
    private func plainStreams(_ log: LogStore) throws -> LSN {
        func text(_ s: String) -> [UInt8] { Array(s.utf8) }
        let e0 = try log.append(text("event 0: service started"))
        try log.advanceBase(to: e0)
        let orders = try log.createStream("orders")
        let o1 = try orders.append(text("order 1001 created for alice"))
        let e1 = try log.append(text("event 1: 1 order open"), previous: e0)
        let o2 = try orders.append(text("order 1001 line 1: 2 x widget @ 4.50"), previous: o1, undoNext: o1)
        try orders.writeRestartArea(text("orders checkpoint 1: open orders [1001]"))
        let o3 = try orders.append(text("order 1001 line 2: 1 x gadget @ 12.00"), previous: o2, undoNext: o2)
        let e2 = try log.append([], previous: e1)  // an empty record
        // A compensation record: undoing line 2, its undo-next skips to what is left to undo (line 1).
        let o4 = try orders.append(text("order 1001 undo line 2 (gadget out of stock)"), previous: o3, undoNext: o2)
        // Larger than a block: a block of its own. Half text, half a counting pattern.
        let big = text(String(repeating: "event 3: inventory snapshot; ", count: 26)) + (0..<760).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let e3 = try log.append(big, previous: e2)
        _ = try orders.append(text("order 1001 committed: 9.00"), previous: o4)
        try orders.writeRestartArea(text("orders checkpoint 2: no open orders"), newBase: o3)
        return try log.append(text("event 4: orders checkpointed"), previous: e3)
    }

    /// The TM, its resource managers and the five transactions.
    private func transactions(_ log: LogStore) async throws {
        let (tm, accounts, plain) = try await onThread { [kvDirectory] in
            let tm = try TransactionManager.create(log: log, id: FixtureIDs.tm)
            try tm.recover()
            let accounts = try KVStore.open(transactionManager: tm, id: FixtureIDs.accounts, description: "accounts", directory: kvDirectory)
            let plain = try FixtureRMs(tm)
            return (tm, accounts, plain)
        }
        func key(_ s: String) -> [UInt8] { Array(s.utf8) }

        // A two-phase commit across the store and the ledger.
        let transfer = try tm.createTransaction(id: FixtureIDs.transfer, description: "transfer alice -> bob 25")
        let a = try accounts.begin(transfer)
        try a.put(key("alice"), key("75"))
        try a.put(key("bob"), key("25"))
        try plain.enlist(transfer, [FixtureIDs.ledger])
        try await transfer.commit()

        // A single-phase commit: the store alone.
        let deposit = try tm.createTransaction(id: FixtureIDs.deposit, description: "deposit carol 10")
        let d = try accounts.begin(deposit)
        try d.put(key("carol"), key("10"))
        try d.delete(key("bob"))
        try await deposit.commit()

        try await onThread {
            _ = try tm.checkpoint()
            _ = try accounts.checkpoint()
        }

        // The ledger vetoes: the store, which prepared, rolls back.
        let refund = try tm.createTransaction(id: FixtureIDs.refund, description: "refund dave 5")
        try accounts.begin(refund).put(key("dave"), key("5"))
        try plain.enlist(refund, [FixtureIDs.ledger])
        do {
            try await refund.commit()
            throw LogError(.invalidState, "the fixture's vetoed transaction committed")
        } catch let e as LogError where e.code == .aborted {}

        // Prepared under a superior that never decides: in doubt.
        let inDoubt = try tm.createTransaction(id: FixtureIDs.inDoubt, description: "xa branch 7")
        try plain.enlist(inDoubt, [FixtureIDs.ledger, FixtureIDs.audit])
        _ = try await inDoubt.enlistSuperior().prepare()

        // Prepared, then resolved by an operator; the ledger never acknowledges the commit: committing.
        let resolved = try tm.createTransaction(id: FixtureIDs.resolved, description: "xa branch 8")
        try plain.enlist(resolved, [FixtureIDs.ledger, FixtureIDs.audit])
        _ = try await resolved.enlistSuperior().prepare()
        try await tm.resolve(FixtureIDs.resolved, action: .commit, actor: "fixture@ops", reason: "superior gone")
        try plain.check()
    }
}

// MARK: - The plain resource managers

/// "ledger" and "audit": each logs one line per notification to its own stream, chained by previous links.
/// The ledger vetoes the refund and never acknowledges the commit of the resolved transaction.
final class FixtureRMs: @unchecked Sendable {
    private let lock = NSLock()
    private var rms: [GUID: ResourceManager] = [:]
    private var names: [GUID: String] = [:]
    private var last: [GUID: LSN] = [:]
    private var problems: [String] = []

    init(_ tm: TransactionManager) throws {
        for (id, name) in [(FixtureIDs.ledger, "ledger"), (FixtureIDs.audit, "audit")] {
            let rm = try tm.createResourceManager(id: id, description: name) { [weak self] n in self?.handle(n) }
            lock.withLock {
                rms[id] = rm
                names[id] = name
            }
            try rm.recover()
        }
    }

    /// Enlists the RMs `ids` in `transaction`, with the fixed enlistment ids.
    func enlist(_ transaction: Transaction, _ ids: [GUID]) throws {
        for id in ids {
            guard let rm = lock.withLock({ rms[id] }) else { throw LogError(.notFound, "no fixture resource manager \(id)") }
            _ = try rm.enlist(transaction, mask: .twoPhase, id: FixtureIDs.enlistment(transaction.id, id))
        }
        try check()
    }

    /// Throws the first problem a notification handler had.
    func check() throws {
        if let p = lock.withLock({ problems.first }) { throw LogError(.invalidState, "fixture resource manager: \(p)") }
    }

    private func note(_ rm: GUID, _ text: String) throws {
        guard let (stream, previous) = lock.withLock({ rms[rm]?.stream.map { ($0, last[rm] ?? .invalid) } }) else {
            throw LogError(.notFound, "no stream for resource manager \(rm)")
        }
        let lsn = try stream.append(Array(text.utf8), previous: previous)
        lock.withLock { last[rm] = lsn }
    }

    private func handle(_ n: TransactionNotification) {
        guard let e = n.enlistment else { return }
        let rm = e.resourceManagerID
        let name = lock.withLock { names[rm] ?? "?" }
        let tx = e.transactionID
        // The transaction by its last byte, so the whole line fits dump's preview.
        let t = "tx #" + String(tx.low & 0xFF, radix: 16)
        do {
            switch n.kind {
            case .prePrepare: try e.prePrepareComplete()
            case .prepare:
                if tx == FixtureIDs.refund && rm == FixtureIDs.ledger {
                    try note(rm, "\(name): veto \(t): account dave is closed")
                    try e.rollback()
                } else {
                    try note(rm, "\(name): prepared \(t)")
                    try e.prepareComplete()
                }
            case .commit:
                try note(rm, "\(name): committed \(t)")
                // The ledger never acknowledges the resolved transaction's commit: it stays owed work.
                if !(tx == FixtureIDs.resolved && rm == FixtureIDs.ledger) { try e.commitComplete() }
            case .rollback:
                try note(rm, "\(name): rolled back \(t)")
                try e.rollbackComplete()
            default: break
            }
        } catch {
            lock.withLock { problems.append("\(n): \(error)") }
        }
    }
}
