// CRC32C (Castagnoli): RFC 3720 B.4 vectors, hardware path against the software path, and chaining.

import Testing
@testable import LogFormat

@Suite struct CRC32CTests {
    static let vectors: [(String, [UInt8], UInt32)] = [
        ("123456789", Array("123456789".utf8), 0xE306_9283),
        ("32 x 0x00", [UInt8](repeating: 0, count: 32), 0x8A91_36AA),
        ("32 x 0xFF", [UInt8](repeating: 0xFF, count: 32), 0x62A8_AB43),
        ("0...31", (0..<32).map { UInt8($0) }, 0x46DD_794E),
        ("31...0", (0..<32).reversed().map { UInt8($0) }, 0x113F_DB5C),
    ]

    @Test func rfc3720Vectors() {
        for (name, bytes, expected) in Self.vectors {
            #expect(CRC32C.checksum(bytes) == expected, "\(name)")
            let sw = bytes.withUnsafeBytes { CRC32C.softwareChecksum($0) }
            #expect(sw == expected, "\(name) (software)")
        }
    }

    @Test func emptyInputLeavesTheCRCUnchanged() {
        #expect(CRC32C.checksum([]) == 0)
        #expect(CRC32C.checksum([], continuing: 0xDEAD_BEEF) == 0xDEAD_BEEF)
        #expect(CRC32C.softwareChecksum(UnsafeRawBufferPointer(start: nil, count: 0), continuing: 7) == 7)
    }

    /// Lengths cover the byte prologue, the 8-byte loop, the 3 x 256 and 3 x 8 KiB stream paths of the
    /// SSE4.2 implementation, and every misalignment of the start address.
    @Test func hardwareMatchesSoftware() {
        var g = SplitMix64(seed: 10)
        let big = g.bytes(100_000 + 16)
        var lengths = Array(0...1100)
        lengths += [1535, 1536, 1537, 24_575, 24_576, 24_577, 24_576 + 768 + 7, 49_152 + 100, 65_536, 100_000]
        big.withUnsafeBytes { all in
            for length in lengths {
                for misalign in [0, 1, 3, 7] where misalign + length <= all.count {
                    let slice = UnsafeRawBufferPointer(rebasing: all[misalign..<(misalign + length)])
                    let hw = CRC32C.checksum(slice)
                    let sw = CRC32C.softwareChecksum(slice)
                    if hw != sw {
                        Issue.record("length \(length) misalign \(misalign): hw \(hw) sw \(sw)")
                        return
                    }
                }
            }
        }
    }

    @Test func incrementalEqualsOneShot() {
        var g = SplitMix64(seed: 11)
        let bytes = g.bytes(3000)
        let whole = CRC32C.checksum(bytes)
        bytes.withUnsafeBytes { all in
            for cut in stride(from: 0, through: bytes.count, by: 7) {
                let a = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: all[0..<cut]))
                let b = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: all[cut...]), continuing: a)
                #expect(b == whole, "cut at \(cut)")
                let sa = CRC32C.softwareChecksum(UnsafeRawBufferPointer(rebasing: all[0..<cut]))
                let sb = CRC32C.softwareChecksum(UnsafeRawBufferPointer(rebasing: all[cut...]), continuing: sa)
                #expect(sb == whole, "software, cut at \(cut)")
            }
            // Many small pieces.
            var crc: UInt32 = 0
            var at = 0
            var step = 1
            while at < all.count {
                let end = min(all.count, at + step)
                crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: all[at..<end]), continuing: crc)
                at = end
                step = step % 97 + 1
            }
            #expect(crc == whole)
        }
    }

    @Test func detectsEverySingleBitFlip() {
        var g = SplitMix64(seed: 12)
        let bytes = g.bytes(64)
        let base = CRC32C.checksum(bytes)
        for bit in 0..<(bytes.count * 8) {
            #expect(CRC32C.checksum(flipping(bytes, bit: bit)) != base, "bit \(bit)")
        }
    }
}
