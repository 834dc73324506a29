// A file-I/O seam that holds the log's writes, or its syncs, while closed: race probes park the log's
// writer at a chosen point, race something against it, then let it go.

import Foundation
import LogStore

/// Holds every `pwritev`, or every `fdatasync` and `fsync`, while closed; `open()` lets them go.
final class GateIO: ForwardingFileIO, @unchecked Sendable {
    enum Holds { case writes, syncs }

    let base: any FileIO = PosixFileIO()
    private let holds: Holds
    private let condition = NSCondition()
    private var closed = false

    init(holding holds: Holds) { self.holds = holds }

    func close() { condition.withLock { closed = true } }

    func open() {
        condition.withLock {
            closed = false
            condition.broadcast()
        }
    }

    private func pass(_ kind: Holds) {
        guard kind == holds else { return }
        condition.withLock { while closed { condition.wait() } }
    }

    func pwritev(_ fd: Int32, _ buffers: [UnsafeRawBufferPointer], at offset: UInt64) throws -> Int {
        pass(.writes)
        return try base.pwritev(fd, buffers, at: offset)
    }

    func fdatasync(_ fd: Int32) throws {
        pass(.syncs)
        try base.fdatasync(fd)
    }

    func fsync(_ fd: Int32) throws {
        pass(.syncs)
        try base.fsync(fd)
    }
}
