// A file-I/O seam that holds the log's writes, or its syncs, while closed: race probes park the log's
// writer at a chosen point, race something against it, then let it go.

import Foundation
import LogStore

/// Holds every `pwritev`, or every `fdatasync` and `fsync`, while closed; `open()` lets them go.
public final class GateIO: ForwardingFileIO, @unchecked Sendable {
    public enum Holds: Sendable { case writes, syncs }

    public let base: any FileIO = PosixFileIO()
    private let holds: Holds
    private let condition = NSCondition()
    private var closed = false
    private var held = 0

    public init(holding holds: Holds) { self.holds = holds }

    /// Holds the calls from now on.
    public func close() { condition.withLock { closed = true } }

    /// Lets the held calls go, and those that come later.
    public func open() {
        condition.withLock {
            closed = false
            condition.broadcast()
        }
    }

    /// Waits (blocking its thread) until a call is held at the gate: the writer, parked mid-write.
    public func waitUntilHolding() {
        condition.withLock { while held == 0 { condition.wait() } }
    }

    private func pass(_ kind: Holds) {
        guard kind == holds else { return }
        condition.withLock {
            held += 1
            condition.broadcast()
            while closed { condition.wait() }
            held -= 1
        }
    }

    public func pwritev(_ fd: Int32, _ buffers: [UnsafeRawBufferPointer], at offset: UInt64) throws -> Int {
        pass(.writes)
        return try base.pwritev(fd, buffers, at: offset)
    }

    public func fdatasync(_ fd: Int32) throws {
        pass(.syncs)
        try base.fdatasync(fd)
    }

    public func fsync(_ fd: Int32) throws {
        pass(.syncs)
        try base.fsync(fd)
    }
}
