// The production FileIO: Glibc system calls, retried on EINTR.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import LogFormat

/// ``FileIO`` backed by the operating system.
public struct PosixFileIO: FileIO {
    /// The system's file I/O.
    public init() {}

    public func open(_ path: String, mode: FileOpenMode) throws -> Int32 {
        let flags: Int32
        // O_NONBLOCK: opening a FIFO put where a log file (or a stray file `verify` describes) belongs
        // must not wait for a writer forever; the read that follows fails instead. Regular files ignore it.
        switch mode {
        case .readOnly: flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK
        case .readWrite: flags = O_RDWR | O_CLOEXEC | O_NONBLOCK
        case .createExclusive: flags = O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC
        }
        try checkPath(path, "open")
        let fd = try retrying("open", path: path) { Glibc.open(path, flags, 0o644) }
        return fd
    }

    public func close(_ fd: Int32) { _ = Glibc.close(fd) }

    public func pread(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws -> Int {
        guard let base = buffer.baseAddress, !buffer.isEmpty else { return 0 }
        let at = try fileOffset(offset, "pread")
        return try retrying("pread") { Glibc.pread(fd, base, buffer.count, at) }
    }

    public func pwritev(_ fd: Int32, _ buffers: [UnsafeRawBufferPointer], at offset: UInt64) throws -> Int {
        let at = try fileOffset(offset, "pwritev")
        // On the stack for the usual few buffers (a batch's blocks): no array per write.
        let count = min(buffers.count, 1024)
        return try withUnsafeTemporaryAllocation(of: iovec.self, capacity: count) { iov in
            for i in 0..<count {
                iov.initializeElement(at: i, to: iovec(iov_base: UnsafeMutableRawPointer(mutating: buffers[i].baseAddress), iov_len: buffers[i].count))
            }
            defer { _ = iov.deinitialize() }
            return try retrying("pwritev") { Glibc.pwritev(fd, iov.baseAddress, Int32(count), at) }
        }
    }

    public func fdatasync(_ fd: Int32) throws { _ = try retrying("fdatasync") { Glibc.fdatasync(fd) } }

    public func fsync(_ fd: Int32) throws { _ = try retrying("fsync") { Glibc.fsync(fd) } }

    /// On Linux, `POSIX_FADV_DONTNEED` starts asynchronous write-back of the range's dirty pages and
    /// then drops the pages already clean. (`sync_file_range` would only start the write-back, but
    /// Swift's Glibc module does not export it.) Errors are ignored: this is only a hint.
    public func startWriteback(_ fd: Int32, offset: UInt64, length: UInt64) {
        guard length > 0 else { return }
        _ = posix_fadvise(fd, off_t(clamping: offset), off_t(clamping: length), POSIX_FADV_DONTNEED)
    }

    public func fsyncDirectory(_ path: String) throws {
        try checkPath(path, "open directory")
        let fd = try retrying("open directory", path: path) { Glibc.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        defer { _ = Glibc.close(fd) }
        _ = try retrying("fsync directory", path: path) { Glibc.fsync(fd) }
    }

    public func fileSize(_ fd: Int32) throws -> UInt64 {
        var st = stat()
        _ = try retrying("fstat") { fstat(fd, &st) }
        return UInt64(st.st_size)
    }

    public func fileIdentity(_ fd: Int32) throws -> FileIdentity? {
        var st = stat()
        _ = try retrying("fstat") { fstat(fd, &st) }
        return FileIdentity(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
    }

    public func truncate(_ fd: Int32, to size: UInt64) throws {
        let length = try fileOffset(size, "ftruncate")
        _ = try retrying("ftruncate") { ftruncate(fd, length) }
    }

    public func rename(_ from: String, _ to: String) throws {
        try checkPath(from, "rename")
        try checkPath(to, "rename")
        _ = try retrying("rename", path: to) { Glibc.rename(from, to) }
    }

    public func unlink(_ path: String) throws {
        try checkPath(path, "unlink")
        _ = try retrying("unlink", path: path) { Glibc.unlink(path) }
    }

    public func makeDirectory(_ path: String) throws {
        try checkPath(path, "mkdir")
        _ = try retrying("mkdir", path: path) { Glibc.mkdir(path, 0o755) }
    }

    public func listDirectory(_ path: String) throws -> [String] {
        try checkPath(path, "opendir")
        guard let dir = opendir(path) else {
            let e = errno
            throw LogError(e == ENOENT ? .notFound : .io, "cannot list directory: \(errorText(e))", path: path, errno: e)
        }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// A path with a NUL byte names no file (the system would read it only up to the NUL).
    public func fileExists(_ path: String) -> Bool { !path.utf8.contains(0) && access(path, F_OK) == 0 }

    public func tryLockExclusive(_ fd: Int32) throws -> Bool {
        while true {
            if flock(fd, LOCK_EX | LOCK_NB) == 0 { return true }
            let e = errno
            if e == EINTR { continue }
            if e == EWOULDBLOCK { return false }
            throw LogError(.io, "flock failed: \(errorText(e))", errno: e)
        }
    }

    /// Throws `invalidArgument` for a path with a NUL byte: the system reads a path only up to its first NUL,
    /// so such a path named another file (`LogStore.create(at: "x/log\0y")` made and used `x/log`).
    private func checkPath(_ path: String, _ op: String) throws {
        guard !path.utf8.contains(0) else { throw LogError(.invalidArgument, "\(op): the path contains a NUL byte", path: path) }
    }

    /// `offset` as the system's file offset, or `invalidArgument` for one beyond `off_t.max` (a caller's
    /// offset or size there trapped converting it).
    private func fileOffset(_ offset: UInt64, _ op: String) throws -> off_t {
        guard let o = off_t(exactly: offset) else {
            throw LogError(.invalidArgument, "\(op): offset \(offset) is beyond the largest file offset \(off_t.max)", offset: offset)
        }
        return o
    }

    /// Runs a call that returns -1 and sets errno on failure, retrying EINTR.
    private func retrying<T: BinaryInteger>(_ op: String, path: String? = nil, _ call: () -> T) throws -> T {
        while true {
            let r = call()
            if r >= 0 { return r }
            let e = errno
            if e == EINTR { continue }
            let code: LogError.Code = e == ENOENT ? .notFound : .io
            throw LogError(code, "\(op) failed: \(errorText(e))", path: path, errno: e)
        }
    }
}

/// The text of an errno value.
func errorText(_ e: Int32) -> String {
    guard let s = strerror(e) else { return "errno \(e)" }
    return String(cString: s)
}
