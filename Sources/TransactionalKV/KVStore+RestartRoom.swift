// Room in the log for the store's next restart area, held as a reservation (CLFS clients reserve space
// for their restart areas the same way). A full log asks the store to checkpoint (its tail-pinned
// handler); the checkpoint's restart area is what moves the store's base and lets containers recycle.
// Found no room, it failed, the base stayed, and the log stayed full for good.

import LogStore
import TransactionManager

extension KVStore {
    /// The largest restart record a checkpoint writes: it names the snapshot file, whose name is longest
    /// with the largest generation. (Transactions still prepared go into `prepare` records, not here.)
    static let restartRoomSize = KVRecord.checkpoint(
        KVCheckpoint(
            store: GUID.random(), snapshotFile: KVSnapshotFile.name(store: GUID.random(), generation: .max),
            coveredThrough: LSN(uncheckedContainer: .max, blockOffset: 0, slot: 0), pending: [])
    ).encode().count

    /// Reserves room for the next restart area unless the store holds it already or its RM is closed.
    /// A log that cannot give the room now (it goes through the log's full-log handling first) leaves the
    /// store without: the next checkpoint's restart area is then a plain append, and tries again after it.
    func reserveRestartRoom() {
        guard lock.withLock({ !restartRoomHeld && !rmClosed }) else { return }
        guard (try? stream.reserve(recordSizes: [Self.restartRoomSize])) != nil else { return }
        let closedMeanwhile = lock.withLock { () -> Bool in
            // The RM closed while the reservation was being made: its release (see
            // `releaseOutcomeReservations`) did not see this one.
            if rmClosed || restartRoomHeld { return true }
            restartRoomHeld = true
            return false
        }
        if closedMeanwhile { try? stream.release(recordSizes: [Self.restartRoomSize]) }
    }

    /// Writes the checkpoint's restart area, through the room held for it when the store holds some, and
    /// notes whether the room is still held afterwards.
    func writeRestartArea(_ checkpoint: KVCheckpoint) throws -> LSN {
        let useRoom = lock.withLock { restartRoomHeld }
        do {
            let lsn = try stream.writeRestartArea(
                KVRecord.checkpoint(checkpoint).encode(), coveredThrough: checkpoint.coveredThrough, usingReservation: useRoom)
            if useRoom { lock.withLock { restartRoomHeld = false } }
            return lsn
        } catch {
            // Refused before the record went in (the reservation is still there), or after it (the log
            // failed or closed, or the stream went): told apart by what the stream still has reserved.
            // Nothing else of the store is reserved at this size (outcome records are smaller).
            if useRoom {
                let held = ((try? stream.info().largestReservedRecord) ?? 0) >= Self.restartRoomSize
                lock.withLock { restartRoomHeld = restartRoomHeld && held }
            }
            throw error
        }
    }
}
