import LogStore

/// Self-checking record payloads for crash tests: writer id, sequence number and length determine every
/// byte, so a reader can tell an intact record from a damaged or fabricated one.
enum StressPayload {
    static let headerSize = 20

    static func make(writer: UInt32, sequence: UInt64, length: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: max(length, headerSize))
        bytes.withUnsafeMutableBytes { b in
            b.storeBytes(of: writer.littleEndian, toByteOffset: 0, as: UInt32.self)
            b.storeBytes(of: sequence.littleEndian, toByteOffset: 4, as: UInt64.self)
            b.storeBytes(of: UInt32(b.count).littleEndian, toByteOffset: 12, as: UInt32.self)
            var x = UInt64(writer) &* 0x9E37_79B9_7F4A_7C15 ^ sequence
            for i in headerSize..<b.count {
                x = x &* 6364136223846793005 &+ 1442695040888963407
                b[i] = UInt8(truncatingIfNeeded: x >> 56)
            }
            let crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: b[headerSize...]))
            b.storeBytes(of: crc.littleEndian, toByteOffset: 16, as: UInt32.self)
        }
        return bytes
    }

    /// (writer, sequence) if `bytes` is exactly what `make` produces for them.
    static func parse(_ bytes: [UInt8]) -> (writer: UInt32, sequence: UInt64)? {
        guard bytes.count >= headerSize else { return nil }
        let writer = bytes.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: 0, as: UInt32.self)) }
        let sequence = bytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: 4, as: UInt64.self)) }
        return make(writer: writer, sequence: sequence, length: bytes.count) == bytes ? (writer, sequence) : nil
    }
}
