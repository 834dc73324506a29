// Harness piece T1 of the reliability contract: a FileIO that wraps PosixFileIO and injects faults.
//
// A rule fails the Nth matching call of one operation kind (or, when sticky, the Nth and every later
// one). Matching can be narrowed to calls whose path contains a substring ("txlog.base", "container-").
// Counting starts when the rule is added, so a test can open a log first and arm faults afterwards.
// Every call is logged (kind, path, fd, offset, byte count, whether a fault fired) so tests can assert
// the order of system calls. File descriptors are mapped to paths by recording what open() returned.

import Foundation
@testable import LogStore

final class FaultyFileIO: FileIO, @unchecked Sendable {
    enum Op: String, Sendable, CaseIterable {
        case open, close, pread, pwritev, fdatasync, fsync, fsyncDirectory, fileSize, truncate, rename, unlink
        case makeDirectory, listDirectory, tryLock
    }

    enum Action: Sendable, Equatable {
        /// Throw `LogError(.io, errno:)` without doing the call.
        case fail(errno: Int32)
        /// pwritev only: write at most `maxBytes` (at least 1) and return that short count.
        case shortWrite(maxBytes: Int)
        /// pwritev only: write the first `keepBytes` bytes (always fewer than asked), then throw EIO.
        case tornWrite(keepBytes: Int)
    }

    struct Call: Sendable, CustomStringConvertible {
        var op: Op
        var path: String
        var fd: Int32?
        var offset: UInt64?
        var bytes: Int?
        /// The action of the fault injected into this call, if any.
        var fault: Action?

        var description: String {
            var s = "\(op.rawValue) \(path)"
            if let fd { s += " fd=\(fd)" }
            if let offset { s += " @\(offset)" }
            if let bytes { s += " n=\(bytes)" }
            if let fault { s += " FAULT(\(fault))" }
            return s
        }
    }

    private struct Rule {
        var op: Op
        var nth: Int
        var sticky: Bool
        var action: Action
        var pathContains: String?
        var matched = 0
        var fired = 0
    }

    static let EIO: Int32 = 5
    static let ENOSPC: Int32 = 28

    private let base = PosixFileIO()
    private let lock = NSLock()
    private var rules: [Rule] = []
    private var paths: [Int32: String] = [:]
    private var log: [Call] = []

    init() {}

    // MARK: Configuration and inspection

    /// Adds a fault: the `nth` call (1-based, counted from now) of `op` whose path contains `pathContains`
    /// gets `action`; with `sticky`, every later matching call gets it too.
    func inject(_ op: Op, nth: Int = 1, sticky: Bool = false, _ action: Action = .fail(errno: EIO), pathContains: String? = nil) {
        precondition(nth >= 1)
        switch action {
        case .shortWrite(let n): precondition(op == .pwritev && n >= 1)
        case .tornWrite: precondition(op == .pwritev)
        case .fail: break
        }
        lock.withLock { rules.append(Rule(op: op, nth: nth, sticky: sticky, action: action, pathContains: pathContains)) }
    }

    /// Removes every rule (the call log is kept).
    func clearFaults() { lock.withLock { rules.removeAll() } }

    /// How many faults have fired.
    var faultsFired: Int { lock.withLock { rules.reduce(0) { $0 + $1.fired } } }

    /// Every call so far, in order.
    var calls: [Call] { lock.withLock { log } }

    /// The calls that got a fault.
    var faultedCalls: [Call] { lock.withLock { log.filter { $0.fault != nil } } }

    func clearLog() { lock.withLock { log.removeAll() } }

    /// File descriptors opened through this object and not closed yet, with their paths.
    var openFiles: [Int32: String] { lock.withLock { paths } }

    // MARK: Internals

    private func path(of fd: Int32) -> String { paths[fd] ?? "fd:\(fd)" }

    /// Logs a call and returns the fault to inject into it, if any. Must hold `lock`.
    private func recordLocked(_ op: Op, path: String, fd: Int32? = nil, offset: UInt64? = nil, bytes: Int? = nil) -> Action? {
        var fault: Action?
        for k in rules.indices where rules[k].op == op {
            if let s = rules[k].pathContains, !path.contains(s) { continue }
            rules[k].matched += 1
            let hit = rules[k].sticky ? rules[k].matched >= rules[k].nth : rules[k].matched == rules[k].nth
            if hit, fault == nil {
                rules[k].fired += 1
                fault = rules[k].action
            }
        }
        log.append(Call(op: op, path: path, fd: fd, offset: offset, bytes: bytes, fault: fault))
        return fault
    }

    private func record(_ op: Op, path: String, fd: Int32? = nil, offset: UInt64? = nil, bytes: Int? = nil) -> Action? {
        lock.withLock { recordLocked(op, path: path, fd: fd, offset: offset, bytes: bytes) }
    }

    private func record(_ op: Op, fd: Int32, offset: UInt64? = nil, bytes: Int? = nil) -> Action? {
        lock.withLock { recordLocked(op, path: path(of: fd), fd: fd, offset: offset, bytes: bytes) }
    }

    private func injected(_ op: Op, _ action: Action, path: String) -> LogError {
        let e: Int32
        switch action {
        case .fail(let errno): e = errno
        case .shortWrite, .tornWrite: e = FaultyFileIO.EIO
        }
        return LogError(.io, "injected \(op.rawValue) failure (errno \(e))", path: path, errno: e)
    }

    /// Throws the injected error for non-write actions.
    private func check(_ op: Op, _ fault: Action?, path: String) throws {
        guard let fault else { return }
        throw injected(op, fault, path: path)
    }

