// Little-endian field access for on-disk structures. Every read is bounds-checked; nothing here traps
// on data from disk.

/// Reads little-endian fields from a byte buffer, throwing `corrupt` instead of reading out of bounds.
public struct ByteReader {
    /// The buffer being read (not owned by the reader).
    public let bytes: UnsafeRawBufferPointer
    /// What is being decoded, for error messages.
    public let what: String

    /// A reader over `bytes`; `what` names the structure in error messages.
    public init(_ bytes: UnsafeRawBufferPointer, what: String) {
        self.bytes = bytes
        self.what = what
    }

    /// The byte at `offset`, or a `corrupt` error if it is outside the buffer.
    @inlinable
    public func u8(_ offset: Int) throws -> UInt8 { try int(offset, as: UInt8.self) }
    /// The little-endian UInt16 at `offset`, or a `corrupt` error if it is not inside the buffer.
    @inlinable
    public func u16(_ offset: Int) throws -> UInt16 { try int(offset, as: UInt16.self) }
    /// The little-endian UInt32 at `offset`, or a `corrupt` error if it is not inside the buffer.
    @inlinable
    public func u32(_ offset: Int) throws -> UInt32 { try int(offset, as: UInt32.self) }
    /// The little-endian UInt64 at `offset`, or a `corrupt` error if it is not inside the buffer.
    @inlinable
    public func u64(_ offset: Int) throws -> UInt64 { try int(offset, as: UInt64.self) }

    /// The little-endian `T` at `offset` (unaligned), or a `corrupt` error if it is not inside the buffer.
    @inlinable
    public func int<T: FixedWidthInteger>(_ offset: Int, as: T.Type) throws -> T {
        let size = MemoryLayout<T>.size
        guard offset >= 0, size <= bytes.count, offset <= bytes.count - size else {
            throw LogError(.corrupt, "\(what): field at \(offset) (\(size) bytes) is outside \(bytes.count) bytes")
        }
        return T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
    }

    /// The bytes `[offset, offset + count)`, or a `corrupt` error if that range is not inside the buffer.
    public func slice(_ offset: Int, _ count: Int) throws -> UnsafeRawBufferPointer {
        guard offset >= 0, count >= 0, offset <= bytes.count, count <= bytes.count - offset else {
            throw LogError(.corrupt, "\(what): range \(offset)+\(count) is outside \(bytes.count) bytes")
        }
        return UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + count])
    }
}

/// Appends little-endian fields to a growing byte array: the writer for variable-length records (the
/// transaction manager's and the key-value store's). Fixed-layout headers use ``storeLE(_:at:in:)``.
public struct ByteWriter {
    /// The bytes written so far.
    public var bytes: [UInt8]

    /// Reserves `capacity` bytes up front, so encoding a typical record does not reallocate.
    public init(capacity: Int = 256) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    // Inlinable, so the TM and KV encoders get specialised appends rather than generic calls across
    // the module boundary (the generic `lengthPrefixed` was ~2.6 % of a two-phase commit's CPU).
    /// Appends one byte.
    @inlinable public mutating func u8(_ v: UInt8) { bytes.append(v) }
    /// Appends `v` as 2 little-endian bytes.
    @inlinable public mutating func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    /// Appends `v` as 4 little-endian bytes.
    @inlinable public mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    /// Appends `v` as 8 little-endian bytes.
    @inlinable public mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }

    /// A u32 length, then the bytes.
    @inlinable public mutating func lengthPrefixed<C: Collection>(_ b: C) where C.Element == UInt8 {
        u32(UInt32(b.count))
        bytes.append(contentsOf: b)
    }
}

/// Stores little-endian fields. Callers size the buffer from format constants, so a store outside it is
/// a programming error and traps.
@inlinable
public func storeLE<T: FixedWidthInteger>(_ value: T, at offset: Int, in buffer: UnsafeMutableRawBufferPointer) {
    precondition(offset >= 0 && offset + MemoryLayout<T>.size <= buffer.count, "storeLE out of bounds")
    buffer.storeBytes(of: value.littleEndian, toByteOffset: offset, as: T.self)
}

/// Rounds `value` up to a multiple of `unit` (a power of two), or nil on overflow.
@inlinable
public func roundUp(_ value: UInt64, to unit: UInt64) -> UInt64? {
    let (sum, overflow) = value.addingReportingOverflow(unit - 1)
    if overflow { return nil }
    return sum & ~(unit - 1)
}

/// Rounds a non-negative `value` up to a multiple of `unit` (a power of two).
@inlinable
public func roundUp(_ value: Int, to unit: Int) -> Int { (value + unit - 1) & ~(unit - 1) }
