// The stream table, found by the tenth review (docs/RELIABILITY.md): the id a created stream gets when the
// base file's next stream id is not above every id in its table, and advanceBase of a stream deleted
// meanwhile. Each test failed before its fix.

import Foundation
import Testing
import TxLogTestSupport
@testable import LogStore

@Suite("A base file's next stream id never hands out an id in use")
struct NextStreamIDTests {
    /// docs/format/base-file.md allows a table that holds stream 0 with a next stream id of 0. Taken as it
    /// stood, the next `createStream` got id 0, the default stream's: the two streams shared their records.
    @Test func nextIDZeroWithTheDefaultStream() throws {
        let dir = FaultTestKit.temporaryPath("next-stream-id-zero")
        defer { FaultTestKit.remove(dir) }
        let log = try LogStore.create(at: dir, options: LogCreateOptions(containerSize: 512 * 1024, containerCount: 3, blockSize: 4096, codec: .none))
        let first = try log.append([1, 2, 3])
        try log.close()
        try LogicalIDLimitTests.rewriteBase(dir) { r in
            r.streams = [StreamEntry(id: 0, name: "", base: first, last: first)]
            r.nextStreamID = 0
        }
        let reopened = try LogStore.open(at: dir)
        let b = try reopened.createStream("b")
        #expect(b.id == 1)
        let lsn = try b.append([9])
        try reopened.flush(upTo: lsn)
        // The default stream still holds only its own record.
        #expect(try Self.data(reopened.defaultStream) == [[1, 2, 3]])
        try reopened.close()
        let again = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true))
        #expect(again.streams().map(\.name) == ["", "b"])
        #expect(try Self.data(again.openStream("b")) == [[9]])
        try again.close()
    }

    static func data(_ stream: LogStream) throws -> [[UInt8]] {
        var cursor = try stream.records()
        var all: [[UInt8]] = []
        while let r = try cursor.next() { all.append(r.data) }
        return all
    }

    /// The rule both an open and a read-only log's refresh take the table by: the next id is above every
    /// id in the table, and a table-less log has the default stream only.
    @Test func nextIDIsAboveEveryID() throws {
        let meta = BaseRecord.sampleWithStreams(next: 0, ids: [0])
        #expect(LogCore.streamTable(of: meta, defaultLast: .null).nextID == 1)
        #expect(LogCore.streamTable(of: BaseRecord.sampleWithStreams(next: 9, ids: [0, 3]), defaultLast: .null).nextID == 9)
        #expect(LogCore.streamTable(of: BaseRecord.sampleWithStreams(next: 2, ids: [0, 1]), defaultLast: .null).nextID == 2)
        #expect(LogCore.streamTable(of: BaseRecord.sampleWithStreams(next: 5, ids: []), defaultLast: .null).nextID == 1)
    }
}

extension BaseRecord {
    fileprivate static func sampleWithStreams(next: UInt16, ids: [UInt16]) -> BaseRecord {
        var r = BaseRecord(
            generation: 1, flags: 0, logID: LogID(high: 7, low: 7), containerSize: 512 * 1024, blockSize: 4096, maxRecordSize: 1 << 20,
            codec: .none, epoch: 1, baseLSN: .null, durableWatermark: .null, scanStart: .null, scanStartPreviousLSN: .null, scanStartPreviousCRC: 0,
            nextPhysicalID: 0, containers: [])
        r.nextStreamID = next
        r.streams = ids.map { StreamEntry(id: $0, name: $0 == 0 ? "" : "s\($0)", base: .null, last: .null) }
        return r
    }
}

@Suite("advanceBase of a stream deleted meanwhile")
struct AdvanceBaseOfDeletedStreamTests {
    /// A stream deleted between `advanceBase`'s first check (and its flush) and the step that moves the
    /// base: the call reported success, having set a base on the deleted stream's entry.
    @Test func deletedBeforeTheBaseMoves() throws {
        let dir = FaultTestKit.temporaryPath("advance-base-deleted")
        defer { FaultTestKit.remove(dir) }
        let log = try LogStore.create(at: dir, options: LogCreateOptions(containerSize: 512 * 1024, containerCount: 3, blockSize: 4096, codec: .none))
        defer { try? log.close() }
        let a = try log.createStream("a")
        let lsn = try a.append([1, 2, 3])
        try log.flush(upTo: lsn)
        let parked = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        log.core.beforeBaseMovesForTesting = {
            parked.signal()
            release.wait()
        }
        let outcome = LockedBox<LogError?>(nil)
        let done = DispatchSemaphore(value: 0)
        Thread {
            do { try a.advanceBase(to: lsn) } catch let e as LogError { outcome.withLock { $0 = e } } catch {}
            done.signal()
        }.start()
        parked.wait()
        log.core.beforeBaseMovesForTesting = nil
        try log.deleteStream("a")
        release.signal()
        done.wait()
        #expect(outcome.snapshot?.code == .notFound, "advanceBase of a deleted stream: \(String(describing: outcome.snapshot))")
    }
}
