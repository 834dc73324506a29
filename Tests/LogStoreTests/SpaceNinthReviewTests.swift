// Space management and the stream table, found by the ninth review (docs/RELIABILITY.md, "Found by the
// ninth review"). Each test failed before its fix.

import Foundation
import Testing
import TxLogTestSupport
@testable import LogStore

@Suite("A base file's deleted stream entries are no streams")
struct DeletedStreamEntryTests {
    /// A log with stream "a" (one durable record), closed, whose base file then gains an entry of an
    /// older stream "a" flagged deleted (docs/format/base-file.md allows the name twice then).
    static func logWithADeletedEntry(_ dir: String) throws -> (a: UInt16, first: LSN) {
        let log = try LogStore.create(at: dir, options: LogCreateOptions(containerSize: 512 * 1024, containerCount: 3, blockSize: 4096, codec: .none))
        let a = try log.createStream("a")
        let first = try a.append([1, 2, 3])
        try log.close()
        try LogicalIDLimitTests.rewriteBase(dir) { r in
            r.streams.append(StreamEntry(id: r.nextStreamID, flags: StreamEntry.deletedFlag, name: "a", base: first, last: first))
            r.nextStreamID += 1
        }
        return (a.id, first)
    }

    /// Open loaded a deleted entry as a live stream: it was listed, its name could open it instead of the
    /// live stream, it pinned the log with its base, and the next base-file update wrote the name twice
    /// without the flag, so every later open failed with `corrupt` (both slots).
    @Test func openIgnoresADeletedEntry() throws {
        let dir = FaultTestKit.temporaryPath("ninth-deleted-entry")
        defer { FaultTestKit.remove(dir) }
        let (a, _) = try Self.logWithADeletedEntry(dir)
        let log = try LogStore.open(at: dir)
        #expect(log.streams().map(\.name) == ["", "a"])
        #expect(try log.openStream("a").id == a)
        // Past several container switches (base-file updates) and recycling: nothing pins the log.
        for i in 1...600 {
            try log.append([UInt8](repeating: 1, count: 3000))
            if i % 50 == 0 {
                try log.defaultStream.advanceBase(to: log.lastLSN)
                try log.openStream("a").advanceBase(to: log.lastLSN)
            }
        }
        let next = log.core.lock.withLock { log.core.state.nextStreamID }
        try log.close()
        let again = try LogStore.open(at: dir)
        #expect(again.streams().map(\.name) == ["", "a"])
        #expect(try again.createStream("b").id == next, "the deleted stream's id is not reused")
        try again.close()
    }

    /// A read-only log's refresh put the deleted entry in force the same way.
    @Test func refreshIgnoresADeletedEntry() throws {
        let dir = FaultTestKit.temporaryPath("ninth-deleted-entry-refresh")
        defer { FaultTestKit.remove(dir) }
        let log = try LogStore.create(at: dir, options: LogCreateOptions(containerSize: 512 * 1024, containerCount: 3, blockSize: 4096, codec: .none))
        let a = try log.createStream("a")
        let first = try a.append([1, 2, 3])
        try log.close()
        let reader = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true))
        try LogicalIDLimitTests.rewriteBase(dir) { r in
            r.streams.append(StreamEntry(id: r.nextStreamID, flags: StreamEntry.deletedFlag, name: "a", base: first, last: first))
            r.nextStreamID += 1
        }
        #expect(try reader.refresh())
        #expect(reader.streams().map(\.name) == ["", "a"])
        #expect(try reader.openStream("a").id == a.id)
        try reader.close()
    }
}

@Suite("A stream's last LSN survives container switches the appends ran ahead of")
struct StreamLastAcrossSwitchesTests {
    /// The base file records a stream's last record below the scan start (recovery scans from there). It
    /// knew only the stream's last record and its last one in the container before: with appends two
    /// containers ahead of the writer's container switch, it recorded the stream's old value (here null),
    /// and after a crash there (the blocks after the switch never written) the stream's `lastLSN` was null,
    /// although its acknowledged records read back. (A TM takes a stream with a null `lastLSN` for an empty
    /// one, and a KV checkpoint covers through it.)
    @Test func lastLSNAfterACrashBehindAppendsTwoContainersAhead() throws {
        let dir = FaultTestKit.temporaryPath("ninth-stream-last")
        defer { FaultTestKit.remove(dir) }
        let io = FaultyFileIO()
        let log = try LogStore.create(
            at: dir, options: LogCreateOptions(containerSize: 512 * 1024, containerCount: 5, blockSize: 4096, codec: .none), io: io)
        let s = try log.createStream("s")
        let t = try log.createStream("t")
        var acknowledged = LSN.null
        for _ in 0..<3 { acknowledged = try s.append([UInt8](repeating: 5, count: 100)) }
        try log.flush()
        // Nothing flushed from here: the writer's next batch records the switches to containers 2 and 3.
        let filler = [UInt8](repeating: 1, count: 3000)
        while log.lastLSN.container < 2 { try t.append(filler) }
        try s.append([1])
        while log.lastLSN.container < 3 { try t.append(filler) }
        try s.append([2])
        // The crash: container 2's blocks are never written (after the base file recorded the switch to it).
        let physical = try #require(log.info().containers.first { $0.logicalID == 2 }).physicalID
        io.inject(.pwritev, pathContains: ContainerFiles.name(physicalID: physical))
        #expect(throws: LogError.self) { try log.flush() }
        try? log.close()

        let again = try LogStore.open(at: dir)
        let reopened = try again.openStream("s")
        #expect(reopened.lastLSN == acknowledged)
        #expect(try reopened.read(acknowledged).data == [UInt8](repeating: 5, count: 100))
        try again.close()
    }
}
