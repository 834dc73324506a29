// A throwaway log for one benchmark: created in setup, closed and removed in teardown; or left as a
// crash leaves it, for the benchmarks that time recovery.

import Foundation
import LogStore
@_exported import TxLogBenchData

public final class LogFixture: @unchecked Sendable {
    public let path: String
    private var store: LogStore?
    /// Advances across iterations so consecutive records differ.
    public var counter = 0

    public init(_ name: String) {
        path = NSTemporaryDirectory() + "txlog-benchmarks-\(getpid())-\(name)"
    }

    /// The open log (only between `create` and `remove`).
    public var log: LogStore {
        guard let store else { preconditionFailure("LogFixture.log used outside setup/teardown") }
        return store
    }

    public func create(containerSize: UInt64 = 128 << 20, containerCount: Int = 4, codec: Codec = .lz4) throws {
        try? FileManager.default.removeItem(atPath: path)
        var options = LogCreateOptions(containerSize: containerSize, containerCount: containerCount)
        options.codec = codec
        store = try LogStore.create(at: path, options: options)
        counter = 0
    }

    /// Reopens the log (after `close`), e.g. read-only.
    public func open(_ options: LogOpenOptions = .init()) throws {
        store = try LogStore.open(at: path, options: options)
    }

    public func close() throws {
        try store?.close()
        store = nil
    }

    public func remove() {
        try? store?.close()
        store = nil
        try? FileManager.default.removeItem(atPath: path)
        try? FileManager.default.removeItem(atPath: crashImage)
    }

    /// Where `crash()` keeps the crashed log's files.
    private var crashImage: String { path + "-crash" }

    /// Leaves the open log as a crash would: everything is flushed, and the log's files, copied while it is
    /// open (its base file still says so, with the scan start where the last open left it), replace it. The
    /// next open runs the whole recovery scan; a clean close would have moved the scan start to the end, so
    /// that the open after it scans nothing. `restoreCrash()` brings the crashed files back after an open.
    public func crash() throws {
        try log.flush()
        try? FileManager.default.removeItem(atPath: crashImage)
        try FileManager.default.copyItem(atPath: path, toPath: crashImage)
        try close()
        try restoreCrash()
    }

    /// Puts the files `crash()` saved back in place of the log (closed).
    public func restoreCrash() throws {
        try? FileManager.default.removeItem(atPath: path)
        try FileManager.default.copyItem(atPath: crashImage, toPath: path)
    }
}

/// Appends, recycling containers when the log is full (moves the base to the durable point).
@discardableResult
public func appendRecycling(_ log: LogStore, _ bytes: UnsafeRawBufferPointer) throws -> LSN {
    while true {
        do { return try log.append(bytes) } catch let e as LogError where e.code == .logFull {
            try log.flush()
            let durable = log.durableLSN
            if durable.isValid, durable > log.baseLSN { try log.advanceBase(to: durable) }
        }
    }
}

/// Async variant for benchmarks that commit from tasks.
@discardableResult
public func appendRecycling(_ log: LogStore, _ bytes: UnsafeRawBufferPointer) async throws -> LSN {
    while true {
        do { return try log.append(bytes) } catch let e as LogError where e.code == .logFull {
            try await log.flush()
            let durable = log.durableLSN
            if durable.isValid, durable > log.baseLSN { try log.advanceBase(to: durable) }
        }
    }
}

/// Monotonic nanoseconds.
@inline(__always) public func nowNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}
