// `LogStore.refresh()`: a read-only log catching up with a writer (here another instance in this process:
// a read-only open takes no lock) without reopening. Before it, a read-only log saw only what its open
// found, and `txlog dump --follow` reopened the log at every poll, rescanning from the base file's scan
// start (up to a whole container per poll).

import Foundation
import Synchronization
import Testing
import TxLogTestSupport
@testable import LogStore

/// Reads of one container file at one offset come back as a writer half-way through the block would leave
/// them (the first sector written, the rest still zeros) while `tearing` is set.
final class TearingIO: ForwardingFileIO, @unchecked Sendable {
    let base: any FileIO = PosixFileIO()
    let path: String
    private let watched: DescriptorsOfAPath
    let tearing = Mutex<UInt64?>(nil)
    /// Reads of container files, any offset.
    let containerReads = Atomic<Int>(0)

    init(path: String) {
        self.path = path
        watched = DescriptorsOfAPath(path)
    }

    func open(_ path: String, mode: FileOpenMode) throws -> Int32 {
        let fd = try base.open(path, mode: mode)
        watched.opened(path, fd)
        return fd
    }

    func close(_ fd: Int32) {
        watched.closed(fd)
        base.close(fd)
    }

    func pread(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws -> Int {
        let n = try base.pread(fd, into: buffer, at: offset)
        guard watched.contains(fd) else { return n }
        containerReads.add(1, ordering: .relaxed)
        if tearing.withLock({ $0 == offset }), n > Format.sectorSize {
            UnsafeMutableRawBufferPointer(rebasing: buffer[Format.sectorSize..<n]).initializeMemory(as: UInt8.self, repeating: 0)
        }
        return n
    }
}

@Suite("Read-only logs catching up with a writer (refresh)")
struct ReadOnlyRefreshTests {
    static func payload(_ i: Int) -> [UInt8] { LogTestKit.randomPayload(i, length: 300) }

    /// Every record a read-only log reads after `lsn` (exclusive), from the start when null.
    static func records(_ log: LogStore, after lsn: LSN = .null) throws -> [LogRecord] {
        var cursor = try log.records()
        var out: [LogRecord] = []
        while let r = try cursor.next() { if r.lsn > lsn { out.append(r) } }
        return out
    }

    @Test("a refresh finds exactly the records flushed since, and only those")
    func seesNewDurableRecords() throws {
        let dir = LogTestKit.temporaryPath("refresh-new")
        defer { LogTestKit.remove(dir) }
        let writer = try LogStore.create(at: dir, options: LogTestKit.options(containerSize: 1 << 20, containerCount: 2, blockSize: 4096, codec: .none))
        var lsns: [LSN] = []
        for i in 0..<10 { lsns.append(try writer.append(Self.payload(i))) }
        try writer.flush()
        let reader = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true))
        #expect(reader.lastLSN == lsns.last)
        var cursor = try reader.records()
        for _ in 0..<10 { _ = try cursor.next() }
        #expect(try cursor.next() == nil)
        #expect(try reader.refresh() == false, "nothing was written")

        for i in 10..<30 { lsns.append(try writer.append(Self.payload(i))) }
        try writer.flush()
        for i in 30..<33 { _ = try writer.append(Self.payload(i)) }  // not flushed: not written yet
        #expect(try reader.refresh())
        #expect(reader.lastLSN == lsns[29])
        // Durable as far as the reader can prove: the new blocks were sealed when the first ten records were
        // durable (their hint); that the writer's fdatasync of them returned, it cannot see.
        #expect(reader.durableLSN == lsns[9])
        // The cursor made before the refresh goes on to the records it found, and no further.
        var seen: [LogRecord] = []
        while let r = try cursor.next() { seen.append(r) }
        #expect(seen.map(\.lsn) == Array(lsns[10..<30]))
        #expect(seen.map(\.data) == (10..<30).map(Self.payload))
        expectLogError(.invalidArgument) { _ = try reader.read(writer.lastLSN) }
        #expect(try reader.refresh() == false)