    /// The first `limit` bytes of `buffers`.
    private static func prefix(_ buffers: [UnsafeRawBufferPointer], _ limit: Int) -> [UnsafeRawBufferPointer] {
        var out: [UnsafeRawBufferPointer] = []
        var left = limit
        for b in buffers where left > 0 {
            let n = min(left, b.count)
            out.append(UnsafeRawBufferPointer(rebasing: b[0..<n]))
            left -= n
        }
        return out
    }

    // MARK: FileIO

    func open(_ path: String, mode: FileOpenMode) throws -> Int32 {
        try check(.open, record(.open, path: path), path: path)
        let fd = try base.open(path, mode: mode)
        lock.withLock { paths[fd] = path }
        return fd
    }

    func close(_ fd: Int32) {
        lock.withLock {
            _ = recordLocked(.close, path: path(of: fd), fd: fd)
            paths[fd] = nil
        }
        base.close(fd)
    }

    func pread(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws -> Int {
        let fault = record(.pread, fd: fd, offset: offset, bytes: buffer.count)
        try check(.pread, fault, path: lock.withLock { path(of: fd) })
        return try base.pread(fd, into: buffer, at: offset)
    }

    func pwritev(_ fd: Int32, _ buffers: [UnsafeRawBufferPointer], at offset: UInt64) throws -> Int {
        let total = buffers.reduce(0) { $0 + $1.count }
        let fault = record(.pwritev, fd: fd, offset: offset, bytes: total)
        let where_ = lock.withLock { path(of: fd) }
        switch fault {
        case nil:
            return try base.pwritev(fd, buffers, at: offset)
        case .fail?:
            throw injected(.pwritev, fault!, path: where_)
        case .shortWrite(let maxBytes)?:
            return try base.pwritev(fd, FaultyFileIO.prefix(buffers, min(maxBytes, total)), at: offset)
        case .tornWrite(let keepBytes)?:
            // Write the prefix completely (looping over real short writes), then report the error.
            let keep = min(keepBytes, max(0, total - 1))
            var done = 0
            while done < keep {
                var skip = done
                var remaining: [UnsafeRawBufferPointer] = []
                for b in FaultyFileIO.prefix(buffers, keep) {
                    if skip >= b.count {
                        skip -= b.count
                        continue
                    }
                    remaining.append(UnsafeRawBufferPointer(rebasing: b[skip...]))
                    skip = 0
                }
                let n = try base.pwritev(fd, remaining, at: offset + UInt64(done))
                if n <= 0 { break }
                done += n
            }
            throw injected(.pwritev, fault!, path: where_)
        }
    }

    func fdatasync(_ fd: Int32) throws {
        try check(.fdatasync, record(.fdatasync, fd: fd), path: lock.withLock { path(of: fd) })
        try base.fdatasync(fd)
    }

    func fsync(_ fd: Int32) throws {
        try check(.fsync, record(.fsync, fd: fd), path: lock.withLock { path(of: fd) })
        try base.fsync(fd)
    }

    func fsyncDirectory(_ path: String) throws {
        try check(.fsyncDirectory, record(.fsyncDirectory, path: path), path: path)
        try base.fsyncDirectory(path)
    }

    func fileSize(_ fd: Int32) throws -> UInt64 {
        try check(.fileSize, record(.fileSize, fd: fd), path: lock.withLock { path(of: fd) })
        return try base.fileSize(fd)
    }

    func truncate(_ fd: Int32, to size: UInt64) throws {
        try check(.truncate, record(.truncate, fd: fd, offset: size), path: lock.withLock { path(of: fd) })
        try base.truncate(fd, to: size)
    }

    func rename(_ from: String, _ to: String) throws {
        let p = "\(from) -> \(to)"
        try check(.rename, record(.rename, path: p), path: p)
        try base.rename(from, to)
    }

    func unlink(_ path: String) throws {
        try check(.unlink, record(.unlink, path: path), path: path)
        try base.unlink(path)
    }

    func makeDirectory(_ path: String) throws {
        try check(.makeDirectory, record(.makeDirectory, path: path), path: path)
        try base.makeDirectory(path)
    }

    func listDirectory(_ path: String) throws -> [String] {
        try check(.listDirectory, record(.listDirectory, path: path), path: path)
        return try base.listDirectory(path)
    }

    func fileExists(_ path: String) -> Bool { base.fileExists(path) }

    func tryLockExclusive(_ fd: Int32) throws -> Bool {
        try check(.tryLock, record(.tryLock, fd: fd), path: lock.withLock { path(of: fd) })
        return try base.tryLockExclusive(fd)
    }
}

extension FaultyFileIO.Call {
    func matches(_ op: FaultyFileIO.Op, _ pathContains: String?) -> Bool {
        guard self.op == op else { return false }
        guard let pathContains else { return true }
        return path.contains(pathContains)
    }
}

extension [FaultyFileIO.Call] {
    /// The index of the first call matching `op` (and `pathContains`) at or after `from`.
    func firstIndex(_ op: FaultyFileIO.Op, pathContains: String? = nil, from: Int = 0) -> Int? {
        guard from < count else { return nil }
        return self[from...].firstIndex { $0.matches(op, pathContains) }
    }

    /// The index of the last call matching `op` (and `pathContains`).
    func lastIndex(_ op: FaultyFileIO.Op, pathContains: String? = nil) -> Int? {
        lastIndex { $0.matches(op, pathContains) }
    }
}
