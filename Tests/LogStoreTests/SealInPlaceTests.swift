// Sealing in place: a block stored uncompressed (codec none, or records the codec cannot shrink) is
// sealed in the open block's own buffer and handed to the writer without a copy; a compressed block
// goes to a separate buffer and the open buffer is reused. These tests mix every case (normal and
// larger-than-a-block records, compressible and not) and read every record back while the blocks are
// open, sealed, written and after a reopen, and check the codec each block was stored with.

import Foundation
import LogFormat
import LogStore
import Testing

@Suite struct SealInPlaceTests {
    /// The sequence: compressible and incompressible small records, jumbo records of both kinds, and
    /// small records right after a jumbo one (the open block then moves back to a pool buffer).
    static func payloads() -> [[UInt8]] {
        var out: [[UInt8]] = []
        for i in 0..<40 { out.append(LogTestKit.textPayload(i, length: 300)) }
        for i in 0..<40 { out.append(LogTestKit.randomPayload(i, length: 300)) }
        out.append(LogTestKit.randomPayload(1000, length: 20_000))  // jumbo, incompressible: sealed in place
        for i in 0..<5 { out.append(LogTestKit.textPayload(100 + i, length: 200)) }
        out.append(LogTestKit.textPayload(1001, length: 20_000))  // jumbo, compressible: compressed
        for i in 0..<5 { out.append(LogTestKit.randomPayload(200 + i, length: 200)) }
        out.append(LogTestKit.randomPayload(1002, length: 20_000))  // two jumbo records in a row
        out.append(LogTestKit.textPayload(1003, length: 20_000))
        for i in 0..<30 { out.append(LogTestKit.textPayload(300 + i, length: 100)) }
        return out
    }

    static func readAll(_ log: LogStore) throws -> [[UInt8]] {
        var cursor = try log.records()
        var out: [[UInt8]] = []
        while let r = try cursor.next() { out.append(r.data) }
        return out
    }

    @Test(arguments: [Codec.none, .lz4, .zlib(level: 1)])
    func everyRecordReadsBackWhetherItsBlockWasCompressedOrSealedInPlace(codec: Codec) throws {
        let dir = LogTestKit.temporaryPath("seal-in-place")
        defer { LogTestKit.remove(dir) }
        let log = try LogStore.create(at: dir, options: LogTestKit.options(containerSize: 1 << 20, containerCount: 2, blockSize: 4096, codec: codec))
        let expected = Self.payloads()
        var lsns: [LSN] = []
        for (i, p) in expected.enumerated() {
            lsns.append(try log.append(p))
            // Every record reads back at once, whether its block is open or already sealed.
            #expect(try log.read(lsns[i]).data == p, "record \(i) before any flush")
        }
        #expect(try Self.readAll(log) == expected)
        try log.flush(upTo: lsns.last!)
        #expect(try Self.readAll(log) == expected)
        // More records after the flush reuse pool buffers that went through the writer.
        let more = (0..<60).map { LogTestKit.randomPayload(5000 + $0, length: 150) }
        for p in more { _ = try log.append(p) }
        try log.flush(upTo: log.lastLSN)
        try log.close()

        let reopened = try LogStore.open(at: dir)
        defer { try? reopened.close() }
        #expect(try Self.readAll(reopened) == expected + more)
        for (i, lsn) in lsns.enumerated() { #expect(try reopened.read(lsn).data == expected[i]) }

        // Which blocks were compressed: none with codec none; with a real codec, the text blocks were
        // and the random ones were not (stored in place, codec id 0).
        let containers = LogTestKit.containerFiles(in: dir).map { dir + "/" + $0 }
        var stored: [UInt8: Int] = [:]
        for path in containers {
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
            var offset = Format.containerDataStart
            while offset + BlockHeader.size <= bytes.count {
                let header = bytes[offset..<(offset + BlockHeader.size)].withUnsafeBytes { try? BlockHeader.decode($0) }
                guard let h = header, h.recordCount > 0 else { break }
                stored[h.codecID, default: 0] += 1
                offset += h.diskLength
            }
        }
        if codec == .none {
            #expect(stored.keys.sorted() == [0])
        } else {
            #expect((stored[0] ?? 0) > 0 && (stored[codec.id] ?? 0) > 0, "both stored forms occur: \(stored)")
        }
    }
}
