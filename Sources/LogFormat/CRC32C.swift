import CCRC32C

/// CRC32C (Castagnoli). Hardware-accelerated where the CPU has SSE4.2, chosen at run time.
public enum CRC32C {
    /// The checksum of `bytes`, continuing from `crc` (pass 0 to start).
    @inlinable
    public static func checksum(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return crc }
        return txlog_crc32c_update(crc, base, bytes.count)
    }

    /// The checksum of a byte array.
    public static func checksum(_ bytes: [UInt8], continuing crc: UInt32 = 0) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0, continuing: crc) }
    }

    /// The software (table-driven) implementation, for tests and comparisons.
    public static func softwareChecksum(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return crc }
        return txlog_crc32c_sw(crc, base, bytes.count)
    }

    /// True when the SSE4.2 instruction path is in use.
    public static var isHardwareAccelerated: Bool { txlog_crc32c_hw_available() != 0 }
}
