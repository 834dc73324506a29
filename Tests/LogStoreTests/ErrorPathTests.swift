// Bad arguments, damaged or missing files, and misuse: every one gets a typed LogError with the right
// code, never a crash, and leaves the log usable (or untouched).

import Foundation
import Testing
@testable import LogStore
import TxLogTestSupport

private typealias Kit = FaultTestKit

/// A fresh log with `records` flushed records, its ledger and its directory.
private func makeLog(_ tag: String, containers: Int = 2, records: Int = 100) throws -> (LogStore, FaultLedger, String) {
    let dir = Kit.temporaryPath(tag)
    return try removingOnThrow(dir) {
        let log = try LogStore.create(at: dir, options: Kit.tinyOptions(containers: containers))
        var ledger = FaultLedger()
        if records > 0, let e = ledger.round(log, count: records) {
            try? log.close()
            throw e
        }
        return (log, ledger, dir)
    }
}

private func code(_ body: () throws -> Void) -> LogError.Code? { Kit.logError(body)?.code }

@Suite("ErrorPath: arguments")
struct ErrorPathArgumentTests {
    @Test("A record over maxRecordSize is rejected; one of exactly maxRecordSize round-trips")
    func recordSizeLimit() throws {
        let (log, ledger, dir) = try makeLog("size")
        defer { Kit.remove(dir) }
        #expect(log.maxRecordSize == 524_288 - 4096 - 64 - 24)
        let big = (0..<(log.maxRecordSize + 1)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 8) }
        #expect(code { _ = try log.append(big) } == .invalidArgument)
        #expect(code { _ = try log.append([UInt8](repeating: 0, count: 8 * 1024 * 1024)) } == .invalidArgument)
        #expect(!log.isFailed)
        // The largest record fits, in a container of its own, and survives a reopen.
        let largest = Array(big.dropLast())
        let lsn = try log.append(largest)
        let empty = try log.append([])
        try log.flush(upTo: empty)
        #expect(try log.read(lsn).data == largest)
        try log.close()
        let again = try LogStore.open(at: dir)
        #expect(try again.read(lsn).data == largest)
        #expect(try again.read(empty).data == [])
        #expect(try again.read(ledger.entries[0].lsn).data == ledger.entries[0].data)
        try again.close()
    }

    @Test("flush and read of LSNs beyond the end, and of null/invalid, are invalidArgument")
    func lsnsOutOfRange() async throws {
        let (log, ledger, dir) = try makeLog("range")
        defer { Kit.remove(dir) }
        let last = log.lastLSN
        let beyond = [
            LSN(rawValue: last.rawValue + 1), LSN(container: last.container, blockOffset: last.blockOffset + 512, slot: 0)!,
            LSN(container: last.container + 1, blockOffset: 4096, slot: 0)!, .invalid,
        ]
        for lsn in beyond {
            let e = await { () async -> LogError? in
                do { try await log.flush(upTo: lsn) } catch let e as LogError { return e } catch { return nil }
                return nil
            }()
            #expect(e?.code == .invalidArgument, "flush(upTo: \(lsn))")
            #expect(e?.lsn == lsn)
            #expect(Kit.logError { _ = try log.read(lsn) }?.code == .invalidArgument, "read(\(lsn))")
        }
        #expect(Kit.logError { _ = try log.read(.null) }?.code == .invalidArgument)
        #expect(Kit.logError { _ = try log.read(.invalid) }?.code == .invalidArgument)
        #expect(Kit.logError { _ = try log.records(from: .invalid) }?.code == .invalidArgument)
        // flush(upTo: .null) asks for nothing and succeeds.
        try await log.flush(upTo: .null)
        #expect(!log.isFailed)
        #expect(try log.read(ledger.entries[5].lsn).data == ledger.entries[5].data)
        try log.close()
    }

    @Test("The sync flush of an LSN beyond the end is invalidArgument too")
    func syncFlushBeyondEnd() throws {
        let (log, _, dir) = try makeLog("range")
        defer { Kit.remove(dir) }
        let e = Kit.logError { try log.flush(upTo: LSN(rawValue: log.lastLSN.rawValue + 1)) }
        #expect(e?.code == .invalidArgument)
        #expect(!log.isFailed)
        try log.close()
    }

    @Test("An LSN inside the log that names no record is notFound or invalidArgument, not corruption",
          .bug(id: "faults-4", "LogCore.readBlockFromDisk maps every decode failure, even 'no block here', to corrupt"))
    func lsnNamingNoRecord() throws {
        let (log, ledger, dir) = try makeLog("norecord", records: 600)
        defer { Kit.remove(dir) }
        try log.close()
        let again = try LogStore.open(at: dir)
        defer { try? again.close() }
        // A slot past the end of a full block: the block at 4096 holds fewer than 300 records.
        let firstBlock = ledger.entries.filter { $0.lsn.blockOffset == 4096 && $0.lsn.container == 1 }
        #expect(firstBlock.count > 1 && firstBlock.count < 300)
        let noSlot = LSN(container: 1, blockOffset: 4096, slot: 300)!
        #expect(noSlot < again.lastLSN)
        let c1 = Kit.logError { _ = try again.read(noSlot) }?.code
        #expect(c1 == .notFound || c1 == .invalidArgument, "read(\(noSlot)) gave \(String(describing: c1))")
        // A position in the middle of the first block.
        let secondBlock = try #require(ledger.entries.first { $0.lsn.blockOffset > 4096 }).lsn.blockOffset
        try #require(secondBlock > 4096 + 512)
        let midBlock = LSN(container: 1, blockOffset: 4096 + 512, slot: 0)!
        #expect(midBlock < again.lastLSN)
        let c2 = Kit.logError { _ = try again.read(midBlock) }?.code
        #expect(c2 == .notFound || c2 == .invalidArgument, "read(\(midBlock)) gave \(String(describing: c2))")
        // Nothing was damaged: the log still reads and verifies.
        try ledger.verify(again)
    }

    @Test("Reading below the base is notFound")
    func readBelowBase() throws {
        let (log, ledger, dir) = try makeLog("base")
        defer { Kit.remove(dir) }
        try log.advanceBase(to: ledger.entries[50].lsn)
        #expect(code { _ = try log.read(ledger.entries[49].lsn) } == .notFound)
        #expect(code { _ = try log.read(ledger.entries[0].lsn) } == .notFound)
        #expect(code { _ = try log.records(from: ledger.entries[0].lsn) } == .notFound)
        #expect(try log.read(ledger.entries[50].lsn).data == ledger.entries[50].data)
        var cursor = try log.records()
        #expect(try cursor.next()?.lsn == ledger.entries[50].lsn)
        try log.close()
        let again = try LogStore.open(at: dir)
        #expect(code { _ = try again.read(ledger.entries[0].lsn) } == .notFound)
        try again.close()
    }

    @Test("advanceBase backwards, beyond the end, or to null/invalid is invalidArgument")
    func advanceBaseArguments() throws {
        let (log, ledger, dir) = try makeLog("advance")
        defer { Kit.remove(dir) }
        try log.advanceBase(to: ledger.entries[20].lsn)
        #expect(code { try log.advanceBase(to: ledger.entries[10].lsn) } == .invalidArgument)
        #expect(code { try log.advanceBase(to: .null) } == .invalidArgument)
        #expect(code { try log.advanceBase(to: .invalid) } == .invalidArgument)
        #expect(code { try log.advanceBase(to: LSN(rawValue: log.lastLSN.rawValue + 1)) } == .invalidArgument)
        #expect(log.baseLSN == ledger.entries[20].lsn)
        try log.advanceBase(to: ledger.entries[20].lsn)  // not moving is fine
        #expect(!log.isFailed)
        try log.close()
    }

    struct BadOptions: Sendable, CustomTestStringConvertible {
        var containerSize: UInt64
        var count: Int
        var blockSize: Int
        var testDescription: String { "container \(containerSize) x \(count), block \(blockSize)" }
    }

    static let badOptions: [BadOptions] = [
        BadOptions(containerSize: 100, count: 2, blockSize: 4096),
        BadOptions(containerSize: 0, count: 2, blockSize: 4096),
        BadOptions(containerSize: 524_288 + 4096, count: 2, blockSize: 4096),
        BadOptions(containerSize: 4 * 1024 * 1024 * 1024 + 524_288, count: 2, blockSize: 4096),
        BadOptions(containerSize: 524_288, count: 1, blockSize: 4096),
        BadOptions(containerSize: 524_288, count: 0, blockSize: 4096),
        BadOptions(containerSize: 524_288, count: 1025, blockSize: 4096),
        BadOptions(containerSize: 524_288, count: 2, blockSize: 100),
        BadOptions(containerSize: 524_288, count: 2, blockSize: 1000),
        BadOptions(containerSize: 524_288, count: 2, blockSize: 1636),
        BadOptions(containerSize: 524_288, count: 2, blockSize: 524_288),
        BadOptions(containerSize: 64 * 1024 * 1024, count: 2, blockSize: 16 * 1024 * 1024 + 512),
    ]

    @Test("Create options out of range are invalidArgument and create nothing", arguments: badOptions)
    func createOptionsOutOfRange(_ o: BadOptions) throws {
        let dir = Kit.temporaryPath("opts")
        defer { Kit.remove(dir) }
        let options = LogCreateOptions(containerSize: o.containerSize, containerCount: o.count, blockSize: o.blockSize)
        #expect(code { _ = try LogStore.create(at: dir, options: options) } == .invalidArgument)
        #expect(!FileManager.default.fileExists(atPath: dir), "a rejected create left a directory behind")
    }

    @Test("A negative maxRecordSize, and create over an existing log, are invalidArgument")
    func createMisuse() throws {
        let dir = Kit.temporaryPath("opts")
        defer { Kit.remove(dir) }
        var options = Kit.tinyOptions(containers: 2)
        options.maxRecordSize = -1
        #expect(code { _ = try LogStore.create(at: dir, options: options) } == .invalidArgument)
        let (log, ledger, existing) = try makeLog("exists")
        defer { Kit.remove(existing) }
        try log.close()
        #expect(code { _ = try LogStore.create(at: existing, options: Kit.tinyOptions(containers: 2)) } == .invalidArgument)
        try ledger.verify(directory: existing)
    }

    @Test("An invalid codec override at open is invalidArgument and leaves the log untouched; a valid one writes readable blocks",
          arguments: [Codec.zlib(level: -1), .zlib(level: 0), .zlib(level: 10)])
    func openCodecOverrideValidated(_ bad: Codec) throws {
        let (log, ledger, dir) = try makeLog("codec")
        defer { Kit.remove(dir) }
        try log.close()
        var options = LogOpenOptions()
        options.codec = bad
        let e = Kit.logError { _ = try LogStore.open(at: dir, options: options) }
        #expect(e?.code == .invalidArgument)
        #expect(e?.message.contains("codec") == true, "\(String(describing: e))")
        // Create checks its open options before it creates anything.
        let fresh = Kit.temporaryPath("codec-create")
        defer { Kit.remove(fresh) }
        #expect(code { _ = try LogStore.create(at: fresh, options: Kit.tinyOptions(containers: 2), openOptions: options) } == .invalidArgument)
        #expect(!FileManager.default.fileExists(atPath: fresh), "a rejected create left a directory behind")
        // A valid override writes blocks every later open reads back.
        options.codec = .zlib(level: 9)
        let again = try LogStore.open(at: dir, options: options)
        var lsns: [LSN] = []
        for i in 0..<50 { lsns.append(try again.append([UInt8](repeating: UInt8(i), count: 300))) }
        try again.flush()
        try again.close()
        let reader = try LogStore.open(at: dir)
        for (i, lsn) in lsns.enumerated() { #expect(try reader.read(lsn).data == [UInt8](repeating: UInt8(i), count: 300)) }
        for entry in ledger.entries { #expect(try reader.read(entry.lsn).data == entry.data) }
        try reader.close()
    }

    struct BadGroupCommit: Sendable, CustomTestStringConvertible {
        var maxBatchBytes = 4 * 1024 * 1024
        var maxDirtyBytes = 64 * 1024 * 1024
        var linger: UInt64 = 0
        var testDescription: String { "batch \(maxBatchBytes), dirty \(maxDirtyBytes), linger \(linger)" }
        var options: LogOpenOptions {
            var o = LogOpenOptions()
            o.groupCommit.maxBatchBytes = maxBatchBytes
            o.groupCommit.maxDirtyBytes = maxDirtyBytes
            o.groupCommit.lingerNanoseconds = linger
            return o
        }
    }

    static let badGroupCommit: [BadGroupCommit] = [
        BadGroupCommit(maxDirtyBytes: -1), BadGroupCommit(maxDirtyBytes: .min), BadGroupCommit(maxBatchBytes: 0),
        BadGroupCommit(maxBatchBytes: -4096), BadGroupCommit(linger: GroupCommitOptions.maxLingerNanoseconds + 1),
        BadGroupCommit(linger: .max),
    ]

    /// A negative maxDirtyBytes used to be accepted, and the first append then waited for ever.
    @Test("Group-commit options out of range are invalidArgument at open and at create", arguments: badGroupCommit)
    func groupCommitOptionsValidated(_ bad: BadGroupCommit) throws {
        let (log, ledger, dir) = try makeLog("group")
        defer { Kit.remove(dir) }
        try log.close()
        do {
            let opened = try LogStore.open(at: dir, options: bad.options)
            try opened.close()  // nothing appended: closing cannot wait on back-pressure
            Issue.record("open accepted \(bad)")
        } catch let e as LogError {
            #expect(e.code == .invalidArgument)
            #expect(e.message.contains("group commit"), "\(e)")
        }
        let fresh = Kit.temporaryPath("group-create")
        defer { Kit.remove(fresh) }
        #expect(code { _ = try LogStore.create(at: fresh, options: Kit.tinyOptions(containers: 2), openOptions: bad.options) } == .invalidArgument)
        #expect(!FileManager.default.fileExists(atPath: fresh), "a rejected create left a directory behind")
        try ledger.verify(directory: dir)
    }

    @Test("maxDirtyBytes 0 is accepted: every sealed block waits for the writer, and appends go on")
    func zeroMaxDirtyBytes() throws {
        let (log, _, dir) = try makeLog("dirty0", records: 0)
        defer { Kit.remove(dir) }
        try log.close()
        var options = LogOpenOptions()
        options.groupCommit.maxDirtyBytes = 0
        let again = try LogStore.open(at: dir, options: options)
        var ledger = FaultLedger()
        if let e = ledger.round(again, count: 300) { throw e }
        try again.close()
        #expect(try ledger.verify(directory: dir) == 300)
    }

    @Test("removeContainer: active is invalidArgument, unknown is notFound, the last two stay")
    func removeContainerArguments() throws {
        let (log, ledger, dir) = try makeLog("remove", containers: 3)
        defer { Kit.remove(dir) }
        #expect(code { try log.removeContainer(0) } == .invalidArgument)
        #expect(code { try log.removeContainer(99) } == .notFound)
        try log.removeContainer(2)
        #expect(!FileManager.default.fileExists(atPath: dir + "/container-000002"))
        #expect(code { try log.removeContainer(2) } == .notFound)
        #expect(code { try log.removeContainer(1) } == .invalidArgument)
        #expect(log.info().containers.map(\.physicalID) == [0, 1])
        #expect(!log.isFailed)
        try log.close()
        let again = try LogStore.open(at: dir)
        #expect(again.info().containers.map(\.physicalID) == [0, 1])
        try ledger.verify(again)
        try again.close()
    }

    @Test("A full log says logFull, stays usable, and takes appends again after advanceBase")
    func logFull() throws {
        let (log, _, dir) = try makeLog("full", containers: 2, records: 0)
        defer { Kit.remove(dir) }
        var ledger = FaultLedger()
        var full: LogError?
        for _ in 0..<60 {
            if let e = ledger.round(log, count: 48) {
                full = e
                break
            }
        }
        #expect(full?.code == .logFull)
        #expect(!log.isFailed)
        // Everything appended before the full one is still there and can be flushed.
        try log.flush()
        ledger.acked = ledger.entries.count
        try ledger.verify(log)
        try log.advanceBase(to: ledger.entries[ledger.entries.count - 1].lsn)
        #expect(log.info().freeContainers == 1)
        let more = try log.append(Kit.payload(9999))
        try log.flush(upTo: more)
        try log.close()
        let again = try LogStore.open(at: dir)
        #expect(try again.read(more).data == Kit.payload(9999))
        try again.close()
    }
}

@Suite("ErrorPath: files and modes")
struct ErrorPathFileTests {
    @Test("open of a missing directory, or of a directory that holds no log, is notFound")
    func openNotALog() throws {
        let missing = Kit.temporaryPath("missing")
        #expect(code { _ = try LogStore.open(at: missing) } == .notFound)
        #expect(code { _ = try LogStore.open(at: missing, options: LogOpenOptions(readOnly: true)) } == .notFound)
        let empty = Kit.temporaryPath("empty")
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        defer { Kit.remove(empty) }
        try Kit.writeFile(empty + "/unrelated.txt", Array("hello".utf8))
        #expect(code { _ = try LogStore.open(at: empty) } == .notFound)
        #expect(code { _ = try LogStore.open(at: empty + "/unrelated.txt") } == .notFound)
    }

    @Test("A garbage base file: without the signature it is notFound whatever its length (empty too), with it a damaged or short slot is corrupt")
    func garbageBaseFile() throws {
        let (log, _, dir) = try makeLog("garbage", records: 10)
        defer { Kit.remove(dir) }
        try log.close()
        let basePath = dir + "/" + Format.baseFileName
        let original = try Kit.fileBytes(basePath)
        var rng = SystemRandomNumberGenerator()
        // Shorter than a slot header: the signature decides, as for a file of any length.
        for short in [[], [0x54], [UInt8](repeating: 0x5A, count: 100)] {
            try Kit.writeFile(basePath, short)
            #expect(code { _ = try LogStore.open(at: dir) } == .notFound, "\(short.count) bytes without the signature")
            #expect(code { _ = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true)) } == .notFound)
        }
        try Kit.writeFile(basePath, Array(original[Format.baseSlotSize..<(Format.baseSlotSize + 100)]))  // slot 1 (written by create), cut
        #expect(code { _ = try LogStore.open(at: dir) } == .corrupt)
        try Kit.writeFile(basePath, Array(original[Format.baseSlotSize..<(Format.baseSlotSize + 8)]))  // the signature alone
        #expect(code { _ = try LogStore.open(at: dir) } == .corrupt)
        // Random bytes without the signature (BaseFile.readNewest: "not a TxLog log").
        var noise = (0..<original.count).map { _ in UInt8.random(in: 0...255, using: &rng) }
        noise[0] = 0
        noise[Format.baseSlotSize] = 0
        try Kit.writeFile(basePath, noise)
        #expect(code { _ = try LogStore.open(at: dir) } == .notFound)
        #expect(code { _ = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true)) } == .notFound)
        // The signature and a valid version, then noise: it claims to be a base file and is damaged.
        // (A damaged version field is covered in BaseFileTests.)
        for slot in [0, Format.baseSlotSize] {
            withUnsafeBytes(of: Format.baseMagic.littleEndian) { noise.replaceSubrange(slot..<(slot + 8), with: $0) }
            noise.replaceSubrange((slot + 8)..<(slot + 12), with: [UInt8(Format.version), 0, 128, 0])
        }
        try Kit.writeFile(basePath, noise)
        #expect(code { _ = try LogStore.open(at: dir) } == .corrupt)
        // Only the first slot, truncated in the middle of its container table.
        try Kit.writeFile(basePath, Array(original.prefix(150)))
        #expect(code { _ = try LogStore.open(at: dir) } == .corrupt)
        // Restored, it opens.
        try Kit.writeFile(basePath, original)
        try LogStore.open(at: dir).close()
    }

    @Test("A missing container is notFound naming the container")
    func missingContainer() throws {
        let (log, _, dir) = try makeLog("nocontainer")
        defer { Kit.remove(dir) }
        try log.close()
        try FileManager.default.removeItem(atPath: dir + "/container-000001")
        for options in [LogOpenOptions(), LogOpenOptions(readOnly: true)] {
            let e = Kit.logError { _ = try LogStore.open(at: dir, options: options) }
            #expect(e?.code == .notFound)
            #expect(e?.container == 1)
            #expect(e?.path?.hasSuffix("container-000001") == true)
            #expect(e?.message.contains("container 1") == true, "\(String(describing: e))")
        }
    }

    @Test("A container of the wrong size, or from another log, is corrupt", arguments: [262_144, 524_288 + 512, 0])
    func wrongSizeContainer(size: Int) throws {
        let (log, ledger, dir) = try makeLog("wrongsize")
        defer { Kit.remove(dir) }
        try log.close()
        let path = dir + "/container-000001"
        let original = try Kit.fileBytes(path)
        let handle = try #require(FileHandle(forWritingAtPath: path))
        try handle.truncate(atOffset: UInt64(size))
        try handle.close()
        let e = Kit.logError { _ = try LogStore.open(at: dir) }
        #expect(e?.code == .corrupt)
        #expect(e?.container == 1)
        try Kit.writeFile(path, original)
        try ledger.verify(directory: dir)
    }

    @Test("A container from another log is corrupt")
    func foreignContainer() throws {
        let (log, _, dir) = try makeLog("foreign")
        defer { Kit.remove(dir) }
        try log.close()
        let (other, _, otherDir) = try makeLog("foreign2", records: 0)
        defer { Kit.remove(otherDir) }
        try other.close()
        try FileManager.default.removeItem(atPath: dir + "/container-000001")
        try FileManager.default.copyItem(atPath: otherDir + "/container-000001", toPath: dir + "/container-000001")
        let e = Kit.logError { _ = try LogStore.open(at: dir) }
        #expect(e?.code == .corrupt)
        #expect(e?.container == 1)
    }

    /// A read-only cursor meeting a container that the writer recycled after the read-only open used to
    /// report `corrupt` ("block belongs to another log, container cycle..."): a false alarm.
    @Test("A read-only cursor over containers a live writer has recycled since the open gets notFound, not corrupt; real damage stays corrupt")
    func readOnlyCursorAfterRecycling() throws {
        let (writer, _, dir) = try makeLog("ro-recycled", containers: 4, records: 0)
        defer { Kit.remove(dir) }
        var ledger = FaultLedger()
        if let e = ledger.round(writer, count: 1000) { throw e }  // about 1.2 containers
        try writer.advanceBase(to: ledger.entries[500].lsn)
        let reader = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true))
        defer { try? reader.close() }
        var cursor = try reader.records()
        var seen: [LogRecord] = []
        for _ in 0..<10 { if let r = try cursor.next() { seen.append(r) } }
        let readerBase = try #require(seen.first?.lsn)
        let known = reader.info().containers.filter { $0.logicalID != 0 }.map(\.physicalID)
        // The writer goes round the log until every container the reader knew has been reused.
        while true {
            if let e = ledger.round(writer, count: 200) { throw e }
            try writer.advanceBase(to: ledger.entries[ledger.entries.count - 100].lsn)
            let now = writer.info().containers
            if known.allSatisfy({ p in now.contains { $0.physicalID == p && $0.logicalID > readerBase.container + 4 } }) { break }
        }
        var failure: LogError?
        do { while let r = try cursor.next() { seen.append(r) } } catch let e as LogError { failure = e }
        #expect(failure?.code == .notFound, "\(String(describing: failure))")
        #expect(failure?.message.contains("recycled since this read-only open") == true, "\(String(describing: failure))")
        // Whatever it returned before is what the writer wrote there.
        let written = Dictionary(uniqueKeysWithValues: ledger.entries.map { ($0.lsn, $0.data) })
        for r in seen { #expect(written[r.lsn] == r.data, "\(r.lsn)") }
        // A fresh cursor from the old base meets the same: notFound.
        #expect(code { var c = try reader.records(from: readerBase); while try c.next() != nil {} } == .notFound)
        try reader.close()
        try writer.close()

        // Real damage in a container nobody recycled is still corrupt for a read-only cursor.
        let fresh = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true))
        defer { try? fresh.close() }
        let base = fresh.baseLSN
        let target = try #require(ledger.entries.first { $0.lsn.container == base.container && $0.lsn.blockOffset > base.blockOffset + 8192 })
        let physical = try #require(fresh.info().containers.first { $0.logicalID == target.lsn.container })
        let handle = try #require(FileHandle(forUpdatingAtPath: physical.path))
        try handle.seek(toOffset: target.lsn.blockOffset + 100)
        try handle.write(contentsOf: Data([0xFF, 0x00, 0xFF, 0x00]))
        try handle.close()
        #expect(code { var c = try fresh.records(from: base); while try c.next() != nil {} } == .corrupt)
    }

    /// verify's block walk reads a container through 1 MiB windows; a writer that reuses the container
    /// between two windows leaves new blocks whose boundaries do not line up with the old ones.
    @Test("scanBlocks on a read-only instance, with a writer reusing a container between two of its reads: a note, not damage")
    func readOnlyScanAfterRecycling() throws {
        let dir = Kit.temporaryPath("ro-scan-recycled")
        defer { Kit.remove(dir) }
        let writer = try LogStore.create(
            at: dir, options: LogCreateOptions(containerSize: 2 * 1024 * 1024, containerCount: 3, blockSize: 4096, codec: .none))
        var last = LSN.null
        var i = 0
        while last.container < 2 || last.blockOffset < 512 * 1024 {
            last = try writer.append(LogTestKit.randomPayload(i, length: 1000))
            i += 1
        }
        try writer.flush()
        let first = try #require(writer.info().containers.first { $0.logicalID == 1 })
        let reader = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true))
        defer { try? reader.close() }
        var wentRound = false
        let report = try reader.scanBlocks { fraction in
            guard !wentRound, fraction > 0.1 else { return }
            wentRound = true
            // The first container is freed and reused (the lowest free id is taken first) as logical 3 past
            // its middle, in blocks of another size.
            do {
                try writer.advanceBase(to: last)
                var lsn = last
                while lsn.container < 3 || lsn.blockOffset < 1536 * 1024 {
                    lsn = try writer.append(LogTestKit.randomPayload(i, length: 1300))
                    i += 1
                }
                try writer.flush()
                #expect(writer.info().containers.first { $0.physicalID == first.physicalID }?.logicalID == 3)
            } catch { Issue.record("writer: \(error)") }
        }
        #expect(wentRound)
        #expect(report.problems.isEmpty, "\(report.problems.map(\.message))")
        #expect(report.notes.contains { $0.contains("recycled by a writer") }, "\(report.notes)")
        try writer.close()
    }

    @Test("A second writable open is locked; read-only opens work beside the writer and cannot write")
    func lockingAndReadOnly() throws {
        let (log, ledger, dir) = try makeLog("lock")
        defer { Kit.remove(dir) }
        #expect(code { _ = try LogStore.open(at: dir) } == .locked)
        #expect(code { _ = try LogStore.open(at: dir) } == .locked)
        // The message does not blame another process: the holder here is this one.
        #expect(throws: LogError.self) { _ = try LogStore.open(at: dir) }
        do { _ = try LogStore.open(at: dir) } catch let e as LogError { #expect(e.message.contains("already open for writing"), "\(e.message)") }
        let reader = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true))
        try ledger.verify(reader)
        #expect(code { _ = try reader.append([1]) } == .readOnly)
        #expect(code { _ = try reader.addContainer() } == .readOnly)
        #expect(code { try reader.removeContainer(1) } == .readOnly)
        #expect(code { try reader.advanceBase(to: ledger.entries[1].lsn) } == .readOnly)
        #expect(!reader.isFailed)
        try reader.close()
        // The writer was not disturbed.
        var more = ledger
        #expect(more.round(log, count: 10) == nil)
        try log.close()
        // Once the writer is gone, a writable open works again.
        let again = try LogStore.open(at: dir)
        try more.verify(again)
        try again.close()
        // pointInTime recovery opens read-only too.
        var options = LogOpenOptions()
        options.recovery = .pointInTime
        let pit = try LogStore.open(at: dir, options: options)
        #expect(code { _ = try pit.append([1]) } == .readOnly)
        try pit.close()
    }

    @Test("Every operation on a closed log is `closed`; close is idempotent",
          .bug(id: "faults-5", "records() and flush skip the closed check; cursors read through released descriptors"))
    func useAfterClose() throws {
        let (log, ledger, dir) = try makeLog("closed", containers: 3)
        defer { Kit.remove(dir) }
        try log.close()
        try log.close()
        #expect(code { _ = try log.append([1, 2]) } == .closed)
        #expect(code { _ = try log.read(ledger.entries[0].lsn) } == .closed)
        #expect(code { _ = try log.records() } == .closed)
        #expect(code { _ = try log.addContainer() } == .closed)
        #expect(code { try log.removeContainer(2) } == .closed)
        #expect(code { try log.advanceBase(to: ledger.entries[3].lsn) } == .closed)
        #expect(code { try log.flush() } == .closed)
        #expect(code { try log.flush(upTo: ledger.entries[3].lsn) } == .closed)
        #expect(!log.isFailed)
        try ledger.verify(directory: dir)
    }

    @Test("A cursor made before close throws `closed` afterwards, and never reads another log's files",
          .bug(id: "faults-5", "LogCore.block(at:) does not check closed; it preads descriptors releaseFiles() closed"))
    func cursorAfterClose() throws {
        let (log, ledger, dir) = try makeLog("cursor", records: 600)
        defer { Kit.remove(dir) }
        try log.close()
        let reopened = try LogStore.open(at: dir)
        var cursor = try reopened.records()
        #expect(try cursor.next()?.data == ledger.entries[0].data)
        try reopened.close()
        // Another log takes the freed descriptor numbers.
        let (other, _, otherDir) = try makeLog("cursor2", records: 600)
        defer { Kit.remove(otherDir) }
        defer { try? other.close() }
        var results: [String] = []
        for _ in 0..<20 {
            do {
                guard let r = try cursor.next() else {
                    results.append("end")
                    break
                }
                results.append(r.data == ledger.entries[results.count + 1].data ? "record" : "WRONG DATA")
            } catch let e as LogError {
                results.append(e.code.rawValue)
                break
            }
        }
        #expect(!results.contains("WRONG DATA"))
        #expect(results.last == LogError.Code.closed.rawValue, "cursor after close: \(results)")
    }
}
