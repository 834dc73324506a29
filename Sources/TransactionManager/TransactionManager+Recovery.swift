// Recovery: rebuild the TM's tables from its last checkpoint plus a forward scan of its stream.

import LogStore

/// What a TM recovery did.
public struct RecoveryStatistics: Sendable, Equatable {
    /// The checkpoint recovery started from.
    public var checkpointLSN: LSN = .null
    /// TM records replayed after the checkpoint.
    public var recordsScanned = 0
    /// The last TM record replayed (KTM's LastRecoveredLsn).
    public var lastRecoveredLSN: LSN = .null
    /// Transactions owed work after recovery that are being committed (decided, not yet acknowledged by
    /// every participant).
    public var committing = 0
    /// Transactions owed work after recovery that are being rolled back.
    public var aborting = 0
    /// Transactions in doubt after recovery: prepared under a superior, no decision.
    public var inDoubt = 0
    /// How long the recovery took, in nanoseconds.
    public var durationNanos: UInt64 = 0
}

extension TransactionManager {
    /// Rebuilds the TM's tables: reads the last checkpoint, replays the TM stream after it, and classifies
    /// each transaction: committed without an end record → commit is sent again; prepared with no
    /// decision → rolled back (presumed abort), unless a superior was registered, in which case it is
    /// in doubt until resolved. Writes nothing but the end records of transactions every participant
    /// had already acknowledged, so recovering twice, or after a crash during recovery, gives the same
    /// result. Then the TM is online.
    ///
    /// - Parameters:
    ///   - progress: called every 256 records with the number replayed so far.
    ///   - isCancelled: polled before each part of a checkpoint written in parts, for every block of the
    ///     log the scan reads (also blocks of other streams it passes over) and every 256 records; when
    ///     it returns true recovery stops with `terminated`
    ///     and the TM stays initialized.
    ///
    /// - Throws: `closed` when the TM is stopped while it recovers (its log closed under it, or
    ///   ``close()``), or the log's error when the log fails meanwhile; the TM is then not online.
    public func recover(progress: (@Sendable (Int) -> Void)? = nil, isCancelled: (@Sendable () -> Bool)? = nil) throws {
        try lock.withLock {
            guard state == .initialized else { throw LogError(.invalidState, "the transaction manager is \(state.rawValue), not initialized") }
            state = .recovering
        }
        do {
            let started = monotonicNanos()
            var stats = RecoveryStatistics()
            var table = RecoveredTable(audit: ForcedOutcomeTrail(limit: options.auditRetention))
            if let stream {
                try replay(stream: stream, into: &table, stats: &stats, progress: progress, isCancelled: isCancelled)
            }
            guard table.tm == nil || table.tm == id else {
                throw LogError(.corrupt, "the checkpoint in stream \(stream?.name ?? "") belongs to TM \(table.tm!), not \(id)")
            }
            try install(table, stats: &stats)
            stats.durationNanos = monotonicNanos() &- started
            try lock.withLock {
                try requireStillRecoveringLocked()
                recoveryStats = stats
                lastRestartSize = table.restartSize
                state = .online
            }
            reserveRestartRoom()
        } catch {
            lock.withLock { if state == .recovering { state = .initialized } }
            throw error
        }
    }

    /// Throws unless the TM is still recovering (under `lock`). A stop (the log's close, `close()`) or
    /// the log's failure while recovery ran set the state and let go of the transactions: a recovery
    /// that went on to install its table and go online reported an online TM over a closed log, with
    /// transactions nothing would ever detach.
    private func requireStillRecoveringLocked() throws {
        switch state {
        case .recovering: return
        case .failed: throw failure ?? LogError(.failed, "the transaction manager's log failed during recovery")
        default:
            throw LogError(.closed, "the transaction manager was stopped during recovery (its log was closed, or it was closed): it is not online, and the log is as it was: a transaction manager opened on it again recovers from there")
        }
    }

    /// What the last ``recover(progress:isCancelled:)`` did.
    public var lastRecovery: RecoveryStatistics { lock.withLock { recoveryStats } }

    /// The tables as the log describes them, before they become live objects.
    struct RecoveredTable {
        var tm: GUID?
        var clock: UInt64 = 1
        var rms: [GUID: LoggedRM] = [:]
        var transactions: [GUID: LoggedTransaction] = [:]
        /// The checkpoint's forced outcomes, then those of the records replayed after it.
        var audit: ForcedOutcomeTrail
        /// Bytes of the restart record recovery started from (0: none): what the room for the next
        /// checkpoint is sized from (TransactionManager+RestartRoom.swift).
        var restartSize = 0

