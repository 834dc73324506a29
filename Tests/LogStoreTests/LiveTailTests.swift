// A read-only open of a log another handle is writing can read the last block while the writer's pwritev
// is still copying it: the header is there, the rest is not yet, so the block fails its checksum. That is
// the live end of the log, not a torn tail: the open reads the block again after a moment, and a strict
// read-only open does not fail with `corrupt`.

import Foundation
import Testing
@testable import LogStore

/// Reads the block at `offset` of the file at `path` as a writer half-way through it would leave it (the
/// first sector new, the rest still zeros), the first `times` times a read starts there.
/// With several offsets, each is read that way the first `times` times.
final class MidWriteIO: ForwardingFileIO, @unchecked Sendable {
    let base: any FileIO = PosixFileIO()
    let path: String
    private let lock = NSLock()
    private var fds: Set<Int32> = []
    private var left: [UInt64: Int]
    private(set) var masked = 0

    init(path: String, offset: UInt64, times: Int) {
        self.path = path
        self.left = [offset: times]
    }

    init(path: String, offsets: Set<UInt64>, times: Int) {
        self.path = path
        self.left = Dictionary(uniqueKeysWithValues: offsets.map { ($0, times) })
    }

    func open(_ path: String, mode: FileOpenMode) throws -> Int32 {
        let fd = try base.open(path, mode: mode)
        if path == self.path { lock.withLock { _ = fds.insert(fd) } }
        return fd
    }

    func close(_ fd: Int32) {
        lock.withLock { _ = fds.remove(fd) }
        base.close(fd)
    }

    func pread(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws -> Int {
        let n = try base.pread(fd, into: buffer, at: offset)
        let mask = lock.withLock { () -> Bool in
            guard fds.contains(fd), let n = left[offset], n > 0 else { return false }
            left[offset] = n - 1
            masked += 1
            return true
        }
        if mask, n > Format.sectorSize { UnsafeMutableRawBufferPointer(rebasing: buffer[Format.sectorSize..<n]).initializeMemory(as: UInt8.self, repeating: 0) }
        return n
    }
}

@Suite("Read-only opens of a live log")
struct LiveTailTests {
    @Test("the last block caught mid-write: read again, not a torn tail; strict does not fail", arguments: [RecoveryMode.strict, .tolerateTornTail])
    func lastBlockMidWrite(mode: RecoveryMode) throws {
        let dir = LogTestKit.temporaryPath("midwrite")
        defer { LogTestKit.remove(dir) }
        let log = try LogStore.create(at: dir, options: LogTestKit.options(containerSize: 512 * 1024, containerCount: 4, blockSize: 4096, codec: .none))
        var lsns: [LSN] = []
        for i in 0..<40 {
            lsns.append(try log.append(Array(repeating: UInt8(i), count: 700)))
            if i % 8 == 7 { try log.flush() }
        }
        try log.flush()
        let last = try #require(lsns.last)
        // Still open: a live writer. Its last block is read by the reader as if half-written, once.
        let io = MidWriteIO(path: dir + "/" + ContainerFiles.name(physicalID: 0), offset: last.blockOffset, times: 1)
        let reader = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true, recovery: mode), io: io)
        #expect(io.masked == 1)
        #expect(reader.recoveryReport.tornTail == nil, "\(String(describing: reader.recoveryReport.tornTail))")
        #expect(reader.lastLSN == last)
        #expect(try reader.read(last).data == Array(repeating: 39, count: 700))
        try reader.close()
        try log.close()
    }

    /// A reader that keeps catching up with a live writer finds a block mid-write more than once in one
    /// open. The open read such a block again at most three times in all, so the fourth (on a busy log,
    /// `txlog info` about one run in a thousand) failed the open with `corrupt`, exit 1, on a log that was
    /// not damaged. Each position gets its own reads again.
    @Test("blocks caught mid-write at several positions in one open: each is read again, never corrupt")
    func severalBlocksMidWrite() throws {
        let dir = LogTestKit.temporaryPath("midwrite-many")
        defer { LogTestKit.remove(dir) }
        let log = try LogStore.create(at: dir, options: LogTestKit.options(containerSize: 512 * 1024, containerCount: 4, blockSize: 4096, codec: .none))
        var lsns: [LSN] = []
        for i in 0..<80 {
            lsns.append(try log.append(Array(repeating: UInt8(i), count: 700)))
            try log.flush()
        }
        let blocks = Set(lsns.map(\.blockOffset)).sorted()
        #expect(blocks.count > 6)
        // Every other block is caught mid-write once, the block after it already written and durable.
        let caught = stride(from: 0, to: blocks.count - 1, by: 2).map { blocks[$0] }
        let io = MidWriteIO(path: dir + "/" + ContainerFiles.name(physicalID: 0), offsets: Set(caught), times: 1)
        let reader = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true), io: io)
        #expect(io.masked == caught.count && caught.count > 3, "\(io.masked) of \(caught.count)")
        #expect(reader.recoveryReport.tornTail == nil && reader.recoveryReport.corruption == nil)
        #expect(reader.lastLSN == lsns.last)
        try reader.close()
        try log.close()
    }

    @Test("a block that stays torn is still a torn tail for a read-only open (strict: corrupt)")
    func blockThatStaysTorn() throws {
        let dir = LogTestKit.temporaryPath("staystorn")
        defer { LogTestKit.remove(dir) }
        let log = try LogStore.create(at: dir, options: LogTestKit.options(containerSize: 512 * 1024, containerCount: 4, blockSize: 4096, codec: .none))
        var last = LSN.null
        for i in 0..<40 { last = try log.append(Array(repeating: UInt8(i), count: 700)) }
        try log.flush()
        let io = MidWriteIO(path: dir + "/" + ContainerFiles.name(physicalID: 0), offset: last.blockOffset, times: 100)
        let reader = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true), io: io)
        #expect(reader.recoveryReport.tornTail != nil)
        #expect(reader.lastLSN < last)
        try reader.close()
        let strict = FaultTestKit.logError { _ = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true, recovery: .strict), io: io) }
        #expect(strict?.code == .corrupt)
        try log.close()
    }
}
