// Room in the log for the TM's next checkpoint, held as a reservation (CLFS clients reserve space for
// their restart areas the same way). A full log asks the TM to checkpoint (its tail-pinned handler); the
// checkpoint's restart area is what moves the TM's base and lets containers recycle. Found no room, it
// failed, the base stayed, and the log stayed full for good.
//
// The room follows the checkpoints: sized from the last restart record (a quarter more, at least
// `checkpointRoom`, at most the log's maximum record size). A fixed 4096 bytes left a TM with many
// transactions in flight no room at all: its checkpoint was a plain append, refused on a full log.

import LogStore

extension TransactionManager {
    /// The smallest room: ``TransactionManagerOptions/checkpointRoom``, at most the log's maximum record
    /// size (0: the TM keeps none).
    var baseRestartRoomSize: Int { min(max(options.checkpointRoom, 0), log?.maxRecordSize ?? 0) }

    /// The record size the next room is reserved at: the last restart record's size and a quarter more,
    /// at least ``baseRestartRoomSize`` (0 when that is 0), at most the log's maximum record size.
    var restartRoomSize: Int { Self.roomSize(after: lock.withLock { lastRestartSize }, base: baseRestartRoomSize, max: log?.maxRecordSize ?? 0) }

    static func roomSize(after last: Int, base: Int, max maxRecordSize: Int) -> Int {
        guard base > 0 else { return 0 }
        let (grown, overflow) = last.addingReportingOverflow(last / 4)
        return min(Swift.max(base, overflow ? maxRecordSize : grown), maxRecordSize)
    }

    /// Reserves room for the next checkpoint's restart area, unless the TM holds it already, is not
    /// online (closing, say), or is volatile. A log that cannot give the room now (it goes through the
    /// log's full-log handling first) leaves the TM with the smallest room, or without: the next
    /// checkpoint's restart area is then a plain append, and tries again after it.
    func reserveRestartRoom() {
        guard let stream, !isVolatile else { return }
        let base = baseRestartRoomSize
        guard base > 0, lock.withLock({ restartRoom == 0 && state == .online }) else { return }
        var size = restartRoomSize
        if (try? stream.reserve(recordSizes: [size])) == nil {
            guard size > base, (try? stream.reserve(recordSizes: [base])) != nil else { return }
            size = base
        }
        let giveBack = lock.withLock { () -> Bool in
            // Stopped meanwhile: its release (`releaseRestartRoom`) did not see this one.
            if state != .online || restartRoom != 0 { return true }
            restartRoom = size
            return false
        }
        if giveBack { try? stream.release(recordSizes: [size]) }
    }

    /// Gives the room back (close, terminate, the log closed under the TM).
    func releaseRestartRoom() {
        let size = lock.withLock { () -> Int in
            defer { restartRoom = 0 }
            return restartRoom
        }
        if size > 0 { try? stream?.release(recordSizes: [size]) }
    }

    /// Takes the room for a checkpoint in progress (under `lock`): from here the checkpoint holds it, and
    /// a stop meanwhile (``releaseRestartRoom()``) cannot give it back under the checkpoint's write.
    func takeRestartRoomLocked() -> Int {
        defer { restartRoom = 0 }
        return restartRoom
    }

    /// A checkpoint's room it did not write through: kept for the next one while the TM is online and
    /// holds no other, else given back.
    func returnRestartRoom(_ size: Int) {
        guard size > 0 else { return }
        let keep = lock.withLock { () -> Bool in
            guard state == .online, restartRoom == 0 else { return false }
            restartRoom = size
            return true
        }
        if !keep { try? stream?.release(recordSizes: [size]) }
    }
}
