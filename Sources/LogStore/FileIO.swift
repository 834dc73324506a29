// The file-I/O seam. Every system call the log makes on files goes through this protocol, so tests can
// inject EIO, ENOSPC, short writes and torn writes (see Tests/LogStoreTests/Support/FaultyFileIO.swift).

import LogFormat

/// How to open a file.
public enum FileOpenMode: Sendable, Equatable {
    /// Open an existing file for reading only.
    case readOnly
    /// Open an existing file for reading and writing.
    case readWrite
    /// Create a new file; fail if it exists.
    case createExclusive
}

/// File operations the log needs. Implementations report failures as `LogError` with code `io` and the
/// `errno`. Blocking calls are only ever made from the log's own threads or the caller's thread in
/// synchronous APIs, never from Swift's cooperative pool.
public protocol FileIO: Sendable {
    /// Opens `path` in `mode` (close-on-exec); returns the descriptor. A missing file is `notFound`.
    func open(_ path: String, mode: FileOpenMode) throws -> Int32
    /// Closes a descriptor `open` returned. Never fails: an error of close(2) is ignored.
    func close(_ fd: Int32)
    /// Reads up to `buffer.count` bytes at `offset`; returns the count read (0 at end of file).
    func pread(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws -> Int
    /// Writes the buffers back to back starting at `offset`; returns the count written, which may be short.
    func pwritev(_ fd: Int32, _ buffers: [UnsafeRawBufferPointer], at offset: UInt64) throws -> Int
    /// Makes the file's data (and the metadata needed to read it back) durable.
    func fdatasync(_ fd: Int32) throws
    /// Makes the file's data and all its metadata durable.
    func fsync(_ fd: Int32) throws
    /// fsyncs a directory, making creates, renames and unlinks in it durable.
    func fsyncDirectory(_ path: String) throws
    /// The file's size in bytes.
    func fileSize(_ fd: Int32) throws -> UInt64
    /// Cuts (or extends with zeros) the file to `size` bytes.
    func truncate(_ fd: Int32, to size: UInt64) throws
    /// Renames `from` to `to` atomically, replacing `to` if it exists.
    func rename(_ from: String, _ to: String) throws
    /// Removes the file at `path`; a missing file is `notFound`.
    func unlink(_ path: String) throws
    /// Creates the directory `path` (its parent must exist).
    func makeDirectory(_ path: String) throws
    /// Names in a directory, without `.` and `..`; throws `notFound` if it does not exist.
    func listDirectory(_ path: String) throws -> [String]
    /// Whether anything exists at `path`.
    func fileExists(_ path: String) -> Bool
    /// Takes an exclusive advisory lock without waiting; returns false if another process holds it.
    func tryLockExclusive(_ fd: Int32) throws -> Bool
    /// Asks the kernel to start writing `length` bytes of `fd` from `offset` back to the disk, without
    /// waiting. A long sequential write (a snapshot) that calls this as it goes leaves little for its
    /// final fsync, so that fsync no longer floods the disk queue in front of other files' syncs. A hint:
    /// it never fails and may do nothing (the default does nothing).
    func startWriteback(_ fd: Int32, offset: UInt64, length: UInt64)
    /// The identity of the file `fd` is open on (device and inode), or nil when the implementation cannot
    /// tell (the default). A read-only log compares the base file at its path with the one it opened, so a
    /// log replaced at its path by a copy of itself is noticed (its open containers are the old files).
    func fileIdentity(_ fd: Int32) throws -> FileIdentity?
}

/// Which file a descriptor is open on: two descriptors with the same identity read the same file.
public struct FileIdentity: Sendable, Hashable {
    /// The device the file is on (`st_dev`).
    public var device: UInt64
    /// The file's inode number on that device (`st_ino`).
    public var inode: UInt64

    /// An identity from a device and an inode number.
    public init(device: UInt64, inode: UInt64) {
        self.device = device
        self.inode = inode
    }
}

extension FileIO {
    public func startWriteback(_ fd: Int32, offset: UInt64, length: UInt64) {}
    public func fileIdentity(_ fd: Int32) throws -> FileIdentity? { nil }

