// A durable, transactional, ordered key-value store: a resource manager of a TransactionManager.

import Dispatch
import LogStore
import Synchronization
import TransactionManager

/// A durable ordered map from byte-string keys to byte-string values, and a durable resource manager.
///
/// ```swift
/// let accounts = try KVStore.open(transactionManager: tm, id: accountsID, directory: dir)
/// let tx = try tm.createTransaction()
/// let view = try accounts.begin(tx)
/// try view.put(Array("alice".utf8), Array("100".utf8))
/// try await tx.commit()                 // throws `conflict` if a concurrent transaction interfered
/// ```
///
/// - Writes are buffered in the transaction and logged to the store's own stream at prepare (one
///   record holding every write); commit applies them. Two stores in one transaction commit or roll
///   back together; a transaction whose only participant is one store (no other store enlisted, not even
///   to read) commits in a single phase.
/// - Checkpoints write every committed key to a snapshot file (temporary name, fsync, rename, directory
///   fsync), record it in the stream's restart area and move the stream's base, so recovery reads the
///   snapshot plus the records after it and the log recycles.
/// - Memory: every key and value is held in memory (about the data size plus ~160 bytes per key);
///   a store is meant for data that fits in RAM. See docs/KV.md.
public final class KVStore: @unchecked Sendable {
    /// The store's identity: its resource manager's id (its stream is `rm-<id>`).
    public let id: GUID
    let tm: TransactionManager
    let directory: String
    let io: any FileIO
    private(set) var rm: ResourceManager!
    var stream: LogStream { rm.stream! }

    /// Guards the store's state; held only briefly, never across a log append, so reads (``get(_:)``,
    /// ``scan(from:to:limit:)``, a view's operations), which callers make from async tasks, never wait for
    /// the log.
    let lock = Lock()
    /// Held by every append of a store record together with the decisions it goes with (validation at
    /// prepare and single-phase commit, commit, rollback, the checkpoint's notes, close and giving back
    /// reservations), from the decision until its result is in the state. The append itself, which may
    /// wait (back-pressure, a full log), runs holding this one and not `lock`; so these steps still take
    /// turns as they did under `lock`, and the stream's order is the order of the decisions (see docs/KV.md,
    /// "Locks and the log's order"). Order: `checkpointLock`, then this, then `lock`.
    let appendLock = Lock()
    // Guarded by lock.
    /// Committed keys and values (frozen while a checkpoint reads them).
    var values = CommittedTable()
    var index = SortedKeyIndex()
    var commitSeq: UInt64 = 0
    /// The keys of recent commits, in commit order, for validating range scans (see `validateLocked`).
    var recentWrites: [(seq: UInt64, keys: [Key])] = []
    /// Commits at or below this were dropped from `recentWrites` while an older transaction was still
    /// open; a range scan begun before it can no longer be validated and conflicts.
    var historyFloor: UInt64 = 0
    /// Most commits `recentWrites` keeps for transactions left open; set lower by tests.
    var historyLimit = 65_536
    /// `recentWrites.count` that triggers the next trim (amortises the trim's cost).
    var trimAt = 4096
    /// Keys locked by prepared (or single-phase committing) transactions.
    var locks: [Key: GUID] = [:]
    var active: [GUID: KVTransaction] = [:]
    /// Prepared in the log, outcome not yet known (after recovery): writes by transaction.
    var pending: [GUID: [KVWrite]] = [:]
    /// Keys that two or more transactions recovered prepared write (see `unlockPendingLocked`).
    var sharedPendingKeys: Set<Key> = []
    /// Single-phase commits appended and waiting for their flush.
    var onePhaseInFlight: [GUID: [KVWrite]] = [:]
    /// Pending transactions the TM sent a recover notification for.
    var recoverNotified: Set<GUID> = []
    /// Prepared transactions (live or pending) holding a reservation for their outcome record, so that
    /// record never fails for lack of space (see `prepare` in KVStore+Protocol.swift).
    var outcomeReserved: Set<GUID> = []
    /// The store holds a reservation for its next restart area (see KVStore+RestartRoom.swift).
    var restartRoomHeld = false
    /// Commits whose record the log refused: for lack of room (a transaction prepared before the store
    /// was opened on a full log, which could not reserve room for it then), or a failed or closed log.
    /// Each is still in `pending` (its keys locked) but not in doubt: the store knows it committed. With
    /// the enlistment to acknowledge once the record is appended (see `catchUpWithTheLog`).
    var unloggedCommits: [GUID: Enlistment] = [:]
    /// The store's RM is closed (by `close()` or by its TM's close): its reservations are given back, and
    /// no more are taken.
    var rmClosed = false
    /// The RM's recovery-complete has been handled: every transaction the TM owed the store at open has
    /// its outcome (or is in doubt). Signalled then, and when the RM closes (see `awaitRecovery`).
    var recoveryCompleted = false
    let recoveryProgress = DispatchSemaphore(value: 0)
    var snapshotGeneration: UInt64 = 0
    var failure: LogError?
    /// Set by `close()`: this instance no longer begins transactions or writes checkpoints (a reopened
    /// instance of the same store may be writing its stream by then).
    var closed = false
    let checkpointLock = Lock()
    /// A checkpoint asked for by the stream's tail-pinned handler is scheduled or running.
    let checkpointScheduled = Atomic<Bool>(false)
    /// Tests only: runs on the checkpointing thread while the table is frozen, outside the store's lock.
    var whileFrozenForTesting: (@Sendable () -> Void)?
    /// Tests only: runs on the notification's thread as a prepare notification arrives, before the lock.
    var beforePrepareForTesting: (@Sendable () -> Void)?
    /// Tests only: runs on the notification's thread as a single-phase commit notification arrives,
    /// before the lock.
    var beforeSinglePhaseForTesting: (@Sendable () -> Void)?
    /// Tests only: runs on the notification's thread as a commit notification arrives, before the lock.
    var beforeCommitForTesting: (@Sendable () -> Void)?
    /// Tests only: runs in `begin` once the store's RM is enlisted, before the view is made.
    var afterEnlistForTesting: (@Sendable () -> Void)?
    var stats = Statistics()

