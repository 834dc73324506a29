// Record header: docs/format/record.md.

/// What a record is for. Values are on-disk ids.
public enum RecordType: UInt8, Sendable, CaseIterable {
    /// A client data record.
    case data = 1
    /// A restart-area record.
    case restart = 2
}

/// The 24-byte header in front of every record inside a block's (uncompressed) payload.
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 4 | data length |
/// | 4 | 1 | record type |
/// | 5 | 1 | flags (0) |
/// | 6 | 2 | stream id |
/// | 8 | 8 | previous LSN |
/// | 16 | 8 | undo-next LSN |
///
/// The data follows and is padded with zeros to a multiple of 8 bytes.
public struct RecordHeader: Sendable, Equatable {
    /// Bytes of a record header (24); the record's data follows it.
    public static let size = 24

    /// Bytes of the record's data (may be 0), not counting the header or padding.
    public var length: UInt32
    /// What the record is for.
    public var type: RecordType
    /// The stream the record belongs to (0: the log's default stream).
    public var stream: UInt16
    /// A client-defined link to an earlier record; `LSN.invalid` ends the chain (not checked on decode).
    public var previous: LSN
    /// A client-defined link for undo processing; `LSN.invalid` ends the chain (not checked on decode).
    public var undoNext: LSN

    /// A header with the given fields.
    public init(length: UInt32, type: RecordType, stream: UInt16, previous: LSN, undoNext: LSN) {
        self.length = length
        self.type = type
        self.stream = stream
        self.previous = previous
        self.undoNext = undoNext
    }

    /// Bytes a record of `dataLength` takes in a payload: header plus data padded to 8.
    @inlinable
    public static func footprint(dataLength: Int) -> Int { size + ((dataLength + 7) & ~7) }

    /// Writes the 24 header bytes (flags 0) at `offset` of `buffer`; traps if they do not fit.
    public func encode(into buffer: UnsafeMutableRawBufferPointer, at offset: Int) {
        storeLE(length, at: offset, in: buffer)
        storeLE(type.rawValue, at: offset + 4, in: buffer)
        storeLE(UInt8(0), at: offset + 5, in: buffer)
        storeLE(stream, at: offset + 6, in: buffer)
        storeLE(previous.rawValue, at: offset + 8, in: buffer)
        storeLE(undoNext.rawValue, at: offset + 16, in: buffer)
    }

    /// Reads the header at `offset`; throws `corrupt` if it is out of bounds, its type is unknown or its
    /// flags are not 0.
    public static func decode(_ r: ByteReader, at offset: Int) throws -> RecordHeader {
        let length = try r.u32(offset)
        let typeByte = try r.u8(offset + 4)
        guard let type = RecordType(rawValue: typeByte) else {
            throw LogError(.corrupt, "\(r.what): unknown record type \(typeByte) at payload offset \(offset)")
        }
        let flags = try r.u8(offset + 5)
        guard flags == 0 else { throw LogError(.corrupt, "\(r.what): record flags \(flags) must be 0") }
        return RecordHeader(
            length: length, type: type, stream: try r.u16(offset + 6),
            previous: LSN(rawValue: try r.u64(offset + 8)), undoNext: LSN(rawValue: try r.u64(offset + 16)))
    }
}
