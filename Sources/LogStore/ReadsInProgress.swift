// The reads in progress on the log's descriptors, so that nothing closes a descriptor under a read (it
// would read through a closed descriptor, EBADF, or through its number reused by another file).

/// Reads in progress, counted per container descriptor. Kept in `LogCore.state` (under `lock`).
///
/// Whatever closes container descriptors first takes them out of the live container table (a removal,
/// recycling's deletions, a read-only refresh) or marks the log closed, so no read that starts afterwards
/// can pick them up; it then waits only for the reads already using *those* descriptors. A wait for every
/// read to pause instead (one log-wide count) never ended under readers that keep reading other
/// containers, and was held up by any read of any container.
struct ReadsInProgress {
    /// Reads in progress, whatever they use: close() waits for all of them before it releases the files.
    private(set) var total = 0
    /// How many of them use each container descriptor (no entry: none).
    private var byFD: [Int32: Int] = [:]

    /// Counts a read that will use the container descriptor `fd` (nil: only the log's own files, the
    /// base file), before `lock` is let go after looking it up.
    mutating func begin(_ fd: Int32?) {
        total += 1
        if let fd { byFD[fd, default: 0] += 1 }
    }

    /// Counts a read (a block walk) that will use every descriptor of `fds`.
    mutating func begin(_ fds: [Int32]) {
        total += 1
        for fd in fds { byFD[fd, default: 0] += 1 }
    }

    /// Ends a read counted by `begin` of one descriptor. Returns whether a waiter may now go on (a
    /// descriptor's last read or the last read of all ended).
    mutating func end(_ fd: Int32?) -> Bool {
        total -= 1
        return (fd.map { endUse($0) } ?? false) || total == 0
    }

    /// Ends a read counted by `begin` of several, as `end` of one.
    mutating func end(_ fds: [Int32]) -> Bool {
        total -= 1
        var someDone = total == 0
        for fd in fds where endUse(fd) { someDone = true }
        return someDone
    }

    /// Ends the use of `fd` by a read counted by `begin` of several that goes on with the others (a block
    /// walk done with one container); its `end` then names only the others. Returns whether a waiter may
    /// now go on.
    mutating func release(_ fd: Int32) -> Bool { endUse(fd) }

    private mutating func endUse(_ fd: Int32) -> Bool {
        guard let n = byFD[fd] else { return false }
        if n > 1 {
            byFD[fd] = n - 1
            return false
        }
        byFD[fd] = nil
        return true
    }

    /// Whether a read in progress uses any of `fds`.
    func using(_ fds: [Int32]) -> Bool { fds.contains { byFD[$0] != nil } }
}

extension LogCore {
    /// Ends a read counted with `state.reads.begin` of one descriptor (or none), waking the waiters it may free.
    func endRead(_ fd: Int32?) {
        lock.withLock { if state.reads.end(fd) { readsDone.broadcast() } }
    }

    /// Ends a read counted with `state.reads.begin` of several descriptors.
    func endRead(_ fds: [Int32]) {
        lock.withLock { if state.reads.end(fds) { readsDone.broadcast() } }
    }

    /// Ends the use of one descriptor by a read of several that goes on (`state.reads.release`).
    func releaseRead(_ fd: Int32) {
        lock.withLock { if state.reads.release(fd) { readsDone.broadcast() } }
    }
}