    /// Counters since open. Each transaction counts once, under one heading; an outcome delivered again
    /// is not counted again.
    public struct Statistics: Sendable {
        /// Two-phase commits applied (transactions begun in this instance that wrote here).
        public var commits = 0
        /// Single-phase commits applied (this store was the transaction's only durable participant).
        public var singlePhaseCommits = 0
        /// Vetoes for a failed validation.
        public var conflicts = 0
        /// Transactions begun in this instance and rolled back, including those the store vetoed because
        /// it could not log them (the log full or closed, the store closed) rather than for a conflict.
        public var rollbacks = 0
        /// Transactions recovered prepared (found in the log at open) and then committed.
        public var recoveredCommitted = 0
        /// Transactions recovered prepared (found in the log at open) and then rolled back: by the
        /// transaction manager's outcome, or presumed aborted because it did not know them.
        public var recoveredAborted = 0
    }

    init(id: GUID, tm: TransactionManager, directory: String, io: any FileIO) {
        self.id = id
        self.tm = tm
        self.directory = directory
        self.io = io
    }

    /// Opens (or creates) the store with identity `id` on `tm` (which must be recovered), keeping
    /// snapshot files in `directory` (created if missing; its parent is synced so its entry is durable). Loads the last snapshot, replays the store's stream after it, then
    /// recovers the RM: transactions the TM says committed are applied, rolled-back ones dropped, in-doubt
    /// ones keep their keys locked until resolved, and prepared ones the TM does not know are rolled
    /// back (presumed abort). It returns once that is done, so a read right after it sees every
    /// committed transaction.
    ///
    /// A blocking call (it reads the snapshot and syncs a directory). When an earlier instance of this
    /// store, closed in this process, is still inside a notification handler call for a transaction the
    /// TM owes the store, the TM delivers that transaction's recover notification and outcome once the
    /// call returns, and the open waits for them, at most `recoveryTimeout`: then, or if the calling
    /// task is cancelled, it closes the store again and throws `not-online` (or `terminated`); the
    /// outcome stays owed, and a later open gets it.
    public static func open(
        transactionManager tm: TransactionManager, id: GUID, description: String = "", directory: String, io: any FileIO = PosixFileIO(),
        recoveryTimeout: Duration = .seconds(30)
    ) throws -> KVStore {
        guard !tm.isVolatile else { throw LogError(.invalidArgument, "a KVStore needs a durable transaction manager") }
        if !io.fileExists(directory) {
            do { try io.makeDirectory(directory) } catch {
                // Stores may share the directory: another one's open, at the same time, may have made it
                // since the check (mkdir then says it exists).
                guard io.fileExists(directory) else { throw error }
            }
        }
        // The directory's own entry is durable only once its parent is synced (each checkpoint syncs the
        // directory, not its parent): else a power loss could take the snapshot the restart area names.
        // Also when it exists: an open that failed at this very sync and is retried finds it made.
        try io.fsyncDirectory(parentDirectory(of: directory))
        // An earlier instance of this store may still be writing a checkpoint (its TM closed under it):
        // once that is done, its restart area is the one this open loads, and any later checkpoint of it
        // finds its RM closed and writes nothing.
        withInstanceLock(id: id) {}
        let store = KVStore(id: id, tm: tm, directory: directory, io: io)
        store.rm = try tm.openOrCreateResourceManager(id: id, description: description.isEmpty ? "kv \(id)" : description) { [weak store] n in
            store?.handle(n)
        }
        // The reservations go back when the RM closes, also when its TM closes it and this object is never
        // closed: else they stayed until this object was, and a process that opened the TM and the store
        // again held them twice (the new instance reserves again for the same transactions).
        store.rm.whenClosed { [weak store] in store?.releaseOutcomeReservations() }
        do {
            try store.loadFromLog()
            store.stream.onTailPinned { [weak store] _ in
                // Never checkpoint on the appending thread: it may hold this store's lock.
                guard let store else { return }
                // One at a time, and none scheduled by the checkpoint's own appends: on a log that stays
                // full each checkpoint's append found it full, called this handler again, and the next
                // checkpoint was scheduled, without end. Requests made while one is scheduled or running
                // are covered by it (the next full append after it asks again).
                guard !store.checkpointScheduled.exchange(true, ordering: .acquiringAndReleasing) else { return }
                DispatchQueue.global().async {
                    _ = try? store.checkpoint()
                    store.checkpointScheduled.store(false, ordering: .releasing)
                }
            }
            try store.rm.recover()
            try store.awaitRecovery(timeout: recoveryTimeout)
        } catch {
            // Leave nothing open: the RM, left open, would refuse the next open of this store.
            store.close()
            throw error
        }
        return store
    }

