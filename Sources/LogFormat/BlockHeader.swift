// Block header: docs/format/block.md.

/// The 64-byte header at the start of every block. A block starts at a 512-byte-aligned offset inside a
/// container and occupies `64 + storedLength` bytes rounded up to 512.
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 4 | magic `TXB1` |
/// | 4 | 4 | CRC32C of header (this field zero) + stored payload |
/// | 8 | 1 | version (1) |
/// | 9 | 1 | codec id |
/// | 10 | 1 | codec level |
/// | 11 | 1 | flags (0) |
/// | 12 | 2 | record count (1...512) |
/// | 14 | 2 | reserved (0) |
/// | 16 | 4 | stored payload length |
/// | 20 | 4 | raw (uncompressed) payload length |
/// | 24 | 4 | logical container id |
/// | 28 | 4 | block offset in the container |
/// | 32 | 4 | epoch |
/// | 36 | 4 | CRC of the previous block in log order |
/// | 40 | 8 | durable hint: highest LSN known durable when the block was sealed |
/// | 48 | 8 | log salt (first 8 bytes of the log id) |
/// | 56 | 8 | stream mask: bit (stream % 64) set for each stream present |
public struct BlockHeader: Sendable, Equatable {
    /// Bytes of a block header (64); the stored payload follows it.
    public static let size = 64

    /// On-disk codec id of the stored payload: 0 none, 1 lz4, 2 zlib.
    public var codecID: UInt8
    /// The zlib level (1...9) when `codecID` is 2; 0 otherwise, and then not checked.
    public var codecLevel: UInt8
    /// Records in the block, 1...512.
    public var recordCount: UInt16
    /// Bytes of the stored (possibly compressed) payload after the header.
    public var storedLength: UInt32
    /// Bytes of the uncompressed payload: at least 24 per record, at most 64 MiB (`Format.maxRawBlockLength`).
    public var rawLength: UInt32
    /// The logical container id of the block's position (the container part of its LSN).
    public var logicalContainer: UInt32
    /// The block's byte offset inside its container, a multiple of 512.
    public var blockOffset: UInt32
    /// The epoch of the writer session that wrote the block (the base file's epoch then).
    public var epoch: UInt32
    /// The CRC field of the previous block in log order, chaining the blocks.
    public var previousBlockCRC: UInt32
    /// Every record at or below this LSN was durable when the block was sealed.
    public var durableHint: LSN
    /// The salt of the log that wrote the block: the high half of its `LogID`.
    public var logSalt: UInt64
    /// Bit `stream % 64` is set for the stream of each record in the block.
    public var streamMask: UInt64
    /// The CRC stored in the header (filled in by `encode` and by `decode`).
    public var crc: UInt32 = 0

    /// A header with the given fields; `crc` stays 0 until `encode(into:)` computes it.
    public init(
        codecID: UInt8, codecLevel: UInt8, recordCount: UInt16, storedLength: UInt32, rawLength: UInt32,
        logicalContainer: UInt32, blockOffset: UInt32, epoch: UInt32, previousBlockCRC: UInt32,
        durableHint: LSN, logSalt: UInt64, streamMask: UInt64
    ) {
        self.codecID = codecID
        self.codecLevel = codecLevel
        self.recordCount = recordCount
        self.storedLength = storedLength
        self.rawLength = rawLength
        self.logicalContainer = logicalContainer
        self.blockOffset = blockOffset
        self.epoch = epoch
        self.previousBlockCRC = previousBlockCRC
        self.durableHint = durableHint
        self.logSalt = logSalt
        self.streamMask = streamMask
    }

    /// Bytes the block occupies in its container: header + stored payload, rounded up to 512.
    public var diskLength: Int { roundUp(BlockHeader.size + Int(storedLength), to: Format.sectorSize) }

