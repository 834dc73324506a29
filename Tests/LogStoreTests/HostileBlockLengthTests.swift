// A block header's stored length comes from disk. Before the block is validated, readers size a second
// read from it when the first read did not cover the block; docs/format/block.md promises that a hostile
// header makes a reader allocate at most the log's `maxRawLength` for the payload. These tests plant
// headers claiming far more than the log allows, or overlapping blocks at every sector, and watch the
// sizes of the reads (through `FaultyFileIO`'s call log).

import Foundation
import Testing
@testable import LogFormat
@testable import LogStore
import TxLogTestSupport

@Suite struct HostileBlockLengthTests {
    typealias Kit = FaultTestKit

    /// A tiny log whose blocks (4 KiB) and records (4 KiB) are far smaller than its 512 KiB containers.
    static var options: LogCreateOptions {
        var o = Kit.tinyOptions(containers: 2)
        o.maxRecordSize = 4096
        o.codec = .none
        return o
    }

    /// 400 KiB: fits the container, and is far above the log's `maxRawLength` (about 4 KiB).
    static let hostileLength: UInt32 = 400 * 1024

    /// Writes a block header at `offset` of `path`: codec none, one record, stored = raw = `length`.
    static func plantHeader(
        path: String, offset: UInt64, logical: UInt32, salt: UInt64, length: UInt32, epoch: UInt32 = 1, durableHint: LSN = .null
    ) throws {
        var header = [UInt8](repeating: 0, count: BlockHeader.size)
        header.withUnsafeMutableBytes { b in
            storeLE(Format.blockMagic, at: 0, in: b)
            storeLE(UInt8(1), at: 8, in: b)
            storeLE(UInt16(1), at: 12, in: b)
            storeLE(length, at: 16, in: b)
            storeLE(length, at: 20, in: b)
            storeLE(logical, at: 24, in: b)
            storeLE(UInt32(offset), at: 28, in: b)
            storeLE(epoch, at: 32, in: b)
            storeLE(durableHint.rawValue, at: 40, in: b)
            storeLE(salt, at: 48, in: b)
            storeLE(UInt64(1), at: 56, in: b)
        }
        let h = try #require(FileHandle(forUpdatingAtPath: path))
        defer { try? h.close() }
        try h.seek(toOffset: offset)
        try h.write(contentsOf: Data(header))
    }

    /// The base file's newest slot.
    static func newestBase(_ dir: String) throws -> BaseRecord {
        let bytes = try Kit.fileBytes(dir + "/" + Format.baseFileName)
        let slots = (0..<2).compactMap { k in
            try? Array(bytes[(k * Format.baseSlotSize)..<((k + 1) * Format.baseSlotSize)]).withUnsafeBytes { try BaseRecord.decode($0) }
        }
        return try #require(slots.max { $0.generation < $1.generation })
    }

    /// The largest read of a container (the base file is read whole, 512 KiB).
    static func largestRead(_ io: FaultyFileIO) -> Int {
        io.calls.filter { $0.op == .pread && $0.path.contains(Format.defaultContainerPrefix) }.compactMap(\.bytes).max() ?? 0
    }

    @Test func readingABlockWithAHostileLengthReadsNoMoreThanTheLogAllows() throws {
        let dir = Kit.temporaryPath("hostile-len-read")
        defer { Kit.remove(dir) }
        let io = FaultyFileIO()
        let log = try LogStore.create(at: dir, options: Self.options, io: io)
        defer { try? log.close() }
        let a = try log.append([UInt8](repeating: 7, count: 100))
        try log.flush()
        _ = try log.append([UInt8](repeating: 8, count: 100))
        try log.flush()
        let salt = log.core.logSalt
        try Self.plantHeader(
            path: dir + "/" + ContainerFiles.name(physicalID: 0), offset: a.blockOffset, logical: a.container, salt: salt,
            length: Self.hostileLength)
        io.clearLog()
        #expect(throws: LogError.self) { _ = try log.read(a) }
        #expect(Self.largestRead(io) <= 64 * 1024, "a read sized from the hostile header: \(Self.largestRead(io)) bytes")
    }

    @Test func recoveryMeetingAHostileLengthReadsNoMoreThanTheLogAllows() throws {
        let dir = Kit.temporaryPath("hostile-len-recover")
        defer { Kit.remove(dir) }
        do {
            let log = try LogStore.create(at: dir, options: Self.options)
            _ = try log.append([UInt8](repeating: 7, count: 100))
            try log.flush()
            try log.close()
        }
        let end = try Self.newestBase(dir).scanStart
        // Where the next block goes, which the clean close made the scan start: recovery reads a header
        // there first. Not this log's block (garbage salt), so the log simply ends before it.
        try Self.plantHeader(
            path: dir + "/" + ContainerFiles.name(physicalID: 0), offset: end.blockOffset, logical: end.container,
            salt: 0x5A5A_5A5A_5A5A_5A5A, length: Self.hostileLength)
        let io = FaultyFileIO()
        let log = try LogStore.open(at: dir, io: io)
        defer { try? log.close() }
        #expect(Self.largestRead(io) <= 64 * 1024, "a read sized from the hostile header: \(Self.largestRead(io)) bytes")
    }

    /// After a crash, recovery that stops at a bad position looks at every later sector of the container
    /// for a block whose durable hint claims that position (`durableClaim`). Headers of this log at every
    /// sector, each claiming a block as long as the log allows (they overlap, and their checksums are
    /// wrong), made it read and checksum up to `maxRawLength` bytes per sector: 616 times the container's
    /// size here, quadratic in it (a 64 MiB container with 8 MiB records: a terabyte).
    @Test func theSearchForADurableClaimReadsLinearly() throws {
        let dir = Kit.temporaryPath("hostile-claim")
        defer { Kit.remove(dir) }
        var options = Kit.tinyOptions(containers: 2)
        options.codec = .none
        let log = try LogStore.create(at: dir, options: options)
        let a = try log.append([UInt8](repeating: 7, count: 100))
        try log.flush()
        let (salt, maxRaw, epoch) = (log.core.logSalt, log.core.maxRawLength, log.core.epoch)
        let image = try Kit.copy(dir, tag: "hostile-claim-image")  // a crash image: not closed cleanly
        defer { Kit.remove(image) }
        try log.close()
        // The sector after `a`'s block stays zero (the log ends there); from the next one on, a header of
        // this log, container, offset and epoch at every sector, claiming every position durable.
        var offset = a.blockOffset + 1024
        var planted = 0
        while offset + UInt64(BlockHeader.size) <= Kit.containerSize {
            let length = UInt32(min(UInt64(maxRaw), Kit.containerSize - offset - UInt64(BlockHeader.size)))
            try Self.plantHeader(
                path: image + "/" + ContainerFiles.name(physicalID: 0), offset: offset, logical: a.container, salt: salt, length: length,
                epoch: epoch, durableHint: LSN(rawValue: .max - 1))
            offset += UInt64(Format.sectorSize)
            planted += 1
        }
        let io = FaultyFileIO()
        let reopened = try LogStore.open(at: image, io: io)
        defer { try? reopened.close() }
        #expect(try reopened.read(a).data == [UInt8](repeating: 7, count: 100))
        let read = io.calls.filter { $0.op == .pread && $0.path.contains(Format.defaultContainerPrefix) }.compactMap(\.bytes).reduce(0, +)
        #expect(read <= 8 * Int(Kit.containerSize), "\(planted) hostile headers: \(read) bytes read from 512 KiB containers")
    }
}
