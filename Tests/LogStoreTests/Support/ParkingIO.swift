// A FileIO that holds one chosen call open: after `arm()`, the first call at `point` signals `entered`
// and waits for `release`, so a test can run another call (a close, an open, a read) in that window. It
// also records every read, write or sync made through a descriptor after it was closed.

import Dispatch
import Foundation
import LogFormat
@testable import LogStore

final class ParkingIO: ForwardingFileIO, @unchecked Sendable {
    enum Point: Sendable {
        /// The first `fsyncDirectory`.
        case directorySync
        /// The first `pread` of a container file.
        case containerRead
        /// The first `fdatasync` of a container file.
        case containerSync
        /// The first `pwritev` to the base file.
        case baseWrite
        /// The first `open` of a container file, before it opens.
        case containerOpen
    }

    let base: any FileIO = PosixFileIO()
    let point: Point
    /// The parked call then fails with EIO instead of going ahead.
    let failAfterRelease: Bool
    let entered = DispatchSemaphore(value: 0)
    let release = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var paths: [Int32: String] = [:]
    private var closedPaths: [Int32: String] = [:]
    private var armed = false
    private var staleCalls: [String] = []

    init(parkAt point: Point, failAfterRelease: Bool = false) {
        self.point = point
        self.failAfterRelease = failAfterRelease
    }

    func arm() { lock.withLock { armed = true } }
    /// Calls made through a descriptor after it was closed.
    var stale: [String] { lock.withLock { staleCalls } }
    /// Descriptors open now, with their paths.
    var open: [Int32: String] { lock.withLock { paths } }

    func open(_ path: String, mode: FileOpenMode) throws -> Int32 {
        try park(.containerOpen, fd: nil, path: path)
        let fd = try base.open(path, mode: mode)
        lock.withLock {
            paths[fd] = path
            closedPaths[fd] = nil
        }
        return fd
    }
    func close(_ fd: Int32) {
        lock.withLock {
            closedPaths[fd] = paths[fd]
            paths[fd] = nil
        }
        base.close(fd)
    }
    func pread(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws -> Int {
        try park(.containerRead, fd: fd)
        noteIfStale("pread", fd, offset)
        return try base.pread(fd, into: buffer, at: offset)
    }
    func pwritev(_ fd: Int32, _ buffers: [UnsafeRawBufferPointer], at offset: UInt64) throws -> Int {
        try park(.baseWrite, fd: fd)
        noteIfStale("pwritev", fd, offset)
        return try base.pwritev(fd, buffers, at: offset)
    }
    func fdatasync(_ fd: Int32) throws {
        try park(.containerSync, fd: fd)
        noteIfStale("fdatasync", fd, nil)
        try base.fdatasync(fd)
    }
    func fsyncDirectory(_ path: String) throws {
        try park(.directorySync, fd: nil)
        try base.fsyncDirectory(path)
    }

    private func park(_ at: Point, fd: Int32?, path opening: String? = nil) throws {
        let parked: Bool = lock.withLock {
            guard armed, at == point else { return false }
            let path = opening ?? fd.flatMap { paths[$0] } ?? ""
            switch at {
            case .directorySync: break
            case .containerRead, .containerSync, .containerOpen: guard path.contains("container-") else { return false }
            case .baseWrite: guard path.hasSuffix(Format.baseFileName) else { return false }
            }
            armed = false
            return true
        }
        guard parked else { return }
        entered.signal()
        release.wait()
        if failAfterRelease { throw LogError(.io, "injected EIO at the parked call", errno: 5) }
    }

    private func noteIfStale(_ op: String, _ fd: Int32, _ offset: UInt64?) {
        lock.withLock {
            guard paths[fd] == nil else { return }
            staleCalls.append("\(op) fd \(fd) (was \(closedPaths[fd] ?? "?"))" + (offset.map { " @\($0)" } ?? ""))
        }
    }
}
