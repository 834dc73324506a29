// The audit trail of forced outcomes: the most recent `auditRetention` of them, in memory and in every
// checkpoint, so who forced what outlives the `forced` records a checkpoint lets the log recycle.

import LogStore

/// The most recent forced outcomes, oldest first, at most `limit` (trimmed in amortised O(1)).
struct ForcedOutcomeTrail: Sendable {
    let limit: Int
    private var entries: [ForcedOutcome] = []

    init(limit: Int) { self.limit = min(max(0, limit), TMLimits.maxAuditEntries) }

    /// Adds `f` in LSN order, unless an entry with its LSN is already there: replaying a record the
    /// checkpoint already carries adds nothing. Two concurrent `resolve` calls may report their records
    /// out of LSN order; the later-reported, lower LSN is inserted in place rather than dropped.
    mutating func append(_ f: ForcedOutcome) {
        guard limit > 0 else { return }
        if let last = entries.last, f.lsn <= last.lsn {
            var lo = 0, hi = entries.count  // first entry with an LSN >= f.lsn
            while lo < hi {
                let mid = (lo + hi) / 2
                if entries[mid].lsn < f.lsn { lo = mid + 1 } else { hi = mid }
            }
            guard entries[lo].lsn != f.lsn else { return }
            entries.insert(f, at: lo)
        } else {
            entries.append(f)
        }
        // Up to `limit` extra entries before trimming: each trim removes as many as were appended since.
        if entries.count >= 2 * limit { entries.removeFirst(entries.count - limit) }
    }

    mutating func replace(with fs: [ForcedOutcome]) {
        entries = []
        for f in fs { append(f) }
    }

    /// The retained entries, oldest first, at most `limit`.
    var retained: [ForcedOutcome] { Array(entries.suffix(limit)) }
}

extension TransactionManager {
    /// The most recent forced outcomes (``resolve(_:action:actor:reason:)``, `txlog tm resolve`), oldest
    /// first, at most ``TransactionManagerOptions/auditRetention``: those carried by the last checkpoint
    /// plus the `forced` records after it, after ``recover(progress:isCancelled:)``, and each new one as
    /// soon as its record is appended. Empty for a volatile TM.
    public var forcedOutcomes: [ForcedOutcome] { lock.withLock { audit.retained } }
}