        try writer.flush()
        #expect(try reader.refresh())
        #expect(try Self.records(reader, after: lsns[29]).map(\.data) == (30..<33).map(Self.payload))
        try reader.close()
        try writer.close()
    }

    @Test("a block still being written ends the reader's log for now; the next refresh reads it once complete")
    func tornTailAtTheReadersEnd() throws {
        let dir = LogTestKit.temporaryPath("refresh-torn")
        defer { LogTestKit.remove(dir) }
        let writer = try LogStore.create(at: dir, options: LogTestKit.options(containerSize: 1 << 20, containerCount: 2, blockSize: 4096, codec: .none))
        for i in 0..<5 { _ = try writer.append(Self.payload(i)) }
        try writer.flush()
        let io = TearingIO(path: dir + "/" + ContainerFiles.name(physicalID: 0))
        let reader = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true), io: io)
        let before = reader.lastLSN
        // The writer's next block: the reader sees it half-written at every read.
        let next = try writer.append(LogTestKit.randomPayload(99, length: 3000))
        try writer.flush()
        io.tearing.withLock { $0 = next.blockOffset }
        #expect(try reader.refresh() == false, "a block mid-write is not the end that moved")
        #expect(reader.lastLSN == before)
        expectLogError(.invalidArgument) { _ = try reader.read(next) }
        // The write completes.
        io.tearing.withLock { $0 = nil }
        #expect(try reader.refresh())
        #expect(reader.lastLSN == next)
        #expect(try reader.read(next).data == LogTestKit.randomPayload(99, length: 3000))
        try reader.close()
        try writer.close()
    }

    @Test("a refresh reads only what is new: far fewer container reads than a reopen's scan")
    func readsOnlyWhatIsNew() throws {
        let dir = LogTestKit.temporaryPath("refresh-cost")
        defer { LogTestKit.remove(dir) }
        let writer = try LogStore.create(at: dir, options: LogTestKit.options(containerSize: 1 << 20, containerCount: 2, blockSize: 4096, codec: .none))
        for i in 0..<600 { _ = try writer.append(Self.payload(i)) }  // about 50 blocks
        try writer.flush()
        let io = TearingIO(path: dir + "/" + ContainerFiles.name(physicalID: 0))
        let reader = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true), io: io)
        let atOpen = io.containerReads.load(ordering: .relaxed)
        let last = try writer.append(Self.payload(1000))
        try writer.flush()
        let start = io.containerReads.load(ordering: .relaxed)
        #expect(try reader.refresh())
        #expect(reader.lastLSN == last)
        let used = io.containerReads.load(ordering: .relaxed) - start
        #expect(used <= 4, "a refresh that finds one new block read \(used) times (the open: \(atOpen))")
        try reader.close()
        try writer.close()
    }

    @Test("containers added and streams created, changed or deleted by the writer appear after a refresh")
    func baseFileChanges() throws {
        let dir = LogTestKit.temporaryPath("refresh-base")
        defer { LogTestKit.remove(dir) }
        let writer = try LogStore.create(at: dir, options: LogTestKit.options(containerSize: 1 << 20, containerCount: 2, blockSize: 4096, codec: .none))
        let old = try writer.createStream("old")
        _ = try old.append(Self.payload(0))
        try writer.flush()
        let reader = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true))
        var oldCursor = try reader.openStream("old").records()
        #expect(try oldCursor.next()?.data == Self.payload(0))
        let added = try writer.addContainer()
        let s = try writer.createStream("new")
        let lsn = try s.append(Self.payload(1))
        try writer.flush()
        try writer.deleteStream("old")
        expectLogError(.notFound) { _ = try reader.openStream("new") }
        #expect(try reader.refresh())
        #expect(reader.info().containers.map(\.physicalID).contains(added))
        #expect(reader.info().containers.count == 3)
        let stream = try reader.openStream("new")
        var cursor = try stream.records()
        #expect(try cursor.next()?.lsn == lsn)
        #expect(try cursor.next() == nil)
        expectLogError(.notFound) { _ = try reader.openStream("old") }
        expectLogError(.notFound) { _ = try oldCursor.next() }
        try reader.close()
        try writer.close()
    }

    /// The writer recycles the container the reader's end was in (the reader fell a whole container
    /// behind), and a container the reader had read. The refresh takes the base file's view: those
    /// records are gone (`notFound`, below the base), every record still in the log reads back as written,
    /// never a block from before the recycling.
    @Test("containers recycled under the reader: the old records are not found, the new ones read back as written")
    func containerRecycledUnderTheReader() throws {
        let dir = LogTestKit.temporaryPath("refresh-recycled")
        defer { LogTestKit.remove(dir) }
        let writer = try LogStore.create(at: dir, options: LogTestKit.options(containerSize: 512 * 1024, containerCount: 2, blockSize: 4096, codec: .none))
        var written: [(LSN, [UInt8])] = []
        func write(_ n: Int) throws {
            for _ in 0..<n {
                let data = LogTestKit.randomPayload(written.count, length: 1000)
                written.append((try writer.append(data), data))
            }
            try writer.flush()
        }
        try write(100)
        let reader = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true))
        let firstSeen = written[0].0
        #expect(try reader.read(firstSeen).data == written[0].1)  // cached by the reader
        // Fill logical containers 1 and 2, then recycle 1 (its file becomes logical 3) and write there.
        while writer.lastLSN.container < 2 { try write(20) }
        try writer.advanceBase(to: writer.lastLSN)
        while writer.lastLSN.container < 3 { try write(20) }
        try write(20)
        #expect(writer.info().containers.contains { $0.physicalID == 0 && $0.logicalID == 3 })
        #expect(try reader.refresh())
        #expect(reader.lastLSN == writer.lastLSN)
        #expect(reader.baseLSN == writer.baseLSN)
        expectLogError(.notFound) { _ = try reader.read(firstSeen) }
        let kept = written.filter { $0.0 >= writer.baseLSN }
        let read = try Self.records(reader).filter { $0.lsn >= writer.baseLSN }
        #expect(read.map(\.lsn) == kept.map(\.0))
        #expect(read.map(\.data) == kept.map(\.1))
        // And on from there, in the recycled file.
        try write(5)
        #expect(try reader.refresh())
        #expect(try Self.records(reader, after: kept.last!.0).map(\.data) == written.suffix(5).map(\.1))
        try reader.close()
        try writer.close()
    }

    /// A writer recycling its containers while a reader keeps catching up and reading: every record the
    /// reader returns is the one written at its LSN; records recycled before the reader got to them are
    /// `notFound`, nothing else fails.
    @Test("a reader catching up with a writer that keeps recycling reads only what was written")
    func catchingUpWithARecyclingWriter() async throws {
        let dir = LogTestKit.temporaryPath("refresh-live")
        defer { LogTestKit.remove(dir) }
        let writer = try LogStore.create(at: dir, options: LogTestKit.options(containerSize: 512 * 1024, containerCount: 3, blockSize: 4096, codec: .lz4))
        _ = try writer.append(Self.payload(0))
        try await writer.flush()
        let reader = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true))
        let done = Atomic<Bool>(false)
        // Record i is payload(i) followed by i.
        let writing = Task { try await onOwnThread { () throws -> Int in
            defer { done.store(true, ordering: .releasing) }
            var i = 1
            while i < 6000 {
                let lsn = try writer.append(Self.payload(i) + withUnsafeBytes(of: UInt32(i).littleEndian, Array.init))
                i += 1
                if i % 40 == 0 {
                    try writer.flush()
                    try writer.advanceBase(to: lsn)
                }
            }
            try writer.flush()
            return i
        } }
        try await onOwnThread {
            var cursor = try reader.records()
            var last = LSN.null
            var checked = 0
            while true {
                let finished = done.load(ordering: .acquiring)
                try reader.refresh()
                do {
                    while let r = try cursor.next() {
                        if r.data != Self.payload(0) {
                            let i = Int(UInt32(littleEndian: r.data.suffix(4).withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }))
                            #expect(r.data == Self.payload(i) + withUnsafeBytes(of: UInt32(i).littleEndian, Array.init), "\(r.lsn)")
                        }
                        #expect(r.lsn > last)
                        last = r.lsn
                        checked += 1
                    }
                } catch let e as LogError where e.code == .notFound {
                    // Recycled before this reader got there: go on from the base.
                    cursor = try reader.records()
                }
                if finished { break }
            }
            #expect(checked > 0)
            #expect(reader.lastLSN == writer.lastLSN)
        }
        _ = try await writing.value
        try reader.close()
        try writer.close()
    }

    @Test("a base file overwritten in place with another log's: invalidState (reopen), and the view stays as it was")
    func baseFileOfAnotherLog() throws {
        let dir = LogTestKit.temporaryPath("refresh-replaced")
        let other = LogTestKit.temporaryPath("refresh-other")
        defer {
            LogTestKit.remove(dir)
            LogTestKit.remove(other)
        }
        let writer = try LogStore.create(at: dir, options: LogTestKit.options(containerSize: 1 << 20, containerCount: 2, blockSize: 4096, codec: .none))
        let lsn = try writer.append(Self.payload(0))
        try writer.close()
        try LogStore.create(at: other, options: LogTestKit.options(containerSize: 1 << 20, containerCount: 2, blockSize: 4096, codec: .none)).close()
        let reader = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true))
        let foreign = try Data(contentsOf: URL(fileURLWithPath: other + "/" + Format.baseFileName))
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: dir + "/" + Format.baseFileName))
        try handle.write(contentsOf: foreign)  // in place: the reader's descriptor sees it
        try handle.close()
        expectLogError(.invalidState) { _ = try reader.refresh() }
        #expect(reader.lastLSN == lsn)
        #expect(try reader.read(lsn).data == Self.payload(0))
        try reader.close()
    }

    @Test("a writer that reopens (a new epoch) is followed; a writable log's refresh does nothing")
    func writerReopens() throws {
        let dir = LogTestKit.temporaryPath("refresh-epoch")
        defer { LogTestKit.remove(dir) }
        var writer = try LogStore.create(at: dir, options: LogTestKit.options(containerSize: 1 << 20, containerCount: 2, blockSize: 4096, codec: .none))
        _ = try writer.append(Self.payload(0))
        try writer.flush()
        #expect(try writer.refresh() == false)
        let reader = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true))
        try writer.close()
        writer = try LogStore.open(at: dir)
        let lsn = try writer.append(Self.payload(1))
        try writer.flush()
        #expect(try reader.refresh())
        #expect(reader.info().epoch == writer.info().epoch)
        #expect(try reader.read(lsn).data == Self.payload(1))
        try reader.close()
        try writer.close()
    }
}
