import Foundation
import LogStore

/// A FileIO that ends the process with `_exit(137)` at the Nth write or sync, either before performing it
/// or right after: a crash at an exact step, for whitebox crash tests. Other calls pass through.
final class KillingFileIO: ForwardingFileIO, @unchecked Sendable {
    let base: any FileIO = PosixFileIO()
    private let lock = NSLock()
    private var count = 0
    private let killAt: Int
    private let after: Bool

    /// `killAt` counts pwritev, fdatasync, fsync and directory fsync calls from 1; 0 never kills.
    init(killAt: Int, after: Bool) {
        self.killAt = killAt
        self.after = after
    }

    private func step(_ body: () throws -> Void) rethrows {
        let n = lock.withLock {
            count += 1
            return count
        }
        if n == killAt && !after { _exit(137) }
        try body()
        if n == killAt && after { _exit(137) }
    }

    func pwritev(_ fd: Int32, _ buffers: [UnsafeRawBufferPointer], at offset: UInt64) throws -> Int {
        var n = 0
        try step { n = try base.pwritev(fd, buffers, at: offset) }
        return n
    }
    func fdatasync(_ fd: Int32) throws { try step { try base.fdatasync(fd) } }
    func fsync(_ fd: Int32) throws { try step { try base.fsync(fd) } }
    func fsyncDirectory(_ path: String) throws { try step { try base.fsyncDirectory(path) } }
}
