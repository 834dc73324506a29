// The recovery scan of an open asks `LogOpenOptions.isCancelled` before every block it reads. Before, an
// open had no way to stop: a terminate racing the online of a large log that was not closed cleanly
// waited for every block to be read.

import Foundation
import Synchronization
import Testing
import TxLogTestSupport
@testable import LogStore

/// Counts the reads of container files (also per file: `ReadOnlyRefreshIdleTests`).
final class ContainerReadCountingIO: ForwardingFileIO, @unchecked Sendable {
    let base: any FileIO = PosixFileIO()
    private let paths = Mutex<[Int32: String]>([:])
    private let reads = Atomic<Int>(0)
    private let perFile = Mutex<[String: Int]>([:])
    var containerReads: Int { reads.load(ordering: .sequentiallyConsistent) }
    /// Reads so far, per container file (path).
    var readsPerFile: [String: Int] { perFile.withLock { $0 } }
    /// Descriptors opened through this object and not closed yet.
    var openCount: Int { paths.withLock { $0.count } }

    func open(_ path: String, mode: FileOpenMode) throws -> Int32 {
        let fd = try base.open(path, mode: mode)
        paths.withLock { $0[fd] = path }
        return fd
    }

    func close(_ fd: Int32) {
        paths.withLock { _ = $0.removeValue(forKey: fd) }
        base.close(fd)
    }

    func pread(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws -> Int {
        if let path = paths.withLock({ $0[fd] }), path.contains("container") {
            reads.add(1, ordering: .sequentiallyConsistent)
            perFile.withLock { $0[path, default: 0] += 1 }
        }
        return try base.pread(fd, into: buffer, at: offset)
    }
}

enum OpenCancellationKit {
    /// Blocks in the crash image: one record per 1 KiB block.
    static let blocks = 3000

    /// A crash image (the files copied while the log was open, everything flushed) of a log whose
    /// recovery scan reads `blocks` blocks.
    static func crashImageWithManyBlocks(_ tag: String) throws -> String {
        let live = FaultTestKit.temporaryPath("\(tag)-live")
        defer { FaultTestKit.remove(live) }
        let log = try LogStore.create(
            at: live, options: LogCreateOptions(containerSize: 4 << 20, containerCount: 2, blockSize: 1024, codec: .none))
        let record = [UInt8](repeating: 5, count: 900)  // two do not fit a block
        for _ in 0..<blocks { try log.append(record) }
        try log.flush()
        let image = try FaultTestKit.copy(live, tag: tag)
        try removingOnThrow(image) { try log.close() }
        return image
    }
}

@Suite("Cancelling an open during its recovery scan")
struct OpenCancellationTests {
    @Test("an open cancelled mid-scan throws terminated at once and leaves the log unlocked")
    func cancelledMidScan() throws {
        let dir = try OpenCancellationKit.crashImageWithManyBlocks("open-cancel-mid-scan")
        defer { FaultTestKit.remove(dir) }
        let io = ContainerReadCountingIO()
        var options = LogOpenOptions()
        options.isCancelled = { io.containerReads >= 100 }
        expectLogError(.terminated) { _ = try LogStore.open(at: dir, options: options, io: io) }
        // Without the check the scan read every block before anything looked at cancellation.
        #expect(io.containerReads < OpenCancellationKit.blocks / 10, "\(io.containerReads) container reads")
        #expect(io.openCount == 0, "descriptors left open")
        // Nothing is locked or changed: the next open scans the whole log and finds every record.
        let log = try LogStore.open(at: dir)
        #expect(log.recoveryReport.blocksScanned == OpenCancellationKit.blocks)
        var cursor = try log.records()
        var count = 0
        while try cursor.next() != nil { count += 1 }
        #expect(count == OpenCancellationKit.blocks)
        try log.close()
    }

    @Test("an open cancelled before it starts reads no block")
    func cancelledBeforeTheScan() throws {
        let dir = try OpenCancellationKit.crashImageWithManyBlocks("open-cancel-before")
        defer { FaultTestKit.remove(dir) }
        let io = ContainerReadCountingIO()
        var options = LogOpenOptions()
        options.isCancelled = { true }
        expectLogError(.terminated) { _ = try LogStore.open(at: dir, options: options, io: io) }
        #expect(io.containerReads < 10, "\(io.containerReads) container reads")
        #expect(io.openCount == 0, "descriptors left open")
        try LogStore.open(at: dir).close()
    }

    /// A writable open waits up to 250 ms for a lock that looks held (a child lent the descriptor by a
    /// fork). That loop did not ask `isCancelled`: a terminate racing an open of a log held elsewhere
    /// waited out the whole window and then got `locked`.
    @Test("an open cancelled while it waits for the log's lock throws terminated")
    func cancelledWhileWaitingForTheLock() throws {
        let dir = FaultTestKit.temporaryPath("open-cancel-lock")
        defer { FaultTestKit.remove(dir) }
        let holder = try LogStore.create(at: dir, options: FaultTestKit.tinyOptions(containers: 2))
        let io = ContainerReadCountingIO()
        let asked = Atomic<Int>(0)
        var options = LogOpenOptions()
        options.isCancelled = { asked.add(1, ordering: .sequentiallyConsistent).newValue > 1 }  // after one failed attempt
        expectLogError(.terminated) { _ = try LogStore.open(at: dir, options: options, io: io) }
        #expect(asked.load(ordering: .sequentiallyConsistent) == 2)
        #expect(io.openCount == 0, "descriptors left open")
        try holder.close()
        try LogStore.open(at: dir).close()
    }

    /// `create` zero-fills and syncs every container before the log exists; a terminate racing the
    /// online of a log being created waited for all of them.
    @Test("a create cancelled between containers removes what it made and throws terminated")
    func cancelledCreate() throws {
        let dir = FaultTestKit.temporaryPath("create-cancel")
        defer { FaultTestKit.remove(dir) }
        let asked = Atomic<Int>(0)
        var options = LogOpenOptions()
        options.isCancelled = { asked.add(1, ordering: .sequentiallyConsistent).newValue > 2 }  // after two containers
        expectLogError(.terminated) {
            _ = try LogStore.create(at: dir, options: FaultTestKit.tinyOptions(containers: 8), openOptions: options)
        }
        #expect(asked.load(ordering: .sequentiallyConsistent) == 3)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)
        let log = try LogStore.create(at: dir, options: FaultTestKit.tinyOptions(containers: 8))
        #expect(log.info().containers.count == 8)
        try log.close()
    }
}
