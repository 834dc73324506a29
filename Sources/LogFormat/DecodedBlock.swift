// Decoding a whole block: docs/format/block.md ("Validity").

/// Where a block is expected to be and which log it must belong to. A block that decodes but names
/// another place, log or a later epoch is not part of this log.
public struct BlockIdentity: Sendable, Equatable {
    /// The salt of the log the block must belong to (the high half of its `LogID`).
    public var logSalt: UInt64
    /// The logical container id the block must name.
    public var logicalContainer: UInt32
    /// The byte offset inside the container the block must name: where it is read from.
    public var blockOffset: UInt32
    /// Blocks from an epoch above this one are rejected.
    public var maxEpoch: UInt32

    /// An identity with the given fields.
    public init(logSalt: UInt64, logicalContainer: UInt32, blockOffset: UInt32, maxEpoch: UInt32) {
        self.logSalt = logSalt
        self.logicalContainer = logicalContainer
        self.blockOffset = blockOffset
        self.maxEpoch = maxEpoch
    }
}

/// One record located inside a decoded block's payload.
public struct RecordSlot: Sendable, Equatable {
    /// The record's header: its data length, type, stream and links.
    public var header: RecordHeader
    /// Offset of the record's data inside the raw payload.
    public var dataOffset: Int
}

/// A block that passed every check: identity, CRC, decompression and record structure.
public struct DecodedBlock: Sendable {
    /// The block's header, checked against the expected identity and its CRC.
    public var header: BlockHeader
    /// The uncompressed payload.
    public var payload: [UInt8]
    /// The records, in slot order.
    public var slots: [RecordSlot]

    /// A block from its parts; `decode(_:expecting:maxRawLength:)` builds one after every check.
    public init(header: BlockHeader, payload: [UInt8], slots: [RecordSlot]) {
        self.header = header
        self.payload = payload
        self.slots = slots
    }

    /// Why a block failed to decode, so recovery can tell a torn tail from damage.
    public enum Failure: Error, Sendable, Equatable {
        /// Nothing that looks like a block of this log is here (zeros, another log, an older cycle).
        case absent(String)
        /// The header names this position, but the block is incomplete or its checksum is wrong.
        case damaged(String)
    }

    /// Decodes the block at the start of `bytes`, which holds everything from the block's offset to the end
    /// of the container (or at least the whole block). `maxRawLength` bounds the uncompressed size.
    public static func decode(
        _ bytes: UnsafeRawBufferPointer, expecting identity: BlockIdentity, maxRawLength: Int
    ) -> Result<DecodedBlock, Failure> {
        let header: BlockHeader
        switch validate(bytes, expecting: identity, maxRawLength: maxRawLength) {
        case .success(let h): header = h
        case .failure(let f): return .failure(f)
        }
        do {
            let stored = UnsafeRawBufferPointer(rebasing: bytes[BlockHeader.size..<(BlockHeader.size + Int(header.storedLength))])
            let payload = try decodePayload(stored, header: header)
            let slots = try parseRecords(payload, count: Int(header.recordCount))
            return .success(DecodedBlock(header: header, payload: payload, slots: slots))
        } catch let e as LogError {
            return .failure(.damaged(e.message))
        } catch {
            return .failure(.damaged("\(error)"))
        }
    }

    /// Checks a block's header, identity, length and CRC without decompressing it. A reader that only
    /// needs the header (for example, to skip a block holding none of its stream's records) stops here.
    public static func validate(
        _ bytes: UnsafeRawBufferPointer, expecting identity: BlockIdentity, maxRawLength: Int
    ) -> Result<BlockHeader, Failure> {
        guard bytes.count >= BlockHeader.size else { return .failure(.absent("fewer than 64 bytes left")) }
        let header: BlockHeader
        do { header = try BlockHeader.decode(bytes) } catch {
            // A header that does not even parse only counts as damage if it carries our magic and identity.
            if looksLikeOurs(bytes, identity) { return .failure(.damaged("header: \((error as? LogError)?.message ?? "\(error)")")) }
            return .failure(.absent("no block header"))
        }
        guard header.logSalt == identity.logSalt, header.logicalContainer == identity.logicalContainer,
            header.blockOffset == identity.blockOffset, header.epoch <= identity.maxEpoch
        else { return .failure(.absent("block belongs to another log, container cycle, position or epoch")) }
        guard Int(header.rawLength) <= maxRawLength else {
            return .failure(.damaged("raw length \(header.rawLength) exceeds the log's limit \(maxRawLength)"))
        }
        let end = BlockHeader.size + Int(header.storedLength)
        guard end <= bytes.count else { return .failure(.damaged("block runs past the end of the container")) }
        guard header.verifyChecksum(block: bytes) else { return .failure(.damaged("checksum mismatch")) }
        return .success(header)
    }

    /// Decompresses a stored payload to exactly `header.rawLength` bytes.
    public static func decodePayload(_ stored: UnsafeRawBufferPointer, header: BlockHeader) throws -> [UInt8] {
        let codec = try Codec(id: header.codecID, level: header.codecID == 2 ? header.codecLevel : 0)
        return try [UInt8](unsafeUninitializedCapacity: Int(header.rawLength)) { buf, count in
            try codec.decompress(stored, into: UnsafeMutableRawBufferPointer(buf))
            count = Int(header.rawLength)
        }
    }

    /// Walks `count` records through a raw payload, checking every length with overflow-safe arithmetic.
    /// The records must fill the payload exactly.
    public static func parseRecords(_ payload: [UInt8], count: Int) throws -> [RecordSlot] {
        try payload.withUnsafeBytes { raw in
            let r = ByteReader(raw, what: "block payload")
            var slots: [RecordSlot] = []
            slots.reserveCapacity(count)
            var offset = 0
            for _ in 0..<count {
                let header = try RecordHeader.decode(r, at: offset)
                let dataOffset = offset + RecordHeader.size
                let remaining = raw.count - dataOffset
                guard UInt64(header.length) <= UInt64(remaining) else {
                    throw LogError(.corrupt, "record length \(header.length) exceeds the \(remaining) bytes left")
                }
                let padded = (Int(header.length) + 7) & ~7
                guard padded <= remaining else { throw LogError(.corrupt, "record padding runs past the payload") }
                for i in Int(header.length)..<padded where raw[dataOffset + i] != 0 {
                    throw LogError(.corrupt, "record padding is not zero")
                }
                slots.append(RecordSlot(header: header, dataOffset: dataOffset))
                offset = dataOffset + padded
            }
            guard offset == raw.count else {
                throw LogError(.corrupt, "records end at \(offset) but the payload has \(raw.count) bytes")
            }
            return slots
        }
    }

    /// The data of the record in `slot`.
    public func data(at slot: Int) -> [UInt8] {
        let s = slots[slot]
        return Array(payload[s.dataOffset..<(s.dataOffset + Int(s.header.length))])
    }

    private static func looksLikeOurs(_ bytes: UnsafeRawBufferPointer, _ identity: BlockIdentity) -> Bool {
        let r = ByteReader(bytes, what: "block header")
        guard (try? r.u32(0)) == Format.blockMagic else { return false }
        return (try? r.u64(48)) == identity.logSalt && (try? r.u32(24)) == identity.logicalContainer
            && (try? r.u32(28)) == identity.blockOffset && ((try? r.u32(32)) ?? .max) <= identity.maxEpoch
    }
}
