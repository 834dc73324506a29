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
