// A minimal durable resource manager shared by the transaction benchmarks.

import LogStore
import Synchronization
import TransactionManager

/// The resource manager of the two-phase-commit benchmarks (`txlog bench 2pc` and the Benchmarks
/// package): a work record per transaction, a prepare record on prepare (appended, not flushed: the
/// TM's forced decision record covers it), and on single-phase commit a commit record it appends and
/// flushes itself before answering. It advances its stream's base as transactions finish, so the log
/// recycles.
public final class BenchRM: @unchecked Sendable {
    /// Set right after the RM is created with ``handle(_:)`` as its handler.
    public var rm: ResourceManager?
    let log: LogStore
    let payload: [UInt8]
    /// The prepare / commit record: the payload's first 16 bytes, built once rather than per notification.
    let shortRecord: [UInt8]
    private let committed = Atomic<Int>(0)

    public init(log: LogStore, recordSize: Int) {
        self.log = log
        payload = [UInt8](repeating: 0x5A, count: recordSize)
        shortRecord = Array(payload.prefix(16))
    }

    /// Enlists in `tx` and appends one work record.
    public func work(_ tx: Transaction, mask: NotificationMask) throws {
        guard let rm, let stream = rm.stream else { return }
        _ = try rm.enlist(tx, mask: mask)
        try stream.append(payload)
    }

    /// The RM's notification handler.
    public func handle(_ n: TransactionNotification) {
        guard let e = n.enlistment, let stream = rm?.stream else { return }
        do {
            switch n.kind {
            case .prePrepare: try e.prePrepareComplete()
            case .prepare:
                try stream.append(shortRecord)
                try e.prepareComplete()
            case .singlePhaseCommit:
                let lsn = try stream.append(shortRecord)
                stream.whenDurable(lsn) { error in
                    if error != nil {
                        try? e.rollback()
                        return
                    }
                    try? e.commitComplete()
                    self.finished(upTo: lsn)
                }
            case .commit:
                try e.commitComplete()
                finished(upTo: nil)
            case .rollback: try e.rollbackComplete()
            default: break
            }
        } catch {
            try? e.rollback()
        }
    }

    /// Counts a finished transaction; every 4096th advances the stream's base to `lsn` (nil: the
    /// stream's last record, looked up only then, since reading it takes the log's lock).
    private func finished(upTo lsn: LSN?) {
        let n = committed.add(1, ordering: .relaxed).newValue
        if n % 4096 == 0, let stream = rm?.stream {
            // Bench only: this RM never recovers, so its records are not needed once durable.
            let target = min(log.durableLSN, lsn ?? stream.lastLSN)
            if target.isValid, target > stream.baseLSN { try? stream.advanceBase(to: target) }
        }
    }
}