    /// Writes the header into `block[0..<64]` and computes the CRC over the header and the stored payload
    /// that must already be at `block[64..<64+storedLength]`. Returns the CRC.
    @discardableResult
    public mutating func encode(into block: UnsafeMutableRawBufferPointer) -> UInt32 {
        storeLE(Format.blockMagic, at: 0, in: block)
        storeLE(UInt32(0), at: 4, in: block)
        storeLE(UInt8(1), at: 8, in: block)
        storeLE(codecID, at: 9, in: block)
        storeLE(codecLevel, at: 10, in: block)
        storeLE(UInt8(0), at: 11, in: block)
        storeLE(recordCount, at: 12, in: block)
        storeLE(UInt16(0), at: 14, in: block)
        storeLE(storedLength, at: 16, in: block)
        storeLE(rawLength, at: 20, in: block)
        storeLE(logicalContainer, at: 24, in: block)
        storeLE(blockOffset, at: 28, in: block)
        storeLE(epoch, at: 32, in: block)
        storeLE(previousBlockCRC, at: 36, in: block)
        storeLE(durableHint.rawValue, at: 40, in: block)
        storeLE(logSalt, at: 48, in: block)
        storeLE(streamMask, at: 56, in: block)
        let covered = UnsafeRawBufferPointer(rebasing: block[0..<(BlockHeader.size + Int(storedLength))])
        crc = CRC32C.checksum(covered)
        storeLE(crc, at: 4, in: block)
        return crc
    }

    /// Decodes and checks the fixed fields of a header (magic, version, flags, counts, codec). It does not
    /// check the CRC or the identity; see ``verifyChecksum(block:)`` and ``DecodedBlock``.
    public static func decode(_ bytes: UnsafeRawBufferPointer) throws -> BlockHeader {
        let r = ByteReader(bytes, what: "block header")
        guard try r.u32(0) == Format.blockMagic else { throw LogError(.corrupt, "block magic is wrong") }
        let version = try r.u8(8)
        guard version == 1 else { throw LogError(.unsupportedVersion, "block version \(version) is not 1") }
        guard try r.u8(11) == 0, try r.u16(14) == 0 else { throw LogError(.corrupt, "block reserved fields are not zero") }
        var h = BlockHeader(
            codecID: try r.u8(9), codecLevel: try r.u8(10), recordCount: try r.u16(12),
            storedLength: try r.u32(16), rawLength: try r.u32(20), logicalContainer: try r.u32(24),
            blockOffset: try r.u32(28), epoch: try r.u32(32), previousBlockCRC: try r.u32(36),
            durableHint: LSN(rawValue: try r.u64(40)), logSalt: try r.u64(48), streamMask: try r.u64(56))
        h.crc = try r.u32(4)
        guard h.recordCount >= 1, Int(h.recordCount) <= Format.maxRecordsPerBlock else {
            throw LogError(.corrupt, "block record count \(h.recordCount) is not 1...\(Format.maxRecordsPerBlock)")
        }
        guard Int(h.rawLength) <= Format.maxRawBlockLength,
            Int(h.rawLength) >= RecordHeader.size * Int(h.recordCount)
        else { throw LogError(.corrupt, "block raw length \(h.rawLength) is impossible for \(h.recordCount) records") }
        _ = try Codec(id: h.codecID, level: h.codecID == 2 ? h.codecLevel : 0)
        if h.codecID == 0 {
            guard h.storedLength == h.rawLength else { throw LogError(.corrupt, "uncompressed block lengths differ") }
        } else {
            guard h.storedLength >= 1, h.storedLength < h.rawLength else {
                throw LogError(.corrupt, "compressed block stored length \(h.storedLength) is not below raw \(h.rawLength)")
            }
        }
        guard h.blockOffset % UInt32(Format.sectorSize) == 0 else { throw LogError(.corrupt, "block offset unaligned") }
        return h
    }

    /// True if the CRC in the header matches header + payload. `block` must hold at least
    /// `64 + storedLength` bytes (callers check that before).
    public func verifyChecksum(block: UnsafeRawBufferPointer) -> Bool {
        let end = BlockHeader.size + Int(storedLength)
        guard block.count >= end else { return false }
        var crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: block[0..<4]))
        crc = withUnsafeBytes(of: UInt32(0)) { CRC32C.checksum($0, continuing: crc) }
        crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: block[8..<end]), continuing: crc)
        return crc == self.crc
    }
}
