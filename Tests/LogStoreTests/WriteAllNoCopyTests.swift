// `FileIO.writeAll` on the writer's path: every batch goes through it, and it copied the list of block
// buffers (dropping empty ones) on every call, one heap allocation per batch, that is per commit for a
// lone committer (docs/PERFORMANCE.md, "Hot paths after the fifteenth review").

import Foundation
import Testing
@testable import LogStore

/// Notes the storage of each buffer list `pwritev` is given; with `limit`, writes at most that many bytes
/// of the first buffer per call (a short write).
private final class ListRecordingIO: ForwardingFileIO, @unchecked Sendable {
    let base: any FileIO = PosixFileIO()
    let limit: Int?
    private let lock = Lock()
    private var lists: [UnsafeRawPointer?] = []

    init(limit: Int? = nil) { self.limit = limit }

    func pwritev(_ fd: Int32, _ buffers: [UnsafeRawBufferPointer], at offset: UInt64) throws -> Int {
        let storage = buffers.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress) }
        lock.withLock { lists.append(storage) }
        guard let limit, let first = buffers.first else { return try base.pwritev(fd, buffers, at: offset) }
        return try base.pwritev(fd, [UnsafeRawBufferPointer(rebasing: first.prefix(limit))], at: offset)
    }

    var seen: [UnsafeRawPointer?] { lock.withLock { lists } }
}

@Suite("Hot paths: writeAll copies no buffer list")
struct WriteAllNoCopyTests {
    private static let parts: [[UInt8]] = [[UInt8](repeating: 1, count: 700), [], [UInt8](repeating: 2, count: 1300), [UInt8](repeating: 3, count: 9)]

    /// Writes `parts` (without the empty one unless `withEmpty`) through `io`; returns the file's bytes
    /// and whether `pwritev`'s first list was the caller's own storage.
    private static func write(through io: ListRecordingIO, withEmpty: Bool) throws -> (bytes: [UInt8], sameList: Bool) {
        let path = LogTestKit.temporaryPath("write-all")
        defer { LogTestKit.remove(path) }
        let fd = try io.open(path, mode: .createExclusive)
        defer { io.close(fd) }
        let storage = parts.map { part -> UnsafeMutableRawBufferPointer in
            let b = UnsafeMutableRawBufferPointer.allocate(byteCount: part.count, alignment: 16)
            b.copyBytes(from: part)
            return b
        }
        defer { for b in storage { b.deallocate() } }
        let all = storage.map { UnsafeRawBufferPointer($0) }
        let list = withEmpty ? all : all.filter { !$0.isEmpty }
        try io.writeAll(fd, list, at: 0)
        let sameList = io.seen.first == list.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress) }
        return (Array(try Data(contentsOf: URL(fileURLWithPath: path))), sameList)
    }

    @Test("a list without empty buffers, written at once, reaches pwritev as the caller's own array")
    func noCopyOnTheUsualPath() throws {
        let io = ListRecordingIO()
        let (bytes, sameList) = try Self.write(through: io, withEmpty: false)
        #expect(sameList)  // before: a filtered copy on every call
        #expect(io.seen.count == 1)
        #expect(bytes == Self.parts.flatMap { $0 })
    }

    @Test("empty buffers and short writes still write every byte, in order")
    func emptyBuffersAndShortWrites() throws {
        for limit in [nil, 1, 5, 700, 701, 1999] as [Int?] {
            let io = ListRecordingIO(limit: limit)
            let (bytes, _) = try Self.write(through: io, withEmpty: true)
            #expect(bytes == Self.parts.flatMap { $0 }, "limit \(String(describing: limit))")
        }
    }

    @Test("the writer hands every batch's write the buffer list its cursor keeps, not a new array")
    func writerKeepsItsBufferList() throws {
        let dir = LogTestKit.temporaryPath("kept-list")
        defer { LogTestKit.remove(dir) }
        let io = ListRecordingIO()
        let log = try LogStore.create(at: dir, options: LogTestKit.options(containerSize: 4 << 20, containerCount: 2, codec: .none), io: io)
        defer { try? log.close() }
        var lists: [UnsafeRawPointer?] = []
        for i in 0..<5 {
            try log.flush(upTo: log.append([UInt8](repeating: UInt8(i), count: 100)))
            // A batch's write is its last pwritev (the fdatasync follows); the cursor keeps that list.
            let kept = log.core.lock.withLock { log.core.state.cursor.buffers.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress) } }
            #expect(io.seen.last == kept)
            lists.append(kept)
        }
        #expect(Set(lists).count == 1)
    }
}
