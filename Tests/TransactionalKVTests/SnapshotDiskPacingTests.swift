// How a snapshot reaches the disk without holding up the log's fdatasyncs: write-back is started every
// `writebackEvery` bytes while the file is written, and an old snapshot is freed in steps from its end
// before it is unlinked (`FileIO.unlinkFreeingGradually`, also used for the log's containers). Both go through the file-I/O seam, recorded here.

import Foundation
import LogFormat
import LogStore
import Synchronization
import Testing
import TransactionManager
@testable import TransactionalKV

/// Forwards to the real file system and records the pacing calls.
final class PacingRecorderIO: ForwardingFileIO, Sendable {
    let base: any FileIO = PosixFileIO()
    let writebacks = Mutex<[(offset: UInt64, length: UInt64)]>([])
    let truncations = Mutex<[UInt64]>([])

    func truncate(_ fd: Int32, to size: UInt64) throws {
        truncations.withLock { $0.append(size) }
        try base.truncate(fd, to: size)
    }
    func startWriteback(_ fd: Int32, offset: UInt64, length: UInt64) {
        writebacks.withLock { $0.append((offset, length)) }
        base.startWriteback(fd, offset: offset, length: length)
    }
}

@Suite struct SnapshotDiskPacingTests {
    static let store = GUID("0b0b0b0b-0000-4000-8000-00000000000b")!

    /// 200 entries of a 16-byte key and a 100-byte value: 200 × 124 bytes plus the header.
    static func entries() -> [(Key, ArraySlice<UInt8>)] {
        (0..<200).map { i in (Key(Array(String(format: "key-%012d", i).utf8)), [UInt8](repeating: UInt8(i % 251), count: 100)[...]) }
    }

    @Test func writeBackIsStartedEveryIntervalAndCoversTheFileInOrder() throws {
        let dir = try makeTempDirectory("pacing-write")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let io = PacingRecorderIO()
        let entries = Self.entries()
        try KVSnapshotFile.write(io: io, directory: dir, name: "s.snap", store: Self.store, coveredThrough: .null, slices: entries, writebackEvery: 4096)
        let size = try #require(try FileManager.default.attributesOfItem(atPath: dir + "/s.snap")[.size] as? UInt64)
        let kicks = io.writebacks.withLock { $0 }
        // Contiguous from 0, each at least the interval, ending at most at the file's end.
        #expect(kicks.count >= 5)
        var next: UInt64 = 0
        for k in kicks {
            #expect(k.offset == next && k.length >= 4096)
            next = k.offset + k.length
        }
        #expect(next <= size && size - next < 4096 + 4, "all but the last partial interval and the trailer")
        // The file is intact.
        let back = try KVSnapshotFile.read(io: io, path: dir + "/s.snap", store: Self.store)
        #expect(back.entries.count == 200 && back.entries[7].1 == Array(entries[7].1))
    }

    @Test func aSmallSnapshotNeedsNoHint() throws {
        let dir = try makeTempDirectory("pacing-small")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let io = PacingRecorderIO()
        try KVSnapshotFile.write(io: io, directory: dir, name: "s.snap", store: Self.store, coveredThrough: .null, slices: Self.entries())
        #expect(io.writebacks.withLock { $0 }.isEmpty, "24 KiB is below the default 1 MiB interval")
    }

    @Test func anOldSnapshotIsFreedInStepsThenUnlinked() throws {
        let dir = try makeTempDirectory("pacing-remove")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/old.snap"
        #expect(FileManager.default.createFile(atPath: path, contents: Data(count: 10_000)))
        let io = PacingRecorderIO()
        try io.unlinkFreeingGradually(path, step: 4096)
        #expect(io.truncations.withLock { $0 } == [5904, 1808], "from the end, one step at a time")
        #expect(!FileManager.default.fileExists(atPath: path))

        // A file smaller than a step is unlinked at once; a missing file is `notFound` from the unlink.
        #expect(FileManager.default.createFile(atPath: path, contents: Data(count: 100)))
        let io2 = PacingRecorderIO()
        try io2.unlinkFreeingGradually(path, step: 4096)
        #expect(io2.truncations.withLock { $0 }.isEmpty && !FileManager.default.fileExists(atPath: path))
        #expect(throws: LogError.self) { try io2.unlinkFreeingGradually(path, step: 4096) }
    }
}
