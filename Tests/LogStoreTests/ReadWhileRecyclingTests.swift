// Reads on a writable log whose base moves and whose containers are recycled under them: a read that
// looked up a container before recycling freed it, and read the file after the writer had reused it
// for a newer logical container, found another cycle's bytes there. The records are gone, not damaged.

import Foundation
import Testing
@testable import LogStore

@Suite("Reading while containers are recycled")
struct ReadWhileRecyclingTests {
    /// A log of `containers` containers (two by default): `first` is the log's first record, `second` a
    /// record in the next logical container, everything flushed.
    static func twoContainerLog(_ dir: String, io: ParkingIO, containers: Int = 2) throws -> (log: LogStore, first: LSN, second: LSN) {
        let log = try LogStore.create(at: dir, options: FaultTestKit.tinyOptions(containers: containers), io: io)
        let first = try log.append(FaultTestKit.payload(0))
        var i = 1
        var lsn = first
        while lsn.container == first.container {
            lsn = try log.append(FaultTestKit.payload(i))
            i += 1
        }
        try log.flush()
        return (log, first, lsn)
    }

    /// Moves the base to `second` (freeing `first`'s container) and appends until the writer has reused
    /// that container for the next logical container and written a few blocks there.
    static func recycle(_ log: LogStore, past second: LSN) throws {
        try log.advanceBase(to: second)
        var i = 0
        var lsn = second
        while lsn.container <= second.container || lsn.blockOffset < 64 * 1024 {
            lsn = try log.append(FaultTestKit.payload(i))
            i += 1
        }
        try log.flush()
    }

    /// Runs `body` on its own thread, parks its first container read, recycles, then lets the read go on.
    static func readParkedAcrossRecycling(
        _ io: ParkingIO, _ log: LogStore, second: LSN, _ body: @escaping @Sendable () throws -> Void
    ) throws -> LogError? {
        let result = LockedBox<LogError?>(nil)
        let done = DispatchSemaphore(value: 0)
        io.arm()
        let reader = Thread {
            do { try body() } catch { result.withLock { $0 = (error as? LogError) ?? LogError(.io, "\(error)") } }
            done.signal()
        }
        reader.start()
        io.entered.wait()
        try recycle(log, past: second)
        io.release.signal()
        done.wait()
        return result.snapshot
    }

    @Test("a read by LSN whose container is recycled while it reads is not-found")
    func readByLSNAcrossRecycling() async throws {
        let dir = FaultTestKit.temporaryPath("recycle-read-lsn")
        defer { FaultTestKit.remove(dir) }
        let (error, failed) = try await onOwnThread { () throws -> (LogError?, Bool) in
            let io = ParkingIO(parkAt: .containerRead)
            let (log, first, second) = try Self.twoContainerLog(dir, io: io)
            let error = try Self.readParkedAcrossRecycling(io, log, second: second) { _ = try log.read(first) }
            let failed = log.isFailed
            try log.close()
            return (error, failed)
        }
        #expect(error?.code == .notFound, "\(String(describing: error))")
        #expect(!failed)
    }

    /// A cursor that had looked up its next block's container before recycling freed it reported a
    /// healthy log `corrupt` ("no block header"): it read the new cycle's bytes where its block had been.
    @Test("a cursor whose next block's container is recycled while it reads gets not-found, not corrupt")
    func cursorAcrossRecycling() async throws {
        let dir = FaultTestKit.temporaryPath("recycle-read-cursor")
        defer { FaultTestKit.remove(dir) }
        let error = try await onOwnThread { () throws -> LogError? in
            let io = ParkingIO(parkAt: .containerRead)
            let (log, first, second) = try Self.twoContainerLog(dir, io: io)
            defer { try? log.close() }
            // Starts at the first block's last record (the start's read caches that block), so the cursor's
            // second call reads the second block from disk, along the log's blocks.
            var last = first
            while let r = try? log.read(LSN(rawValue: last.rawValue + 1)) { last = r.lsn }
            var cursor = try log.records(from: last)
            _ = try cursor.next()
            let box = LockedBox(cursor)
            return try Self.readParkedAcrossRecycling(io, log, second: second) {
                try box.withLock { c in
                    // Never a record of the new cycle taken for one of the old.
                    while let r = try c.next(), r.lsn.container == first.container {}
                }
            }
        }
        #expect(error?.code == .notFound, "\(String(describing: error))")
    }

    /// A read-only instance opened before the writer recycled the container its cursor is reading: the
    /// records it already has come back as they were, the rest are `notFound`; never the new cycle's.
    @Test("a read-only instance reading while the writer recycles gets the old records or not-found")
    func readOnlyInstanceAcrossRecycling() async throws {
        let dir = FaultTestKit.temporaryPath("recycle-read-only")
        defer { FaultTestKit.remove(dir) }
        let (codes, foreign) = try await onOwnThread { () throws -> ([LogError.Code?], [LSN]) in
            let (writer, first, second) = try Self.twoContainerLog(dir, io: ParkingIO(parkAt: .containerRead))
            defer { try? writer.close() }
            let reader = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true))
            defer { try? reader.close() }
            var cursor = try reader.records(from: first)
            _ = try cursor.next()
            try Self.recycle(writer, past: second)
            var foreign: [LSN] = []
            var codes: [LogError.Code?] = []
            do {
                while let r = try cursor.next() { if r.lsn.container != first.container && r.lsn >= second { break } }
                codes.append(nil)
            } catch { codes.append((error as? LogError)?.code) }
            do { _ = try reader.read(LSN(rawValue: first.rawValue + 1)); codes.append(nil) } catch { codes.append((error as? LogError)?.code) }
            do {
                var c = try reader.records(from: second)
                while let r = try c.next() { if r.lsn.container > second.container { foreign.append(r.lsn) } }
            } catch { codes.append((error as? LogError)?.code) }
            return (codes, foreign)
        }
        #expect(codes.allSatisfy { $0 == .notFound || $0 == nil }, "\(codes)")
        #expect(codes.first == .notFound, "the cursor read on into the recycled container: \(codes)")
        #expect(foreign.isEmpty, "\(foreign)")
    }

    /// The block cache holds the old cycle's first block (read before the recycle); the same physical
    /// position now holds the new cycle's first block. Each LSN gets its own cycle's record, or
    /// `notFound` once recycled.
    @Test("the block cache never serves a recycled container's earlier cycle")
    func cacheAcrossRecycling() async throws {
        let dir = FaultTestKit.temporaryPath("recycle-read-cache")
        defer { FaultTestKit.remove(dir) }
        let (old, fresh, expected) = try await onOwnThread { () throws -> (LogError.Code?, LogRecord, [UInt8]) in
            let (log, first, second) = try Self.twoContainerLog(dir, io: ParkingIO(parkAt: .containerRead))
            defer { try? log.close() }
            #expect(try log.read(first).data == FaultTestKit.payload(0))  // cached now
            try log.advanceBase(to: second)
            var i = 10_000
            var lsn = second
            var newFirst: (LSN, [UInt8])?
            while newFirst == nil || lsn.blockOffset < 16 * 1024 {
                let data = FaultTestKit.payload(i)
                lsn = try log.append(data)
                if newFirst == nil, lsn.container == second.container + 1 { newFirst = (lsn, data) }
                i += 1
            }
            try log.flush()
            var code: LogError.Code?
            do { _ = try log.read(first) } catch { code = (error as? LogError)?.code }
            return (code, try log.read(newFirst!.0), newFirst!.1)
        }
        #expect(old == .notFound)
        #expect(fresh.data == expected)
    }
}
