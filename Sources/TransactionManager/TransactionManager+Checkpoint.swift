// Checkpoints: the TM's transaction table in a restart area, so recovery replays only what came after.

import LogStore

#if canImport(Glibc)
import Glibc
#endif

/// Set on a thread while it writes a checkpoint of any TM of the process (see `checkpoint()`).
private let writingCheckpointKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key, nil)
    return key
}()

extension TransactionManager {
    /// Writes a checkpoint: a restart area holding every durable RM, every logged transaction still
    /// owed work and the most recent forced outcomes (``forcedOutcomes``), and moves the TM stream's base so older TM records can be recycled. Recovery time then
    /// depends on activity since the last checkpoint, not on the log's size.
    ///
    /// The snapshot and the LSN it covers are taken together under the TM's lock; every state change is
    /// made before the record reporting it is appended, so a record at or below that LSN is reflected in
    /// the snapshot, and a record above it is replayed on top (replay is idempotent). Blocks until the
    /// restart area is durable. A checkpoint larger than the log's maximum record size is written in
    /// parts (docs/format/tm-records.md, "Checkpoints in parts").
    ///
    /// Checkpoints run one at a time: two taken concurrently (a call, the periodic one, the tail-pinned
    /// handler) could reach the log in the other order, and the older snapshot would become the restart
    /// area behind a base the newer one had already moved. A checkpoint the tail-pinned handler asks
    /// for on the thread already writing one (its own append found the log full) returns `.null` at
    /// once: the checkpoint in progress is the answer. So does one asked for on a thread writing another
    /// TM's checkpoint (that one's full log called this TM's handler) while one of this TM is in
    /// progress: waited for, two TMs of a log checkpointing at once on a full log each waited for the
    /// other's checkpoint, from inside its own, for ever.
    @discardableResult
    public func checkpoint() throws -> LSN {
        guard let stream else { return .null }
        if lock.withLock({ checkpointThread.map { pthread_equal($0, pthread_self()) != 0 } ?? false }) { return .null }
        // No thread holding one TM's checkpoint lock waits for another's: no cycle of such waits.
        let outer = pthread_getspecific(writingCheckpointKey)
        if outer != nil {
            guard checkpointLock.tryLock() else { return .null }
        } else {
            checkpointLock.lock()
        }
        pthread_setspecific(writingCheckpointKey, UnsafeRawPointer(bitPattern: 1))
        lock.withLock { checkpointThread = pthread_self() }
        defer {
            lock.withLock { checkpointThread = nil }
            pthread_setspecific(writingCheckpointKey, outer)
            checkpointLock.unlock()
        }
        // Room for the restart area: held since recovery or the last checkpoint, else (the log could not
        // give it then) asked for now. Then room for the next one. (Both no-ops unless online: not for
        // `close()`'s final checkpoint.)
        reserveRestartRoom()
        defer { reserveRestartRoom() }
        let (cp, c, heldRoom): (TMCheckpoint, UInt64, Int) = try lock.withLock {
            checkpointScheduled = false
            if state == .failed { throw failure ?? LogError(.failed, "the transaction manager's log failed") }
            if transactionsDetached { throw LogError(.closed, "the transaction manager is closed") }
            guard state == .online || state == .offline else {
                throw LogError(.notOnline, "the transaction manager is \(state.rawValue); recover it before checkpointing")
            }
            recordsSinceCheckpoint = 0
            // A transaction whose latest change is still being appended goes in as it was before that
            // change: the append may fail (log full, record too large), and the transaction is then
            // rolled back, so the snapshot must not make the change durable. The checkpoint covers no
            // further than the LSN before any such record, so recovery replays the record if it landed.
            var txs: [LoggedTransaction] = []
            for t in transactions.values {
                if t.recordInFlight {
                    if let before = t.formBeforeRecord { txs.append(before) }
                } else if t.logged && !t.isFinished {
                    txs.append(t.loggedForm)
                }
            }
            txs.sort { $0.id < $1.id }
            let covered = recordFloors.reduce(stream.lastLSN) { min($0, $1) }
            let cp = TMCheckpoint(
                tm: id, coveredThrough: covered, clock: clock, rms: loggedRMs.values.sorted { $0.id < $1.id }, transactions: txs,
                forcedOutcomes: audit.retained.filter { $0.lsn <= covered })
            // The checkpoint holds the room from here: a stop meanwhile does not give it back under it.
            return (cp, clock, takeRestartRoomLocked())
        }
        afterCheckpointSnapshotForTesting?()
        let bytes = TMRecord.checkpoint(cp).encode(clock: c)
        let maxRecordSize = log?.maxRecordSize ?? bytes.count
        let restartSize = Self.restartRecordSize(checkpointSize: bytes.count, maxRecordSize: maxRecordSize)
        var room = heldRoom
        let stopped = lock.withLock { () -> Bool in
            // The next room is sized from this restart record (TransactionManager+RestartRoom.swift).
            lastRestartSize = restartSize
            return transactionsDetached
        }
        // Stopped (terminate, the log closed under it) since the snapshot: it writes nothing any more, and
        // says `closed` (the stop used to give the room back under it, and the write through the room then
        // failed with `invalid-argument`, "no reservation").
        if stopped {
            returnRestartRoom(room)
            throw LogError(.closed, "the transaction manager is closed")
        }
        // Outgrown: the room goes back before the plain append, which may need the bytes it held.
        if room > 0, restartSize > room {
            try? stream.release(recordSizes: [room])
            room = 0
        }
        do {
            // The base moves past `coveredThrough` to the restart record itself when no TM record came
            // after it: an idle TM then holds nothing older than its restart area (its base used to stay on
            // the previous one, and a full log needed two checkpoints, each with room, to free a container).
            let (lsn, usedRoom) = try Self.writeCheckpoint(
                bytes, tm: id, clock: c, to: stream, maxRecordSize: maxRecordSize, coveredThrough: cp.coveredThrough, room: room)
            if !usedRoom { returnRestartRoom(room) }
            return lsn
        } catch {
            // Refused before the restart record went in (the room is still reserved) or after it (the log
            // failed or closed): told apart by what the stream still has reserved (the TM reserves nothing
            // else on it).
            if room > 0, ((try? stream.info().reservedRecords) ?? 0) > 0 { returnRestartRoom(room) }
            throw error
        }
    }
}