    /// Unlinks `path` after freeing its blocks `step` bytes at a time from the end. Freeing a large
    /// file at once holds up every other file's fdatasync on the disk until the whole file is freed:
    /// on ext4 mounted with online `discard` (the project's machines), deleting a 128 MiB file took
    /// fio's write + fdatasync from 0.2 ms to 16–22 ms, and in 4 MiB steps to at most 1.4–2.1 ms. The
    /// log's containers and the KV store's old snapshots are removed this way. Truncation is best
    /// effort (a failure just frees the rest with the unlink); the unlink's error is thrown.
    public func unlinkFreeingGradually(_ path: String, step: UInt64 = 4 << 20) throws {
        if step > 0, let fd = try? open(path, mode: .readWrite) {
            if var size = try? fileSize(fd) {
                while size > step {
                    size -= step
                    guard (try? truncate(fd, to: size)) != nil else { break }
                }
            }
            close(fd)
        }
        try unlink(path)
    }

    /// Writes every byte of `buffers` at `offset`, looping over short writes.
    public func writeAll(_ fd: Int32, _ buffers: [UnsafeRawBufferPointer], at offset: UInt64) throws {
        // Copied only to drop empty buffers (or, below, after a short write): no array per write otherwise.
        var remaining = buffers.contains(where: \.isEmpty) ? buffers.filter { !$0.isEmpty } : buffers
        var position = offset
        while !remaining.isEmpty {
            let n = try pwritev(fd, remaining, at: position)
            guard n > 0 else { throw LogError(.io, "write made no progress", offset: position) }
            position += UInt64(n)
            // The usual case, everything written at once, leaves the array as it is (no copy of it).
            if n == remaining.reduce(0, { $0 + $1.count }) { return }
            var skip = n
            while skip > 0, let first = remaining.first {
                if skip >= first.count {
                    skip -= first.count
                    remaining.removeFirst()
                } else {
                    remaining[0] = UnsafeRawBufferPointer(rebasing: first[skip...])
                    skip = 0
                }
            }
        }
    }

    /// Writes every byte of `bytes` at `offset`, looping over short writes.
    public func writeAll(_ fd: Int32, _ bytes: [UInt8], at offset: UInt64) throws {
        try bytes.withUnsafeBytes { try writeAll(fd, [$0], at: offset) }
    }

    /// Reads exactly `buffer.count` bytes or returns how many were there before end of file.
    public func readFully(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws -> Int {
        var done = 0
        while done < buffer.count {
            let n = try pread(fd, into: UnsafeMutableRawBufferPointer(rebasing: buffer[done...]), at: offset + UInt64(done))
            if n == 0 { break }
            done += n
        }
        return done
    }
}

/// A ``FileIO`` that passes every call to `base`. Conform to it to decorate another implementation
/// (fault injection, tracing, a crash at a chosen step) and implement only the calls that change.
public protocol ForwardingFileIO: FileIO {
    /// The implementation every call goes to unless the conforming type implements it itself.
    var base: any FileIO { get }
}

extension ForwardingFileIO {
    public func open(_ path: String, mode: FileOpenMode) throws -> Int32 { try base.open(path, mode: mode) }
    public func close(_ fd: Int32) { base.close(fd) }
    public func pread(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws -> Int {
        try base.pread(fd, into: buffer, at: offset)
    }
    public func pwritev(_ fd: Int32, _ buffers: [UnsafeRawBufferPointer], at offset: UInt64) throws -> Int {
        try base.pwritev(fd, buffers, at: offset)
    }
    public func fdatasync(_ fd: Int32) throws { try base.fdatasync(fd) }
    public func fsync(_ fd: Int32) throws { try base.fsync(fd) }
    public func fsyncDirectory(_ path: String) throws { try base.fsyncDirectory(path) }
    public func fileSize(_ fd: Int32) throws -> UInt64 { try base.fileSize(fd) }
    public func truncate(_ fd: Int32, to size: UInt64) throws { try base.truncate(fd, to: size) }
    public func rename(_ from: String, _ to: String) throws { try base.rename(from, to) }
    public func unlink(_ path: String) throws { try base.unlink(path) }
    public func makeDirectory(_ path: String) throws { try base.makeDirectory(path) }
    public func listDirectory(_ path: String) throws -> [String] { try base.listDirectory(path) }
    public func fileExists(_ path: String) -> Bool { base.fileExists(path) }
    public func tryLockExclusive(_ fd: Int32) throws -> Bool { try base.tryLockExclusive(fd) }
    public func startWriteback(_ fd: Int32, offset: UInt64, length: UInt64) { base.startWriteback(fd, offset: offset, length: length) }
    public func fileIdentity(_ fd: Int32) throws -> FileIdentity? { try base.fileIdentity(fd) }
}
