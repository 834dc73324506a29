// A 4 GiB container whose last block ends at 4 GiB, past the data area (which stops at 4 GiB − 512, the
// last offset an LSN can name: docs/format/container.md). Writers no longer write such a block (see
// FourGiBContainerTests), but one on disk (hostile, or left by a writer from before that fix) was accepted
// by recovery: the end of the log after it, 4 GiB, has no LSN and was masked to offset 0, so the writer
// that opened the log put its next block over the container's header. Found by the ninth review.
//
// The containers are sparse: only the base file and the crafted block are written.

import Foundation
import LogFormat
import Testing
import TxLogTestSupport
@testable import LogStore

@Suite("A block that ends past a 4 GiB container's data area")
struct FourGiBEndBlockTests {
    /// A log of two 4 GiB containers whose base file sends recovery to a crafted valid block at 4 GiB − 1024
    /// that is 1024 bytes long. Returns the directory.
    static func craft(_ tag: String) throws -> String {
        let dir = LogTestKit.temporaryPath(tag)
        let io = PosixFileIO()
        // Created small, then grown to 4 GiB (sparse), which costs nothing.
        try LogStore.create(at: dir, options: LogCreateOptions(containerSize: 512 * 1024, containerCount: 2, blockSize: 64 * 1024, codec: .none)).close()
        let basePath = dir + "/" + Format.baseFileName
        let fd = try io.open(basePath, mode: .readWrite)
        defer { io.close(fd) }
        var meta = try BaseFile.readNewest(io: io, fd: fd, path: basePath).0
        meta.containerSize = Format.maxContainerSize
        for c in meta.containers {
            let cfd = try io.open(ContainerFiles.path(directory: dir, physicalID: c.physicalID), mode: .readWrite)
            defer { io.close(cfd) }
            try io.truncate(cfd, to: Format.maxContainerSize)
            try io.writeAll(cfd, ContainerHeader(logID: meta.logID, physicalID: c.physicalID, containerSize: Format.maxContainerSize).encode(), at: 0)
        }
        let offset = Format.maxContainerSize - 1024
        let previousCRC: UInt32 = 0x1234_5678
        meta.generation += 1
        meta.flags = 0
        meta.scanStart = LSN(uncheckedContainer: 1, blockOffset: offset, slot: 0)
        meta.scanStartPreviousLSN = LSN(uncheckedContainer: 1, blockOffset: UInt64(Format.containerDataStart), slot: 0)
        meta.scanStartPreviousCRC = previousCRC
        try BaseFile(io: io, path: basePath, fd: fd).write(meta)
        let physical = try #require(meta.containers.first { $0.logicalID == 1 }).physicalID
        var block = [UInt8](repeating: 0, count: 1024)
        let dataLength = 576
        block.withUnsafeMutableBytes { raw in
            RecordHeader(length: UInt32(dataLength), type: .data, stream: 0, previous: .invalid, undoNext: .invalid).encode(into: raw, at: BlockHeader.size)
            for i in 0..<dataLength { raw[BlockHeader.size + RecordHeader.size + i] = 0xAB }
            var header = BlockHeader(
                codecID: 0, codecLevel: 0, recordCount: 1, storedLength: UInt32(RecordHeader.footprint(dataLength: dataLength)),
                rawLength: UInt32(RecordHeader.footprint(dataLength: dataLength)), logicalContainer: 1, blockOffset: UInt32(offset),
                epoch: meta.epoch, previousBlockCRC: previousCRC, durableHint: .null, logSalt: meta.logID.salt, streamMask: 1)
            header.encode(into: raw)
        }
        let cfd = try io.open(ContainerFiles.path(directory: dir, physicalID: physical), mode: .readWrite)
        defer { io.close(cfd) }
        try io.writeAll(cfd, block, at: offset)
        return dir
    }

    @Test("a writable open never takes the end of the log to be the container's header; the log stays readable")
    func blockEndingAtFourGiB() throws {
        let dir = try Self.craft("4gib-end-block")
        defer { LogTestKit.remove(dir) }
        let io = PosixFileIO()
        let log = try LogStore.open(at: dir, io: io)
        #expect(log.recoveryReport.tornTail?.contains("runs past the end") == true, "\(log.recoveryReport)")
        let lsn = try log.append([1, 2, 3])
        try log.close()
        #expect(lsn.blockOffset == Format.maxContainerSize - 1024, "\(lsn)")
        let reopened = try LogStore.open(at: dir, io: io)
        #expect(try reopened.read(lsn).data == [1, 2, 3])
        try reopened.close()
        let reader = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true), io: io)
        try reader.close()
    }
}
