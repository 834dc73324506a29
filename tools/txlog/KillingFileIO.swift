import Foundation
import LogStore

/// A FileIO that ends the process with `_exit(137)` at the Nth write or sync, either before performing it
/// or right after: a crash at an exact step, for whitebox crash tests. Other calls pass through.
final class KillingFileIO: FileIO, @unchecked Sendable {
    private let inner = PosixFileIO()
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

    func open(_ path: String, mode: FileOpenMode) throws -> Int32 { try inner.open(path, mode: mode) }
    func close(_ fd: Int32) { inner.close(fd) }
    func pread(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws -> Int {
        try inner.pread(fd, into: buffer, at: offset)
    }
    func pwritev(_ fd: Int32, _ buffers: [UnsafeRawBufferPointer], at offset: UInt64) throws -> Int {
        var n = 0
        try step { n = try inner.pwritev(fd, buffers, at: offset) }
        return n
    }
    func fdatasync(_ fd: Int32) throws { try step { try inner.fdatasync(fd) } }
    func fsync(_ fd: Int32) throws { try step { try inner.fsync(fd) } }
    func fsyncDirectory(_ path: String) throws { try step { try inner.fsyncDirectory(path) } }
    func fileSize(_ fd: Int32) throws -> UInt64 { try inner.fileSize(fd) }
    func truncate(_ fd: Int32, to size: UInt64) throws { try inner.truncate(fd, to: size) }
    func rename(_ from: String, _ to: String) throws { try inner.rename(from, to) }
    func unlink(_ path: String) throws { try inner.unlink(path) }
    func makeDirectory(_ path: String) throws { try inner.makeDirectory(path) }
    func listDirectory(_ path: String) throws -> [String] { try inner.listDirectory(path) }
    func fileExists(_ path: String) -> Bool { inner.fileExists(path) }
    func tryLockExclusive(_ fd: Int32) throws -> Bool { try inner.tryLockExclusive(fd) }
}
