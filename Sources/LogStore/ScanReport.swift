// What `LogStore.scanBlocks` reports (LogScanner.swift walks the log): valid blocks, problems with their
// position, base-file slots and notes. Used by `txlog verify`, `stats` and `map`.

import LogFormat

/// Records and data bytes of one stream inside a block.
public struct ScanUsage: Sendable, Equatable {
    /// Records of the stream in the block.
    public var records = 0
    /// Their data bytes.
    public var dataBytes = 0

    /// A tally of `records` records holding `dataBytes` bytes.
    public init(records: Int = 0, dataBytes: Int = 0) {
        self.records = records
        self.dataBytes = dataBytes
    }
}

/// What the scanner learned about one valid block.
public struct ScannedBlock: Sendable, Equatable {
    /// The LSN of the block's slot 0 (its position: logical container and offset).
    public var lsn: LSN
    /// The physical container holding it.
    public var physicalID: UInt32
    /// Byte offset inside the container.
    public var offset: UInt64
    /// The codec the block's payload is stored with (`none` when compressing did not make it smaller).
    public var codec: Codec
    /// Payload bytes as stored (compressed or not).
    public var storedLength: Int
    /// Payload bytes uncompressed.
    public var rawLength: Int
    /// Bytes on disk: the header, the stored payload and the padding to 512.
    public var diskLength: Int
    /// Records in the block.
    public var recordCount: Int
    /// Restart records among them.
    public var restartRecords: Int
    /// The writer session that wrote the block.
    public var epoch: UInt32
    /// The block header's mask of the streams with records in it.
    public var streamMask: UInt64
    /// Per stream present in the block.
    public var streams: [UInt16: ScanUsage]
}

/// One piece of damage.
public struct ScanProblem: Sendable, Equatable, CustomStringConvertible {
    /// Which structure is damaged.
    public enum Kind: String, Sendable {
        /// A block of a data-holding container.
        case block
        /// A container file or its header.
        case container
        /// A base-file slot.
        case base
    }

    /// Which structure is damaged.
    public var kind: Kind
    /// What is wrong, in words.
    public var message: String
    /// The position of the damaged block (slot 0), when the damage is in a block.
    public var lsn: LSN?
    /// The physical container, when the damage is in a container.
    public var container: UInt32?
    /// Byte offset in the container or the base file.
    public var offset: UInt64?
    /// The damaged file.
    public var path: String?

    /// A problem of `kind`, described by `message`, at the position given.
    public init(kind: Kind, message: String, lsn: LSN? = nil, container: UInt32? = nil, offset: UInt64? = nil, path: String? = nil) {
        self.kind = kind
        self.message = message
        self.lsn = lsn
        self.container = container
        self.offset = offset
        self.path = path
    }

    public var description: String {
        var at: [String] = []
        if let lsn { at.append("lsn \(lsn)") }
        if let container { at.append("container \(container)") }
        if let offset { at.append("offset \(offset)") }
        if let path { at.append("path \(path)") }
        return "\(kind.rawValue): \(message)" + (at.isEmpty ? "" : " [" + at.joined(separator: ", ") + "]")
    }
}

/// One of the base file's two slots.
public struct ScannedBaseSlot: Sendable, Equatable {
    /// What the slot holds.
    public enum State: String, Sendable {
        /// The newest valid slot: the one the log uses.
        case current
        /// Valid, older than the other.
        case previous
        /// All zeros: never written (normal for a new log).
        case unused
        /// Does not decode (counted as a problem).
        case damaged
    }

    /// 0 or 1.
    public var slot: Int
    /// What the slot holds.
    public var state: State
    /// The slot's generation, when it decodes.
    public var generation: UInt64?
}

/// Everything a scan found.
public struct ScanReport: Sendable {
    /// Every valid block, in log order.
    public var blocks: [ScannedBlock] = []
    /// Damage, in the order found. Empty for a clean log.
    public var problems: [ScanProblem] = []
    /// Things worth knowing that are not damage: a torn tail recovery dropped, a container recycled by a
    /// live writer while it was being scanned, base-file notes.
    public var notes: [String] = []
    /// The base file's two slots, as read.
    public var baseSlots: [ScannedBaseSlot] = []
    /// Container headers checked (every container in the table).
    public var containersChecked = 0
    /// Bytes of container data area walked.
    public var bytesScanned: UInt64 = 0
    /// Where the walk ended: the end of the log, or the first damage when it stopped there.
    public var end: LSN = .null
    /// False when the scan stopped at the first problem (without `keepGoing`).
    public var complete = true

    /// An empty report: nothing scanned, complete.
    public init() {}
}
