// The last logical container id (2^32 − 1, docs/format/lsn.md, Limits). A base file may name it (it is
// valid: ids need only be contiguous), so opening, reading and writing such a log must end in typed
// errors, never in an arithmetic overflow trap on `logical + 1`.

import Foundation
import Testing
import TxLogTestSupport
@testable import LogStore

@Suite struct LogicalIDLimitTests {
    /// Rewrites the newest base-file slot of the log at `dir` with `change` applied (generation + 1, so
    /// it is the one an open chooses).
    static func rewriteBase(_ dir: String, _ change: (inout BaseRecord) -> Void) throws {
        let path = dir + "/" + Format.baseFileName
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let slots = (0..<2).compactMap { k -> BaseRecord? in
            let slice = Array(bytes[(k * Format.baseSlotSize)..<((k + 1) * Format.baseSlotSize)])
            return try? slice.withUnsafeBytes { try BaseRecord.decode($0) }
        }
        var record = try #require(slots.max { $0.generation < $1.generation })
        change(&record)
        record.generation += 1
        try record.validate()
        let encoded = record.encode()
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.seek(toOffset: UInt64(record.generation % 2) * UInt64(Format.baseSlotSize))
        handle.write(Data(encoded))
        try handle.close()
    }

    /// A new log (2 × 512 KiB, 1 KiB blocks, nothing written) whose active container holds logical
    /// container `logical` instead of 1.
    static func makeLog(logical: UInt32) throws -> String {
        let dir = NSTemporaryDirectory() + "txlog-logical-limit-\(UUID().uuidString)"
        var options = LogCreateOptions()
        options.containerSize = 512 << 10
        options.blockSize = 1024
        try removingOnThrow(dir) {
            try LogStore.create(at: dir, options: options).close()
            try rewriteBase(dir) { r in
                for i in r.containers.indices where r.containers[i].state == .active { r.containers[i].logicalID = logical }
                r.scanStart = LSN(container: logical, blockOffset: UInt64(Format.containerDataStart), slot: 0)!
                r.scanStartPreviousLSN = .null
                r.baseLSN = .null
                r.durableWatermark = .null
                for i in r.streams.indices { r.streams[i].last = .null }
            }
        }
        return dir
    }

    /// Opening trapped: recovery looks for an unrecorded container switch to `logical + 1` among the
    /// free containers whenever the scan ends at nothing (a clean end), and `logical + 1` overflowed.
    @Test("a log whose newest logical container is 2^32 − 1 opens, and its records are read back")
    func openAtTheLastLogicalID() throws {
        let dir = try Self.makeLog(logical: .max)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for readOnly in [true, false] {
            let log = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: readOnly))
            #expect(log.info().containers.contains { $0.logicalID == .max })
            try log.close()
        }
    }

    /// When the last logical container is full there is no next id: the writer moved to `logical + 1`
    /// and trapped. The append now fails with `log-full` (nothing can make room), and the log stays usable.
    @Test("filling the last logical container: log-full, not a trap; what was written reads back")
    func fillTheLastLogicalContainer() throws {
        let dir = try Self.makeLog(logical: .max)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let log = try LogStore.open(at: dir)
        var written: [LSN] = []
        var failure: LogError?
        for _ in 0..<2000 {
            do { written.append(try log.append([UInt8](repeating: 0x5A, count: 900))) } catch let e as LogError {
                failure = e
                break
            }
        }
        #expect(failure?.code == .logFull, "\(String(describing: failure))")
        try log.flush()
        #expect(written.allSatisfy { $0.container == .max } && written.count > 100)
        var cursor = try log.records()
        var n = 0
        while let r = try cursor.next() {
            #expect(r.data.count == 900)
            n += 1
        }
        #expect(n == written.count)
        #expect(log.archiveExtents().allSatisfy { $0.logicalID == .max })
        try log.close()
        let again = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true, recovery: .strict))
        #expect(again.lastLSN == written.last)
        try again.close()
    }

    /// A plain append that reaches the reserved space goes through the log-full path, which names the
    /// LSN the tail must reach: the container after the oldest one holding records. In the last logical
    /// container that would be `logical + 1`.
    @Test("reaching the reserved space in the last logical container: log-full, not a trap")
    func reservedSpaceInTheLastLogicalContainer() throws {
        let dir = try Self.makeLog(logical: .max)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let log = try LogStore.open(at: dir)
        let s = try log.createStream("undo")
        let d = Int(Format.containerDataEnd(size: 512 << 10)) - Format.containerDataStart
        let size = 50_000
        try s.reserve(recordSizes: [Int](repeating: size, count: d / log.core.reservationCost(size)))
        var failure: LogError?
        for _ in 0..<2000 {
            do { try log.append([UInt8](repeating: 0x5A, count: 900)) } catch let e as LogError {
                failure = e
                break
            }
        }
        #expect(failure?.code == .logFull, "\(String(describing: failure))")
        try s.append([UInt8](repeating: 1, count: size), usingReservation: true)
        try log.close()
    }
}

/// The other counters a base file carries and a writer increments: the epoch (u32, + 1 per writable
/// open), the generation (u64, + 1 per update) and the next physical container id (u32, + 1 per container
/// added). A base file may hold their largest values; the increments trapped.
@Suite struct BaseCounterLimitTests {
    static func makeLog(_ change: @escaping (inout BaseRecord) -> Void) throws -> String {
        let dir = NSTemporaryDirectory() + "txlog-counter-limit-\(UUID().uuidString)"
        var options = LogCreateOptions()
        options.containerSize = 512 << 10
        options.blockSize = 1024
        try removingOnThrow(dir) {
            try LogStore.create(at: dir, options: options).close()
            try LogicalIDLimitTests.rewriteBase(dir, change)
        }
        return dir
    }

    @Test("a base file at the last epoch or generation: read-only opens work, a writable open is log-full, not a trap")
    func lastEpochAndGeneration() throws {
        for change in [{ (r: inout BaseRecord) in r.epoch = .max }, { (r: inout BaseRecord) in r.generation = .max - 1 }] {
            let dir = try Self.makeLog(change)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true)).close()
            expectLogError(.logFull) { _ = try LogStore.open(at: dir) }
        }
    }

    /// The limits table of base-file.md: a writable open refuses generation 2^63 − 1 (`UInt64.max / 2`) and
    /// above, and takes the one below (it said 2^63, one above where the refusal starts).
    @Test("the generation a writable open refuses starts at 2^63 - 1, as base-file.md says")
    func generationBoundary() throws {
        // rewriteBase writes the changed record with generation + 1.
        let below = try Self.makeLog { $0.generation = UInt64.max / 2 - 2 }
        defer { try? FileManager.default.removeItem(atPath: below) }
        let log = try LogStore.open(at: below)
        try log.close()
        let at = try Self.makeLog { $0.generation = UInt64.max / 2 - 1 }
        defer { try? FileManager.default.removeItem(atPath: at) }
        expectLogError(.logFull) { _ = try LogStore.open(at: at) }
        try LogStore.open(at: at, options: LogOpenOptions(readOnly: true)).close()
    }

    @Test("a base file whose next physical id is the last: adding a container is invalid-argument, not a trap")
    func lastPhysicalID() throws {
        let dir = try Self.makeLog { $0.nextPhysicalID = .max }
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let log = try LogStore.open(at: dir)
        expectLogError(.invalidArgument) { _ = try log.addContainer() }
        try log.append(Array("still usable".utf8))
        try log.flush()
        try log.close()
    }
}
