// `LogStore.refresh()` when the history a read-only log already read is no longer the log's: its writer
// crashed before the last blocks reached the disk (the reader had read them from the page cache, or over
// shared storage), and the writer that opened the log next recovered less than the reader had read and
// wrote its own records in their place. Found by the ninth review.

import Foundation
import Testing
import TxLogTestSupport
@testable import LogStore

@Suite("Read-only refresh after the history it read was lost and written over")
struct ReadOnlyRefreshHistoryTests {
    static func payload(_ i: Int, salt: UInt64 = 0) -> [UInt8] { LogTestKit.randomPayload(i, length: 300, salt: salt) }

    /// Every file of the log directory, by name.
    static func image(of dir: String) throws -> [String: Data] {
        var files: [String: Data] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: dir) {
            files[name] = try Data(contentsOf: URL(fileURLWithPath: dir + "/" + name))
        }
        return files
    }

    /// Writes an image back over the same files (same inodes: what a reader's descriptors see).
    static func restoreInPlace(_ image: [String: Data], in dir: String) throws {
        for (name, bytes) in image {
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: dir + "/" + name))
            try handle.write(contentsOf: bytes)
            try handle.truncate(atOffset: UInt64(bytes.count))
            try handle.close()
        }
    }

    /// The log as a crash would leave it when the blocks of the second flush (two or more, written at once)
    /// did not all reach the disk: the first of them is lost, and with `keepLater` the later ones are not
    /// (nothing proves them durable: they were sealed before the first was synced). The reader read them
    /// all before; the next writer recovers only the first five records and writes `overwrite` records
    /// of other data there (same sizes: its blocks land where the lost ones were).
    static func lostTail(_ dir: String, overwrite: Int, keepLater: Bool) throws -> (reader: LogStore, writer: LogStore, read: [LogRecord]) {
        var writer = try LogStore.create(at: dir, options: LogTestKit.options(containerSize: 1 << 20, containerCount: 2, blockSize: 4096, codec: .none))
        for i in 0..<5 { _ = try writer.append(Self.payload(i)) }
        try writer.flush()
        var crashed = try Self.image(of: dir)
        for i in 5..<30 { _ = try writer.append(Self.payload(i)) }
        try writer.flush()
        let reader = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true))
        let read = try LogTestKit.allRecords(reader)
        try writer.close()
        if keepLater {
            // The container as written, but for the first block after the crash image's records.
            let name = ContainerFiles.name(physicalID: 0)
            var bytes = try Data(contentsOf: URL(fileURLWithPath: dir + "/" + name))
            let blocks = Set(read.dropFirst(5).map(\.lsn.blockOffset)).sorted()
            try #require(blocks.count >= 2)
            bytes.replaceSubrange(Int(blocks[0])..<Int(blocks[1]), with: [UInt8](repeating: 0, count: Int(blocks[1] - blocks[0])))
            crashed[name] = bytes
        }
        try Self.restoreInPlace(crashed, in: dir)
        writer = try LogStore.open(at: dir)
        for i in 0..<overwrite { _ = try writer.append(Self.payload(5 + i, salt: 1)) }
        try writer.flush()
        return (reader, writer, read)
    }

    @Test(
        "a new writer recovered less than the reader read: refresh() is invalidState (reopen), the view stays",
        arguments: [0, 5, 40, 4000], [false, true])
    func historyLostBelowTheView(overwrite: Int, keepLater: Bool) throws {
        let dir = LogTestKit.temporaryPath("refresh-lost-\(overwrite)-\(keepLater)")
        defer { LogTestKit.remove(dir) }
        let (reader, writer, read) = try Self.lostTail(dir, overwrite: overwrite, keepLater: keepLater)
        #expect(read.map(\.data) == (0..<30).map { Self.payload($0) })
        expectLogError(.invalidState) { _ = try reader.refresh() }
        // All or nothing: the view is as it was.
        #expect(reader.lastLSN == read.last?.lsn)
        #expect(try LogTestKit.allRecords(reader) == read)
        // A reopen reads the log as it is now.
        let reopened = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true))
        let now = try LogTestKit.allRecords(reopened)
        #expect(now.map(\.data) == (0..<5).map { Self.payload($0) } + (0..<overwrite).map { Self.payload(5 + $0, salt: 1) })
        try reopened.close()
        try reader.close()
        try writer.close()
    }

    @Test("a new writer that recovered everything the reader read is followed as before")
    func historyKept() throws {
        let dir = LogTestKit.temporaryPath("refresh-kept")
        defer { LogTestKit.remove(dir) }
        var writer = try LogStore.create(at: dir, options: LogTestKit.options(containerSize: 1 << 20, containerCount: 2, blockSize: 4096, codec: .none))
        for i in 0..<10 { _ = try writer.append(Self.payload(i)) }
        try writer.flush()
        let reader = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true))
        #expect(try LogTestKit.allRecords(reader).count == 10)
        try writer.close()
        writer = try LogStore.open(at: dir)
        for i in 10..<15 { _ = try writer.append(Self.payload(i)) }
        try writer.flush()
        #expect(try reader.refresh())
        #expect(try LogTestKit.allRecords(reader).map(\.data) == (0..<15).map { Self.payload($0) })
        try reader.close()
        try writer.close()
    }

    /// A container file replaced by a copy of itself (put back from a backup, say) between two writer
    /// sessions: the next writer opens the file at the path, the reader keeps reading the one it has open,
    /// which no one writes any more. Only the base file's identity was compared, so the refresh found nothing
    /// new, for ever.
    @Test("a container replaced at its path by a copy of itself, then written by a new writer: refresh() is invalidState")
    func containerReplacedByACopy() throws {
        let dir = LogTestKit.temporaryPath("refresh-container-copy")
        defer { LogTestKit.remove(dir) }
        var writer = try LogStore.create(at: dir, options: LogTestKit.options(containerSize: 1 << 20, containerCount: 2, blockSize: 4096, codec: .none))
        for i in 0..<5 { _ = try writer.append(Self.payload(i)) }
        try writer.close()
        let reader = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true))
        let before = reader.lastLSN
        let path = dir + "/" + ContainerFiles.name(physicalID: 0)
        try FileManager.default.copyItem(atPath: path, toPath: path + ".copy")
        #expect(rename(path + ".copy", path) == 0)
        writer = try LogStore.open(at: dir)
        for i in 5..<10 { _ = try writer.append(Self.payload(i)) }
        try writer.flush()
        expectLogError(.invalidState) { _ = try reader.refresh() }
        #expect(reader.lastLSN == before)
        try reader.close()
        try writer.close()
    }
}
