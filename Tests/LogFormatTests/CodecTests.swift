// Block payload codecs: on-disk ids, text forms, compression round trips and hostile input.

import Testing
@testable import LogFormat

/// Every codec that compresses: lz4 and zlib at each level.
private let compressors: [Codec] = [.lz4] + (1...9).map { Codec.zlib(level: $0) }

@Suite struct CodecTests {
    /// Text that compresses well: repeated log lines with changing numbers.
    static let text: [UInt8] = Array((0..<300).map { "record \($0 % 17): debit account \($0 % 5) by 100\n" }.joined().utf8)

    @Test func onDiskIDsAndLevels() {
        #expect(Codec.none.id == 0 && Codec.none.level == 0)
        #expect(Codec.lz4.id == 1 && Codec.lz4.level == 0)
        #expect(Codec.zlib(level: 6).id == 2 && Codec.zlib(level: 6).level == 6)
        #expect(Codec.zlib(level: 300).level == 255)
    }

    @Test func fromOnDiskPair() throws {
        #expect(try Codec(id: 0, level: 0) == .none)
        #expect(try Codec(id: 1, level: 0) == .lz4)
        for level in UInt8(1)...9 { #expect(try Codec(id: 2, level: level) == .zlib(level: Int(level))) }
        // The level byte is only read for zlib.
        #expect(try Codec(id: 0, level: 7) == .none)
        #expect(try Codec(id: 1, level: 255) == .lz4)
        #expect(errorCode { try Codec(id: 2, level: 0) } == .corrupt)
        #expect(errorCode { try Codec(id: 2, level: 10) } == .corrupt)
        for id in UInt8(3)...255 { #expect(errorCode { try Codec(id: id, level: 0) } == .unsupportedVersion) }
    }

    @Test func parsing() {
        #expect(Codec(parsing: "none") == Codec.none)
        #expect(Codec(parsing: "lz4") == .lz4)
        #expect(Codec(parsing: "zlib") == .zlib(level: 1))
        for level in 1...9 { #expect(Codec(parsing: "zlib:\(level)") == .zlib(level: level)) }
        for bad in ["", "None", "LZ4", "zstd", "zlib:", "zlib:0", "zlib:10", "zlib:-1", "zlib:x", "zlib 6", "zlib:6 ", "lz4:1"] {
            #expect(Codec(parsing: bad) == nil, "\(bad.debugDescription)")
        }
        for c in [Codec.none, .lz4] + (1...9).map({ Codec.zlib(level: $0) }) {
            #expect(Codec(parsing: c.description) == c)
        }
    }

    @Test func validate() throws {
        try Codec.zlib(level: 9).validate()
        try Codec.lz4.validate()
        #expect(errorCode { try Codec.zlib(level: 0).validate() } == .invalidArgument)
        #expect(errorCode { try Codec.zlib(level: 10).validate() } == .invalidArgument)
    }

    /// `Codec.zlib(level:)` takes any `Int`; `compress` converted it to zlib's `Int32` and trapped for one
    /// beyond that range. A level `validate()` refuses now compresses nothing (the bytes are stored as
    /// they are).
    @Test(arguments: [Int.max, Int(Int32.max) + 1, Int.min, -1, 0, 10])
    func compressWithAnInvalidZlibLevelStoresUncompressed(_ level: Int) {
        var out = [UInt8](repeating: 0, count: Self.text.count)
        let n = Self.text.withUnsafeBytes { i in out.withUnsafeMutableBytes { Codec.zlib(level: level).compress(i, into: $0) } }
        #expect(n == nil)
    }

    @Test(arguments: compressors)
    func roundTrip(_ codec: Codec) throws {
        for input in [Self.text, Array(Self.text.prefix(200)), rawPayload(Sample.records), [UInt8](repeating: 7, count: 70_000)] {
            var out = [UInt8](repeating: 0, count: input.count)
            let n = try #require(input.withUnsafeBytes { i in out.withUnsafeMutableBytes { codec.compress(i, into: $0) } })
            #expect(n > 0 && n < input.count)
            var back = [UInt8](repeating: 0, count: input.count)
            try out.withUnsafeBytes { c in
                try back.withUnsafeMutableBytes { try codec.decompress(UnsafeRawBufferPointer(rebasing: c[0..<n]), into: $0) }
            }
            #expect(back == input)
        }
    }

    @Test func noneNeverCompressesAndCopiesExactly() throws {
        var out = [UInt8](repeating: 0, count: Self.text.count)
        #expect(Self.text.withUnsafeBytes { i in out.withUnsafeMutableBytes { Codec.none.compress(i, into: $0) } } == nil)
        var back = [UInt8](repeating: 0, count: Self.text.count)
        try Self.text.withUnsafeBytes { s in try back.withUnsafeMutableBytes { try Codec.none.decompress(s, into: $0) } }
        #expect(back == Self.text)
        var short = [UInt8](repeating: 0, count: Self.text.count - 1)
        let code = errorCode {
            try Self.text.withUnsafeBytes { s in try short.withUnsafeMutableBytes { try Codec.none.decompress(s, into: $0) } }
        }
        #expect(code == .corrupt)
    }

    @Test(arguments: compressors)
    func incompressibleInputIsNotCompressed(_ codec: Codec) {
        var g = SplitMix64(seed: 20)
        for length in [0, 1, 2, 16, 100, 4096, 65_536] {
            let input = g.bytes(length)
            var out = [UInt8](repeating: 0, count: max(length, 1))
            let n = input.withUnsafeBytes { i in out.withUnsafeMutableBytes { codec.compress(i, into: $0) } }
            #expect(n == nil, "\(codec) compressed \(length) random bytes to \(n ?? -1)")
        }
    }

    /// compress must respect the destination's size, not the source's.
    @Test(arguments: compressors)
    func compressStaysInsideASmallDestination(_ codec: Codec) {
        var buffer = [UInt8](repeating: 0xA5, count: 4096)
        let n = Self.text.withUnsafeBytes { i in
            buffer.withUnsafeMutableBytes { codec.compress(i, into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<16])) }
        }
        #expect(n == nil)
        #expect(buffer[16...].allSatisfy { $0 == 0xA5 })
    }

    @Test(arguments: compressors)
    func hostileInputThrowsCorrupt(_ codec: Codec) throws {
        let input = Self.text
        var out = [UInt8](repeating: 0, count: input.count)
        let n = try #require(input.withUnsafeBytes { i in out.withUnsafeMutableBytes { codec.compress(i, into: $0) } })
        let good = Array(out[0..<n])
        func decompress(_ stored: [UInt8], to length: Int) -> LogError.Code? {
            var dst = [UInt8](repeating: 0, count: length)
            return errorCode { try stored.withUnsafeBytes { s in try dst.withUnsafeMutableBytes { try codec.decompress(s, into: $0) } } }
        }
        #expect(decompress(good, to: input.count) == nil)
        // Wrong expected length, either way.
        #expect(decompress(good, to: input.count - 1) == .corrupt)
        #expect(decompress(good, to: input.count + 1) == .corrupt)
        // Every truncation.
        for cut in 0..<good.count {
            #expect(decompress(Array(good[0..<cut]), to: input.count) == .corrupt, "\(codec) truncated to \(cut)")
        }
        // Garbage.
        var g = SplitMix64(seed: 21)
        for length in [1, 7, 64, 1000, 5000] {
            #expect(decompress(g.bytes(length), to: input.count) == .corrupt, "\(codec) garbage of \(length)")
        }
        // Random corruption of a valid stream: must either throw corrupt or decode (lz4 has no checksum);
        // it must never crash or overrun the destination.
        for _ in 0..<300 {
            var bad = good
            bad[Int(g.next() % UInt64(bad.count))] ^= UInt8(truncatingIfNeeded: g.next() | 1)
            let code = decompress(bad, to: input.count)
            #expect(code == nil || code == .corrupt)
        }
    }

    @Test func zlibIgnoresBytesAfterTheEndOfItsStream() throws {
        // zlib's uncompress stops at the end of the deflate stream; bytes after it are not examined.
        // docs/format/block.md notes this: the CRC, not the codec, is what covers the stored bytes.
        let codec = Codec.zlib(level: 6)
        let input = Self.text
        var out = [UInt8](repeating: 0, count: input.count)
        let n = try #require(input.withUnsafeBytes { i in out.withUnsafeMutableBytes { codec.compress(i, into: $0) } })
        let padded = Array(out[0..<n]) + [1, 2, 3, 4]
        var back = [UInt8](repeating: 0, count: input.count)
        let code = errorCode { try padded.withUnsafeBytes { s in try back.withUnsafeMutableBytes { try codec.decompress(s, into: $0) } } }
        #expect(code == nil)
        #expect(back == input)
    }
}
