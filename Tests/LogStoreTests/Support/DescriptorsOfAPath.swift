// The descriptors a test FileIO wrapper has open on one file. Wrappers that tamper with the reads of one
// file only (TearingIO, TornSlotIO) tell those reads from the others' by descriptor.

import Synchronization

final class DescriptorsOfAPath: Sendable {
    let path: String
    private let fds = Mutex<Set<Int32>>([])

    init(_ path: String) { self.path = path }

    /// Call after every open: remembers `fd` when `path` is the watched one.
    func opened(_ path: String, _ fd: Int32) {
        if path == self.path { fds.withLock { _ = $0.insert(fd) } }
    }

    func closed(_ fd: Int32) { fds.withLock { _ = $0.remove(fd) } }

    func contains(_ fd: Int32) -> Bool { fds.withLock { $0.contains(fd) } }
}
