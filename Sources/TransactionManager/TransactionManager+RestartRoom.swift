// Room in the log for the TM's next checkpoint, held as a reservation (CLFS clients reserve space for
// their restart areas the same way). A full log asks the TM to checkpoint (its tail-pinned handler); the
// checkpoint's restart area is what moves the TM's base and lets containers recycle. Found no room, it
// failed, the base stayed, and the log stayed full for good.

import LogStore

extension TransactionManager {
    /// The record size to reserve: ``TransactionManagerOptions/checkpointRoom``, at most the log's
    /// maximum record size.
    var restartRoomSize: Int { min(max(options.checkpointRoom, 0), log?.maxRecordSize ?? 0) }

    /// Reserves room for the next checkpoint's restart area, unless the TM holds it already, is not
    /// online (closing, say), or is volatile. A log that cannot give the room now (it goes through the
    /// log's full-log handling first) leaves the TM without: the next checkpoint's restart area is then a
    /// plain append, and tries again after it.
    func reserveRestartRoom() {
        guard let stream, !isVolatile else { return }
        let size = restartRoomSize
        guard size > 0, lock.withLock({ restartRoom == 0 && state == .online }) else { return }
        guard (try? stream.reserve(recordSizes: [size])) != nil else { return }
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
}