    /// Waits until the RM's recovery-complete was handled. It normally was before `rm.recover()` returned;
    /// it comes later when a handler call of an earlier instance of this store holds the turn of an
    /// enlistment the TM owes this one (see `ResourceManager.recover()`), and the committed writes it
    /// carries would otherwise be missing from the store `open` returns.
    private func awaitRecovery(timeout: Duration) throws {
        let (seconds, attoseconds) = timeout.components
        let nanos = seconds < 0 ? 0 : seconds >= 1 << 32 ? UInt64(1) << 62 : UInt64(seconds) * 1_000_000_000 + UInt64(max(attoseconds, 0) / 1_000_000_000)
        let end = monotonicNanos() &+ nanos
        while true {
            let (done, closed) = lock.withLock { (recoveryCompleted, rmClosed) }
            if done { return }
            if closed { throw LogError(.closed, "store \(id): its resource manager closed before its recovery completed") }
            if Task.isCancelled { throw LogError(.terminated, "store \(id): open cancelled while waiting for its recovery to complete") }
            let now = monotonicNanos()
            if now >= end {
                throw LogError(.notOnline, "store \(id): its recovery did not complete within \(timeout): a handler call of an earlier instance of the store, closed in this process, still holds a transaction the transaction manager owes it; open it again once that call returns")
            }
            // In slices, to notice cancellation.
            _ = recoveryProgress.wait(timeout: .now() + .nanoseconds(Int(min(end - now, 100_000_000))))
        }
    }

    /// One lock per store id in this process, held by each checkpoint from before it
    /// checks that its RM is open until it is written, and taken by ``open(transactionManager:id:description:directory:io:recoveryTimeout:)``.
    /// Without it a checkpoint that began before its TM closed went on while the store was opened again
    /// on a new TM object: its restart area, written after the new instance's checkpoint, took over with
    /// an older snapshot behind the new instance's base, and the commits in between were lost.
    ///
    /// An entry lives only while a checkpoint or an open holds or waits for it (`users` counts them), so
    /// a process that opens many stores over time keeps no lock per store it ever opened. Dropping an
    /// entry nobody uses loses nothing: the next user's fresh lock excludes the same overlaps.
    ///
    /// Keyed by the id alone, not the snapshot directory too: one directory has many spellings (a
    /// trailing slash, a relative path, a symbolic link), and a reopen that spelled it differently got
    /// a lock of its own and did not wait. Stores of one id in different logs (a copied log) merely
    /// take turns.
    nonisolated(unsafe) private static var instanceLocks: [GUID: (lock: Lock, users: Int)] = [:]
    private static let instanceLocksLock = Lock()

