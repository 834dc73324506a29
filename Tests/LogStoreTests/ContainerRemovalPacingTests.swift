// Removing a container frees its file in 4 MiB steps before the unlink (`FileIO.unlinkFreeingGradually`),
// so a large deletion never holds up the log's own fdatasyncs for long. Recorded through the seam.

import Foundation
#if canImport(Glibc)
import Glibc
#endif
import LogFormat
import LogStore
import Synchronization
import Testing

/// Forwards to the real file system and records truncations and unlinks, by path.
final class RemovalRecorderIO: ForwardingFileIO, Sendable {
    let base: any FileIO = PosixFileIO()
    let events = Mutex<[String]>([])
    let paths = Mutex<[Int32: String]>([:])
    /// The thread of each unlink, by file name.
    let unlinkThreads = Mutex<[String: pthread_t]>([:])

    func open(_ path: String, mode: FileOpenMode) throws -> Int32 {
        let fd = try base.open(path, mode: mode)
        paths.withLock { $0[fd] = path }
        return fd
    }
    func truncate(_ fd: Int32, to size: UInt64) throws {
        let name = paths.withLock { $0[fd] }.map { ($0 as NSString).lastPathComponent } ?? "?"
        events.withLock { $0.append("truncate \(name) \(size)") }
        try base.truncate(fd, to: size)
    }
    func unlink(_ path: String) throws {
        let name = (path as NSString).lastPathComponent
        events.withLock { $0.append("unlink \(name)") }
        unlinkThreads.withLock { $0[name] = pthread_self() }
        try base.unlink(path)
    }
}

@Suite struct ContainerRemovalPacingTests {
    @Test func aRemovedContainerIsFreedInStepsThenUnlinked() throws {
        let dir = LogTestKit.temporaryPath("removal-pacing")
        defer { LogTestKit.remove(dir) }
        let io = RemovalRecorderIO()
        let log = try LogStore.create(at: dir, options: LogTestKit.options(containerSize: 10 << 20, containerCount: 3), io: io)
        defer { try? log.close() }
        io.events.withLock { $0.removeAll() }
        try log.removeContainer(2)  // free: removed at once
        let name = Format.defaultContainerPrefix + "000002"
        #expect(io.events.withLock { $0 } == ["truncate \(name) \(6 << 20)", "truncate \(name) \(2 << 20)", "unlink \(name)"])
        #expect(!FileManager.default.fileExists(atPath: dir + "/" + name))
        #expect(log.info().containers.count == 2)
        #expect(io.unlinkThreads.withLock { $0[name] }.map { pthread_equal($0, pthread_self()) != 0 } == true, "an explicit removal unlinks on the caller's thread")
    }

    /// A container removed while it holds data is deleted once every base has passed it. That happens
    /// inside a base-file update, possibly on the writer thread, so the unlink runs in the background;
    /// `close()` waits for it.
    @Test func aBusyContainerIsDeletedInTheBackgroundOnceRecycledAndCloseWaitsForIt() throws {
        let dir = LogTestKit.temporaryPath("removal-busy")
        defer { LogTestKit.remove(dir) }
        let io = RemovalRecorderIO()
        let log = try LogStore.create(
            at: dir, options: LogTestKit.options(containerSize: 512 << 10, containerCount: 3, blockSize: 4096, codec: .none), io: io)
        var last = LSN.null
        for i in 0..<200 { last = try log.append(LogTestKit.randomPayload(i, length: 4000)) }  // ~800 KB: into container 1
        try log.flush(upTo: last)
        let name = Format.defaultContainerPrefix + "000000"
        try log.removeContainer(0)  // holds data: marked pending delete, kept for now
        #expect(FileManager.default.fileExists(atPath: dir + "/" + name))
        #expect(!io.events.withLock { $0 }.contains("unlink \(name)"))
        try log.advanceBase(to: last)  // every base is past container 0: recycled away
        #expect(!log.info().containers.contains { $0.physicalID == 0 })
        try log.close()
        #expect(io.events.withLock { $0 }.contains("unlink \(name)"), "close waited for the background deletion")
        #expect(io.unlinkThreads.withLock { $0[name] }.map { pthread_equal($0, pthread_self()) == 0 } == true, "not on the thread that moved the base")
        #expect(!FileManager.default.fileExists(atPath: dir + "/" + name))

        let reopened = try LogStore.open(at: dir)
        defer { try? reopened.close() }
        #expect(reopened.info().containers.map(\.physicalID).sorted() == [1, 2])
        #expect(try reopened.strayFiles().isEmpty)
    }
}
