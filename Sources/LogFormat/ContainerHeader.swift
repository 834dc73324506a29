// Container header: docs/format/container.md.

/// The 64-byte header at offset 0 of every container file. Bytes 64..<4096 are zero; blocks start at 4096.
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 8 | magic `TXLOGCTR` |
/// | 8 | 2 | version (1) |
/// | 10 | 2 | header size (64) |
/// | 12 | 4 | CRC32C of bytes 0..<64 with this field zero |
/// | 16 | 16 | log id |
/// | 32 | 4 | physical container id |
/// | 36 | 4 | reserved (0) |
/// | 40 | 8 | container size in bytes |
/// | 48 | 4 | data start (4096) |
/// | 52 | 12 | reserved (0) |
public struct ContainerHeader: Sendable, Equatable {
    /// Bytes of the header (64) at offset 0 of a container file.
    public static let size = 64

    /// The identity of the log the container belongs to.
    public var logID: LogID
    /// The physical container id, stable for the file's lifetime (it names the file).
    public var physicalID: UInt32
    /// The container file's size in bytes (the log's container size).
    public var containerSize: UInt64

    /// A header with the given fields.
    public init(logID: LogID, physicalID: UInt32, containerSize: UInt64) {
        self.logID = logID
        self.physicalID = physicalID
        self.containerSize = containerSize
    }

    /// The 64 header bytes: magic, version, header size, CRC32C, the fields and data start 4096.
    public func encode() -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: ContainerHeader.size)
        bytes.withUnsafeMutableBytes { b in
            storeLE(Format.containerMagic, at: 0, in: b)
            storeLE(Format.version, at: 8, in: b)
            storeLE(UInt16(ContainerHeader.size), at: 10, in: b)
            logID.store(into: b, at: 16)
            storeLE(physicalID, at: 32, in: b)
            storeLE(containerSize, at: 40, in: b)
            storeLE(UInt32(Format.containerDataStart), at: 48, in: b)
            storeLE(CRC32C.checksum(UnsafeRawBufferPointer(b)), at: 12, in: b)
        }
        return bytes
    }

    /// Decodes a header: a wrong magic, CRC, header size or data start is `corrupt`; another version of an
    /// intact header is `unsupportedVersion`.
    public static func decode(_ bytes: UnsafeRawBufferPointer) throws -> ContainerHeader {
        let r = ByteReader(bytes, what: "container header")
        guard try r.u64(0) == Format.containerMagic else { throw LogError(.corrupt, "container magic is wrong") }
        // The CRC comes first: a damaged header is corrupt; only an intact one of another version is unsupported.
        var copy = [UInt8](try r.slice(0, size))
        let stored = try r.u32(12)
        copy.withUnsafeMutableBytes { storeLE(UInt32(0), at: 12, in: $0) }
        guard CRC32C.checksum(copy) == stored else { throw LogError(.corrupt, "container header checksum mismatch") }
        let version = try r.u16(8)
        guard version == Format.version else {
            throw LogError(.unsupportedVersion, "container version \(version) is not \(Format.version)")
        }
        guard try r.u16(10) == UInt16(size) else { throw LogError(.corrupt, "container header size is wrong") }
        guard try r.u32(48) == UInt32(Format.containerDataStart) else {
            throw LogError(.corrupt, "container data start is not \(Format.containerDataStart)")
        }
        return ContainerHeader(
            logID: try LogID(r, at: 16), physicalID: try r.u32(32), containerSize: try r.u64(40))
    }
}

/// A log's 128-bit identity, random at creation. Its first 8 bytes are the salt stamped into every block.
public struct LogID: Sendable, Hashable, CustomStringConvertible {
    /// The first 8 bytes of the id: the salt stamped into every block header.
    public var high: UInt64
    /// The last 8 bytes of the id.
    public var low: UInt64

    /// An id from its two halves.
    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// A random id.
    public static func random() -> LogID {
        var g = SystemRandomNumberGenerator()
        return LogID(high: g.next(), low: g.next())
    }

    /// The 64-bit salt written into every block header.
    public var salt: UInt64 { high }

    init(_ r: ByteReader, at offset: Int) throws {
        high = try r.u64(offset)
        low = try r.u64(offset + 8)
    }

    func store(into b: UnsafeMutableRawBufferPointer, at offset: Int) {
        storeLE(high, at: offset, in: b)
        storeLE(low, at: offset + 8, in: b)
    }

    /// 32 hexadecimal digits.
    public var description: String {
        let h = String(high, radix: 16)
        let l = String(low, radix: 16)
        return String(repeating: "0", count: 16 - h.count) + h + String(repeating: "0", count: 16 - l.count) + l
    }
}
