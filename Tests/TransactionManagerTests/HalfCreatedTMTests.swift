// A TM create that stopped part-way leaves a stream `openOrCreate` must be able to finish.

import Foundation
import LogStore
import Synchronization
import Testing
@testable import TransactionManager

/// PosixFileIO whose writes to the base file fail (EIO) once armed.
private final class FailingBaseWritesIO: ForwardingFileIO, @unchecked Sendable {
    let base: any FileIO = PosixFileIO()
    let armed = Atomic<Bool>(false)
    private let lock = NSLock()
    private var baseFDs: Set<Int32> = []

    func open(_ path: String, mode: FileOpenMode) throws -> Int32 {
        let fd = try base.open(path, mode: mode)
        if path.hasSuffix("/txlog.base") || path.hasSuffix("txlog.base.tmp") { _ = lock.withLock { baseFDs.insert(fd) } }
        return fd
    }

    func close(_ fd: Int32) {
        _ = lock.withLock { baseFDs.remove(fd) }
        base.close(fd)
    }

    func pwritev(_ fd: Int32, _ buffers: [UnsafeRawBufferPointer], at offset: UInt64) throws -> Int {
        if armed.load(ordering: .relaxed), lock.withLock({ baseFDs.contains(fd) }) {
            throw LogError(.io, "injected: base file write failed")
        }
        return try base.pwritev(fd, buffers, at: offset)
    }
}

@Suite struct HalfCreatedTMTests {
    /// The create stopped after the first checkpoint's restart record was flushed and before the base
    /// file named it as the restart area (a crash, or as here a base-file write error): the stream holds
    /// that one restart record and has no restart area. `openOrCreate` took such a stream for someone
    /// else's (it holds a record) and `open` found no checkpoint, so the log never came online again.
    @Test func openOrCreateFinishesACreateWhoseCheckpointWasNeverNamed() throws {
        let dir = TMScratch("half-created-restart")
        defer { dir.remove() }
        let io = FailingBaseWritesIO()
        do {
            let log = try LogStore.create(at: dir.path, options: TMScratch.options, io: io)
            _ = try log.createStream(TransactionManager.defaultStreamName)
            io.armed.store(true, ordering: .relaxed)
            #expect(throws: LogError.self) { _ = try TransactionManager.openOrCreate(log: log) }
            try? log.close()
        }
        let log = try LogStore.open(at: dir.path)
        defer { try? log.close() }
        let info = try #require(log.streams().first { $0.name == TransactionManager.defaultStreamName })
        #expect(info.restartLSN == .null)
        #expect(info.lastLSN != .null)
        try Self.expectOpenOrCreateFinishes(log)
    }

    /// A create that stopped after it made the TM's stream and before it wrote the first checkpoint (a
    /// crash, an I/O error, a terminate) left an empty stream with no restart area. `openOrCreate` then
    /// went to `open`, which found no TM checkpoint (`not-found`), so the log could never come online
    /// again. It now finishes the create.
    @Test func openOrCreateFinishesACreateThatStoppedBeforeItsFirstCheckpoint() throws {
        let dir = TMScratch("order-half-created")
        defer { dir.remove() }
        do {
            let log = try LogStore.create(at: dir.path, options: TMScratch.options)
            _ = try log.createStream(TransactionManager.defaultStreamName)  // the create stops here
            try log.close()
        }
        let log = try LogStore.open(at: dir.path)
        defer { try? log.close() }
        expectLogError(.notFound) { _ = try TransactionManager.open(log: log) }
        try Self.expectOpenOrCreateFinishes(log)
        // A stream that holds records but no TM checkpoint is someone else's: still not-found.
        let other = try log.createStream("other")
        _ = try other.append([1, 2, 3])
        expectLogError(.notFound) { _ = try TransactionManager.openOrCreate(log: log, stream: "other") }
    }

    /// `openOrCreate` finishes the half-made TM of `log`: it comes online, and is then an ordinary TM
    /// stream, opened (same id), not created again.
    static func expectOpenOrCreateFinishes(_ log: LogStore) throws {
        let tm = try TransactionManager.openOrCreate(log: log)
        try tm.recover()
        #expect(tm.currentState == .online)
        let id = tm.id
        try tm.close()
        let again = try TransactionManager.openOrCreate(log: log)
        #expect(again.id == id)
        try again.close()
    }
}
