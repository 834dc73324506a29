// Shared helpers of the fault-injection, error-path and base-file tests: temporary directories, tiny
// logs, self-describing payloads, a ledger of what was appended and acknowledged, and the reopen check
// (I1: every acknowledged record is there byte for byte; I2/I3: what is there is a prefix of what was
// appended, nothing fabricated).

import Foundation
import Testing
@testable import LogStore
import TxLogTestSupport

enum FaultTestKit {
    /// 512 KiB containers and 4 KiB blocks, so container switches come quickly.
    static let containerSize: UInt64 = 524_288

    static func tinyOptions(containers: Int = 4) -> LogCreateOptions {
        LogCreateOptions(containerSize: containerSize, containerCount: containers, blockSize: 4096)
    }

    /// A fresh path under the temporary directory (not created).
    static func temporaryPath(_ tag: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("txlog-\(tag)-\(UUID().uuidString)").path
    }

    static func remove(_ path: String) { try? FileManager.default.removeItem(atPath: path) }

    /// A tiny log at `dir` on a `FaultyFileIO`, with one record (payload 0) appended and flushed, whose
    /// next fdatasync fails with EIO.
    static func logWhoseNextSyncFails(at dir: String) async throws -> (io: FaultyFileIO, log: LogStore, first: LSN) {
        let io = FaultyFileIO()
        let log = try LogStore.create(at: dir, options: tinyOptions(), io: io)
        let first = try log.append(payload(0))
        try await log.flush(upTo: first)
        io.inject(.fdatasync, nth: 1, .fail(errno: EIO))
        return (io, log, first)
    }

    /// Copies a log directory (a cheap way to start many iterations from the same state).
    static func copy(_ from: String, tag: String) throws -> String {
        let to = temporaryPath(tag)
        try removingOnThrow(to) { try FileManager.default.copyItem(atPath: from, toPath: to) }
        return to
    }

    /// Payload `i`: a header naming it plus pseudo-random bytes (so lz4 cannot shrink blocks much),
    /// 150...1049 bytes long.
    static func payload(_ i: Int) -> [UInt8] {
        i >= 0 && i < cachedPayloads.count ? cachedPayloads[i] : makePayload(i)
    }

    private static let cachedPayloads: [[UInt8]] = (0..<4096).map(makePayload)

    private static func makePayload(_ i: Int) -> [UInt8] {
        selfNamed("record #\(i) |", length: 150 + (i &* 7919) % 900, seed: UInt64(truncatingIfNeeded: i))
    }

    /// `name`'s bytes, then xorshift bytes from `seed` up to `length`: a payload that says what it is and
    /// that a checker can build again.
    static func selfNamed(_ name: String, length: Int, seed: UInt64) -> [UInt8] {
        var bytes = Array(name.utf8)
        var x = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        while bytes.count < length {
            x ^= x << 13
            x ^= x >> 7
            x ^= x << 17
            bytes.append(UInt8(truncatingIfNeeded: x))
        }
        return bytes
    }

    static func fileBytes(_ path: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) }

    static func writeFile(_ path: String, _ bytes: [UInt8]) throws { try Data(bytes).write(to: URL(fileURLWithPath: path)) }

    /// The LogError an expression threw, or nil if it did not throw one.
    static func logError(_ body: () throws -> Void) -> LogError? {
        do {
            try body()
            return nil
        } catch let e as LogError {
            return e
        } catch {
            Issue.record("unexpected error type: \(error)")
            return nil
        }
    }
}

/// What a test appended, in order, and how many of those records a successful flush covered.
struct FaultLedger {
    struct Entry {
        var lsn: LSN
        var data: [UInt8]
    }

    var entries: [Entry] = []
    /// entries[0..<acked] were covered by a flush that returned success.
    var acked = 0
    /// The next payload index.
    var next = 0

    /// Appends `count` records, then flushes. Returns nil on success or the error of the first append or
    /// flush that failed. Records appended before an error stay in the ledger (unacknowledged).
    mutating func round(_ log: LogStore, count: Int) -> LogError? {
        for _ in 0..<count {
            let data = FaultTestKit.payload(next)
            do {
                let lsn = try log.append(data)
                if let last = entries.last, lsn <= last.lsn {
                    Issue.record("append returned \(lsn), not above the previous \(last.lsn)")
                }
                entries.append(Entry(lsn: lsn, data: data))
                next += 1
            } catch let e as LogError {
                return e
            } catch {
                Issue.record("unexpected error type: \(error)")
                return LogError(.io, "\(error)")
            }
        }
        guard let last = entries.last else { return nil }
        do {
            try log.flush(upTo: last.lsn)
            acked = entries.count
            return nil
        } catch let e as LogError {
            return e
        } catch {
            Issue.record("unexpected error type: \(error)")
            return LogError(.io, "\(error)")
        }
    }

    /// Opens the log with plain POSIX I/O and checks it against the ledger: the records read forward from
    /// the start are exactly a prefix of what was appended (same LSNs, same bytes, nothing extra), and
    /// that prefix includes every acknowledged record. Returns how many records survived.
    @discardableResult
    func verify(directory: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> Int {
        let log = try LogStore.open(at: directory, options: LogOpenOptions(readOnly: true))
        defer { try? log.close() }
        return try verify(log, sourceLocation: sourceLocation)
    }

    @discardableResult
    func verify(_ log: LogStore, sourceLocation: SourceLocation = #_sourceLocation) throws -> Int {
        var cursor = try log.records()
        var n = 0
        while let r = try cursor.next() {
            guard n < entries.count else {
                Issue.record("record \(r.lsn) was never appended (fabricated)", sourceLocation: sourceLocation)
                return n
            }
            if r.lsn != entries[n].lsn || r.data != entries[n].data {
                Issue.record("record \(n): expected \(entries[n].lsn) (\(entries[n].data.count) bytes), found \(r.lsn) (\(r.data.count) bytes): not a prefix of what was appended", sourceLocation: sourceLocation)
                return n
            }
            n += 1
        }
        #expect(n >= acked, "only \(n) records survived, but \(acked) were acknowledged (I1)", sourceLocation: sourceLocation)
        // Point reads of some acknowledged records too (the first, every 16th, the last).
        let checked = min(acked, n)
        for k in stride(from: 0, to: checked, by: 16) + (checked > 0 ? [checked - 1] : []) {
            #expect(try log.read(entries[k].lsn).data == entries[k].data, sourceLocation: sourceLocation)
        }
        return n
    }

    /// Reopens for writing and checks the survivors. With `continueAndRecheck`, then appends and flushes a
    /// few more records, closes and checks everything again: recovery must leave a log that keeps working.
    /// Returns how many of the ledger's records survived.
    @discardableResult
    mutating func reopenVerifyAndContinue(
        directory: String, continueAndRecheck: Bool = true, sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> Int {
        let log = try LogStore.open(at: directory)
        let survived = try verify(log, sourceLocation: sourceLocation)
        // Records past the survivors are gone for good; the log continues after them.
        entries.removeLast(entries.count - survived)
        acked = survived
        if continueAndRecheck {
            let error = round(log, count: 20)
            #expect(error == nil, "the reopened log could not take a flush: \(String(describing: error))", sourceLocation: sourceLocation)
        }
        try log.close()
        if continueAndRecheck { try verify(directory: directory, sourceLocation: sourceLocation) }
        return survived
    }
}