    /// Runs `body` holding the instance lock of the store `id`.
    static func withInstanceLock<T>(id key: GUID, _ body: () throws -> T) rethrows -> T {
        let lock = instanceLocksLock.withLock { () -> Lock in
            let entry = instanceLocks[key] ?? (Lock(), 0)
            instanceLocks[key] = (entry.lock, entry.users + 1)
            return entry.lock
        }
        defer {
            instanceLocksLock.withLock {
                if let entry = instanceLocks[key] {
                    instanceLocks[key] = entry.users > 1 ? (entry.lock, entry.users - 1) : nil
                }
            }
        }
        return try lock.withLock(body)
    }

    /// Tests only: whether the instance lock table holds an entry for this store.
    static func hasInstanceLockEntry(id: GUID) -> Bool {
        instanceLocksLock.withLock { instanceLocks[id] != nil }
    }

    /// Starts (or continues) `transaction`'s work in this store: enlists the store's RM.
    ///
    /// - Throws: `closed`; `invalid-state` for a transaction that is no longer active (also one that ended
    ///   while this call enlisted the store); the store's failure (the log's, or `log-full` while a commit
    ///   record the full log refused is not yet appended: it is tried again first, and once it is in, the
    ///   store goes on).
    public func begin(_ transaction: Transaction) throws -> KVTransaction {
        let (existing, failed, isClosed) = lock.withLock { (active[transaction.id], failure != nil, closed || rmClosed) }
        // Before the failure: `close()` says a closed instance throws `closed` (its failure, a full log's
        // say, is no longer this instance's to report or to catch up with). Before the existing view too:
        // the close rolled its transaction back.
        if isClosed { throw LogError(.closed, "store \(id) is closed") }
        if let existing { return existing }
        if failed {
            // A full log may have room again (a checkpoint moved its tail, a container was added).
            catchUpWithTheLog()
            if let failure = lock.withLock({ failure }) { throw failure }
        }
        let e = try rm.enlist(transaction, mask: .all)
        afterEnlistForTesting?()
        return try lock.withLock {
            if let existing = active[transaction.id] { return existing }
            // The transaction may have ended since the enlistment (its timeout, a rollback on another
            // thread), and the store may have had its rollback already, which found no view: one made now
            // would stay for good, holding back the validation history's trimming. The TM changes the
            // state before it sends the outcome, and the lock orders this check against its delivery here.
            let state = transaction.state
            guard state == .active else { throw LogError(.invalidState, "transaction \(transaction.id) is \(state), not active") }
            let view = KVTransaction(store: self, transactionID: transaction.id, enlistment: e, startSeq: commitSeq)
            active[transaction.id] = view
            return view
        }
    }

    /// The committed value of `key` (outside any transaction).
    public func get(_ key: [UInt8]) -> [UInt8]? { lock.withLock { values[Key(key)]?.value.map(Array.init) } }

    /// Committed keys and values in `[start, end)`, outside any transaction, in ascending key order: at most
    /// `limit` of them (none for a limit of 0 or less; a view's ``KVTransaction/scan(from:to:limit:)`` throws
    /// `invalid-argument` for a negative one instead, since it also records the range it read).
    public func scan(from start: [UInt8] = [], to end: [UInt8]? = nil, limit: Int = .max) -> [(key: [UInt8], value: [UInt8])] {
        lock.withLock {
            index.keys(from: Key(start), to: end.map(Key.init), limit: limit).compactMap { k in values[k]?.value.map { (k.bytes, Array($0)) } }
        }
    }

    /// The number of committed keys.
    public var count: Int { lock.withLock { index.count } }

    /// Transactions prepared in this store whose outcome the store has not been told yet (in doubt after
    /// recovery: prepared under a superior that has not decided, say). Their keys stay locked.
    ///
    /// Not listed: a commit the store was told of and whose `commit` record the log refused (full, failed
    /// or closed). Its keys stay locked too, and the store logs and applies it once the log has room (a
    /// full log: `begin` throws `log-full` until then), or the TM sends it again at the next recovery.
    public var inDoubtTransactions: [GUID] { lock.withLock { pending.keys.filter { unloggedCommits[$0] == nil }.sorted() } }

    /// The counters since open.
    public var statistics: Statistics { lock.withLock { stats } }

