// Removing a container frees its file in 4 MiB steps before the unlink (`FileIO.unlinkFreeingGradually`),
// so a large deletion never holds up the log's own fdatasyncs for long. Recorded through the seam.

import Foundation
import LogFormat
import LogStore
import Synchronization
import Testing

/// Forwards to the real file system and records truncations and unlinks, by path.
final class RemovalRecorderIO: ForwardingFileIO, Sendable {
    let base: any FileIO = PosixFileIO()
    let events = Mutex<[String]>([])
    let paths = Mutex<[Int32: String]>([:])

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
        events.withLock { $0.append("unlink \((path as NSString).lastPathComponent)") }
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
    }
}