        mutating func apply(_ record: TMRecord) {
            switch record {
            case .checkpoint(let cp):
                tm = cp.tm
                clock = max(clock, cp.clock)
                rms = Dictionary(cp.rms.map { ($0.id, $0) }, uniquingKeysWith: { $1 })
                transactions = Dictionary(cp.transactions.map { ($0.id, $0) }, uniquingKeysWith: { $1 })
            case .rmRegistered(let rm):
                rms[rm.id] = rm
            case .prepared(let t):
                if transactions[t.id] == nil { transactions[t.id] = t }
            case .outcome(let t):
                if var known = transactions[t.id] {
                    known.outcome = t.outcome
                    if !t.enlistments.isEmpty { known.enlistments = merge(known.enlistments, t.enlistments) }
                    transactions[t.id] = known
                } else {
                    transactions[t.id] = t
                }
            case .end(let id):
                transactions[id] = nil
            case .forced(let id, let action, _, _, _):
                switch action {
                case .commit: transactions[id]?.outcome = .committed
                case .rollback: transactions[id]?.outcome = .aborted
                case .forget: transactions[id] = nil
                }
            case .checkpointPart, .checkpointIndex:
                break  // resolved into a `.checkpoint` before it gets here
            }
        }

        /// Keeps acknowledgements already known; takes identities and blobs from the newer record.
        private func merge(_ old: [LoggedEnlistment], _ new: [LoggedEnlistment]) -> [LoggedEnlistment] {
            let acked = Set(old.filter(\.acknowledged).map(\.id))
            return new.map { var e = $0; e.acknowledged = acked.contains(e.id); return e }
        }
    }

    private func replay(
        stream: LogStream, into table: inout RecoveredTable, stats: inout RecoveryStatistics, progress: (@Sendable (Int) -> Void)?,
        isCancelled: (@Sendable () -> Bool)?
    ) throws {
        var covered = LSN.null
        // Checked for every block read, not only every 256 TM records: in a log shared with busy RM
        // streams the TM's records after its checkpoint may be few, among thousands of other blocks.
        // Also before each part of a checkpoint in parts, which may be thousands of reads on its own.
        let stopIfCancelled = {
            if isCancelled?() == true { throw LogError(.terminated, "recovery cancelled after \(stats.recordsScanned) records") }
        }
        if let restart = try stream.readRestartArea() {
            let cp = try Self.loadCheckpoint(restart, read: stream.read, beforeEachPart: stopIfCancelled)
            table.apply(.checkpoint(cp))
            table.audit.replace(with: cp.forcedOutcomes)
            covered = cp.coveredThrough
            stats.checkpointLSN = restart.lsn
            table.restartSize = restart.data.count
        }
        var cursor = try stream.records(from: covered)
        while let r = try cursor.next(beforeEachBlock: stopIfCancelled) {
            if r.type == .restart || (covered != .null && r.lsn <= covered) { continue }
            let (record, recordClock) = try TMRecord.decode(r.data)
            switch record {
            case .checkpoint, .checkpointPart, .checkpointIndex: continue
            default: break
            }
            table.apply(record)
            if case .forced(let tx, let action, let nanos, let actor, let reason) = record {
                // After the checkpoint's own entries (all at or below covered-through): no duplicates.
                table.audit.append(ForcedOutcome(lsn: r.lsn, transaction: tx, action: action, unixNanos: nanos, actor: actor, reason: reason))
            }
            table.clock = max(table.clock, recordClock)
            stats.recordsScanned += 1
            stats.lastRecoveredLSN = r.lsn
            if stats.recordsScanned % 256 == 0 {
                progress?(stats.recordsScanned)
                if isCancelled?() == true { throw LogError(.terminated, "recovery cancelled after \(stats.recordsScanned) records") }
            }
        }
        progress?(stats.recordsScanned)
    }

    /// Turns the recovered table into live transactions owed outcomes.
    private func install(_ table: RecoveredTable, stats: inout RecoveryStatistics) throws {
        try lock.withLock {
            try requireStillRecoveringLocked()
            clock = max(clock, table.clock)
            loggedRMs = table.rms
            audit = table.audit
            for t in table.transactions.values {
                let txn = TxnCore(id: t.id, description: t.description)
                txn.recovered = true
                txn.logged = true
                txn.hasSuperior = t.superior
                switch t.outcome {
                case .committed:
                    txn.outcome = .committed
                    txn.state = .committing
                    stats.committing += 1
                case .aborted:
                    txn.outcome = .aborted
                    txn.state = .aborting
                    stats.aborting += 1
                case .undetermined:
                    if t.superior {
                        txn.state = .inDoubt
                        stats.inDoubt += 1
                    } else {
                        // Prepared, no decision, nobody to ask: presumed abort.
                        txn.outcome = .aborted
                        txn.state = .aborting
                        stats.aborting += 1
                    }
                }
                for le in t.enlistments {
                    let e = Enlistment(
                        id: le.id, txn: txn, rm: nil, rmID: le.rm, mask: NotificationMask(rawValue: le.mask), durable: true,
                        state: le.acknowledged ? (txn.outcome == .committed ? .committed : .aborted) : .recovering, tm: self)
                    e.recoveryInfo = le.recoveryInformation
                    e.acknowledged = le.acknowledged
                    txn.enlistments.append(e)
                }
                txn.unacknowledged = txn.enlistments.filter { !$0.acknowledged }.count
                transactions[t.id] = txn
            }
        }
        // A transaction every participant already acknowledged only lacks its end record.
        var fx = Effects()
        lock.withLock {
            for txn in transactions.values where txn.recovered && txn.unacknowledged == 0 && txn.outcome != .undetermined {
                finishLocked(txn, into: &fx)
            }
        }
        if !(log?.isReadOnly ?? true) { perform(fx) }
    }
}