    /// Closes the store's RM. (The log and TM belong to the caller.) Waits for a checkpoint in progress;
    /// later `begin` and `checkpoint` calls on this instance, and the operations of its views, throw
    /// `closed`. ``get(_:)``, ``scan(from:to:limit:)`` and ``count`` go on answering from what the instance
    /// held when it closed (an instance opened since may have committed more). The room the store held in
    /// the log for outcome records goes back when its RM closes: here, or when its TM is closed.
    public func close() {
        // Under `appendLock` too: a prepare or commit appending now checked `closed` before its append
        // and finishes before the store counts as closed (as when `lock` was held across the append).
        let first = checkpointLock.withLock {
            appendLock.withLock {
                lock.withLock { () -> Bool in
                    defer { closed = true }
                    return !closed
                }
            }
        }
        guard first else { return }
        rm.close()  // gives back the outcome reservations (see `whenClosed` in `open`)
    }

    /// Once the RM is closed: the log stays open, so the space held for outcome records goes back (an
    /// instance opened again reserves it again).
    func releaseOutcomeReservations() {
        // Under `appendLock`: a prepare that is appending takes its reservation before this gives them back.
        let (held, room) = appendLock.withLock {
            lock.withLock { () -> (Int, Bool) in
                rmClosed = true
                unloggedCommits.removeAll()  // owed to the RM's next instance now (the TM sends them again)
                defer {
                    outcomeReserved.removeAll()
                    restartRoomHeld = false
                }
                return (outcomeReserved.count, restartRoomHeld)
            }
        }
        recoveryProgress.signal()  // an open waiting for recovery-complete stops: none will come
        if held > 0 { try? stream.release(recordSizes: [Int](repeating: KVRecord.outcomeSize, count: held)) }
        if room { try? stream.release(recordSizes: [Self.restartRoomSize]) }
    }

    // MARK: Applying committed writes (lock held)

    func applyLocked(_ writes: [KVWrite]) {
        commitSeq += 1
        var keys: [Key] = []
        keys.reserveCapacity(writes.count)
        for w in writes {
            let k = Key(w.key)
            keys.append(k)
            if let v = w.value {
                values.set(k, Entry(value: v[...], version: commitSeq))
                index.insert(k)
            } else {
                values.set(k, nil)
                index.remove(k)
            }
        }
        recentWrites.append((commitSeq, keys))
        if recentWrites.count > min(trimAt, historyLimit) { trimRecentWritesLocked() }
    }

    /// Drops the commits no open transaction needs. If a transaction left open still pins more than
    /// `historyLimit` commits, the oldest are dropped anyway and `historyFloor` marks them, so memory
    /// stays bounded; that transaction's range scans then conflict at commit (a retryable error).
    func trimRecentWritesLocked() {
        let oldest = active.values.map(\.startSeq).min() ?? commitSeq
        var drop = recentWrites.prefix { $0.seq <= oldest }.count  // in commit order
        if recentWrites.count - drop > historyLimit {
            drop = recentWrites.count - historyLimit / 2
            historyFloor = max(historyFloor, recentWrites[drop - 1].seq)
        }
        recentWrites.removeFirst(drop)
        trimAt = max(min(4096, historyLimit), recentWrites.count * 2)
    }

    func unlockLocked(_ tx: GUID, _ writes: [KVWrite]) {
        for w in writes where locks[Key(w.key)] == tx { locks[Key(w.key)] = nil }
    }

    /// Unlocks the keys of `tx`, a transaction recovered prepared and now decided (already removed from
    /// `pending`), and gives each key another pending transaction also writes to that one.
    ///
    /// Recovery may find two undecided `prepare` records of one key: a prepare the store vetoed after
    /// its record was in (no room for its outcome record) or whose `abort` a full log refused leaves its
    /// record with no decision after it, and a later transaction may prepare the key and be in doubt.
    /// The lock table holds one owner per key, so one of them got the key; when the dead one was presumed
    /// aborted it unlocked the key of the one in doubt, and another transaction could write it.
    /// Only keys recovery found written by two of them (`sharedPendingKeys`, never more after the open)
    /// are handed on, so a recovery with many transactions prepared costs nothing more.
    func unlockPendingLocked(_ tx: GUID, _ writes: [KVWrite]) {
        unlockLocked(tx, writes)
        guard !sharedPendingKeys.isEmpty else { return }
        if pending.isEmpty {
            sharedPendingKeys = []
            return
        }
        var freed: Set<Key> = []
        for w in writes where locks[Key(w.key)] == nil && sharedPendingKeys.contains(Key(w.key)) { freed.insert(Key(w.key)) }
        guard !freed.isEmpty else { return }
        for (other, ws) in pending where other != tx {
            for w in ws {
                let k = Key(w.key)
                if locks[k] == nil, freed.contains(k) { locks[k] = other }
            }
        }
    }
}
