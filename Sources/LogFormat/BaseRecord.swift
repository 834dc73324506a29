// Base file: docs/format/base-file.md.

/// State of a container in the base file's container table.
public enum ContainerState: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    /// Free: holds no live data and can take the next logical container id.
    case inactive = 0
    /// Holds live data of logical container `logicalID`.
    case active = 1
    /// Below every stream's base but not yet archived: kept until the archive tail passes it.
    case pendingArchive = 2
    /// Asked to be removed while it held live data: deleted once the log moves past it.
    case pendingDelete = 3

    public var description: String {
        switch self {
        case .inactive: "inactive"
        case .active: "active"
        case .pendingArchive: "pending-archive"
        case .pendingDelete: "pending-delete"
        }
    }

    /// True when the container holds live data of a logical container.
    public var holdsData: Bool { self == .active || self == .pendingArchive || self == .pendingDelete }
}

/// One row of the container table.
public struct ContainerEntry: Sendable, Equatable {
    /// Stable for the container's lifetime; names the file.
    public var physicalID: UInt32
    /// The logical container id it currently holds, or 0 when inactive.
    public var logicalID: UInt32
    /// The container's state; `logicalID` and `endOffset` are 0 unless it holds data.
    public var state: ContainerState
    /// For an active container that the log has moved past: the offset where its last block ends.
    /// 0 for the container the log is currently writing and for inactive ones.
    public var endOffset: UInt64

    /// An entry with the given fields (`BaseRecord.validate()` checks them against the rest of the table).
    public init(physicalID: UInt32, logicalID: UInt32, state: ContainerState, endOffset: UInt64) {
        self.physicalID = physicalID
        self.logicalID = logicalID
        self.state = state
        self.endOffset = endOffset
    }
}

/// The decoded content of one base-file slot: everything needed to find the log's data.
public struct BaseRecord: Sendable, Equatable {
    /// Bytes of a slot's header (128); the sections follow it.
    public static let headerSize = 128
    static let entrySize = 32
    static let sectionHeaderSize = 8
    static let containerSection: UInt16 = 1
    static let requiredFlag: UInt16 = 1

    /// Incremented by every base-file update; the record is written to slot `generation % 2`.
    public var generation: UInt64
    /// Bit 0: the log was closed cleanly (everything up to `durableWatermark` is durable and is the end).
    public var flags: UInt32
    /// The log's identity; its high half is the salt stamped into every block.
    public var logID: LogID
    /// Size in bytes of every container: a multiple of 512 KiB from 512 KiB to 4 GiB (checked by `validate()`).
    public var containerSize: UInt64
    /// Target block size in bytes, header included: a multiple of 512, 1 KiB to min(containerSize − 4096, 16 MiB).
    public var blockSize: UInt32
    /// Largest record data in bytes; at most `LogLimits.largestRecord(containerSize:)`.
    public var maxRecordSize: UInt32
    /// The default codec for new blocks (each block header records the codec it was stored with).
    public var codec: Codec
    /// Incremented by every writable open; blocks carry the epoch they were written in.
    public var epoch: UInt32
    /// Records below this LSN are no longer needed (null: none released).
    public var baseLSN: LSN
    /// Every record at or below this LSN is known to be durable.
    public var durableWatermark: LSN
    /// The block recovery starts scanning from (slot 0).
    public var scanStart: LSN
    /// The last record before `scanStart`, or null.
    public var scanStartPreviousLSN: LSN
    /// The CRC of the block before `scanStart` (0 if none), to check the chain.
    public var scanStartPreviousCRC: UInt32
    /// Every physical id in `containers` is below it; the next container created gets it.
    public var nextPhysicalID: UInt32
    /// The container table (section 1): 2...1024 entries, in no particular order.
    public var containers: [ContainerEntry]
    /// Log-wide archive tail (null: the log is not archived). Header offset 112.
    public var archiveTail: LSN = .null
    /// Named streams; empty for a log that only uses the default stream 0.
    public var streams: [StreamEntry] = []
    /// The next stream id; every id in `streams` is below it (or both are 0).
    public var nextStreamID: UInt16 = 1
    /// The space-management policy; a section is written only when it is not `LogPolicy.default`.
    public var policy: LogPolicy = .default
    /// File names of containers whose name is not the default `container-NNNNNN` (the prefix changed).
    public var containerNames: [UInt32: String] = [:]

    /// Bit 0 of `flags`: the log was closed cleanly.
    public static let cleanShutdownFlag: UInt32 = 1

    /// A record with the given header fields and container table; no archive tail, streams or container
    /// names, and the default policy.
    public init(
        generation: UInt64, flags: UInt32, logID: LogID, containerSize: UInt64, blockSize: UInt32,
        maxRecordSize: UInt32, codec: Codec, epoch: UInt32, baseLSN: LSN, durableWatermark: LSN, scanStart: LSN,
        scanStartPreviousLSN: LSN, scanStartPreviousCRC: UInt32, nextPhysicalID: UInt32, containers: [ContainerEntry]
    ) {
        self.generation = generation
        self.flags = flags
        self.logID = logID
        self.containerSize = containerSize
        self.blockSize = blockSize
        self.maxRecordSize = maxRecordSize
        self.codec = codec
        self.epoch = epoch
        self.baseLSN = baseLSN
        self.durableWatermark = durableWatermark
        self.scanStart = scanStart
        self.scanStartPreviousLSN = scanStartPreviousLSN
        self.scanStartPreviousCRC = scanStartPreviousCRC
        self.nextPhysicalID = nextPhysicalID
        self.containers = containers
    }

    /// The most bytes the sections may take: a slot less its header.
    public static let maxPayloadLength = Format.baseSlotSize - headerSize

    /// The bytes ``encode()`` writes after the header (its payload length, offset 24): the container
    /// table, and the stream table, policy and container names when present. ``validate()`` requires at
    /// most ``maxPayloadLength``.
    public var payloadLength: Int {
        var n = BaseRecord.sectionHeaderSize + 4 + containers.count * BaseRecord.entrySize
        if !streams.isEmpty { n += BaseRecord.sectionHeaderSize + 8 + streams.reduce(0) { $0 + $1.encodedSize } }
        if policy != .default { n += BaseRecord.sectionHeaderSize + LogPolicy.fixedSize + roundUp(policy.containerPrefix.utf8.count, to: 8) }
        if !containerNames.isEmpty {
            n += BaseRecord.sectionHeaderSize + roundUp(containerNames.values.reduce(4) { $0 + 6 + $1.utf8.count }, to: 8)
        }
        return n
    }

    /// Encodes the slot image: header plus sections. Its length is a multiple of 512, and at most
    /// ``Format/baseSlotSize`` when ``validate()`` holds.
    public func encode() -> [UInt8] {
        let sectionLength = 4 + containers.count * BaseRecord.entrySize
        let streamBytes = streams.isEmpty ? [] : BaseRecord.encodeStreams(streams, nextStreamID: nextStreamID)
        let policyBytes = policy == .default ? [] : BaseRecord.encodePolicy(policy)
        let nameBytes = containerNames.isEmpty ? [] : BaseRecord.encodeNames(containerNames)
        var payloadLength = BaseRecord.sectionHeaderSize + sectionLength
        if !streamBytes.isEmpty { payloadLength += BaseRecord.sectionHeaderSize + streamBytes.count }
        if !policyBytes.isEmpty { payloadLength += BaseRecord.sectionHeaderSize + policyBytes.count }
        if !nameBytes.isEmpty { payloadLength += BaseRecord.sectionHeaderSize + nameBytes.count }
        assert(payloadLength == self.payloadLength)
        let total = roundUp(BaseRecord.headerSize + payloadLength, to: Format.sectorSize)
        var bytes = [UInt8](repeating: 0, count: total)
        bytes.withUnsafeMutableBytes { b in
            storeLE(Format.baseMagic, at: 0, in: b)
            storeLE(Format.version, at: 8, in: b)
            storeLE(UInt16(BaseRecord.headerSize), at: 10, in: b)
            storeLE(generation, at: 16, in: b)
            storeLE(UInt32(payloadLength), at: 24, in: b)
            storeLE(flags, at: 28, in: b)
            logID.store(into: b, at: 32)
            storeLE(containerSize, at: 48, in: b)
            storeLE(blockSize, at: 56, in: b)
            storeLE(maxRecordSize, at: 60, in: b)
            storeLE(codec.id, at: 64, in: b)
            storeLE(codec.level, at: 65, in: b)
            storeLE(epoch, at: 68, in: b)
            storeLE(baseLSN.rawValue, at: 72, in: b)
            storeLE(durableWatermark.rawValue, at: 80, in: b)
            storeLE(scanStart.rawValue, at: 88, in: b)
            storeLE(scanStartPreviousLSN.rawValue, at: 96, in: b)
            storeLE(scanStartPreviousCRC, at: 104, in: b)
            storeLE(nextPhysicalID, at: 108, in: b)
            storeLE(archiveTail.rawValue, at: 112, in: b)
            var o = BaseRecord.headerSize
            storeLE(BaseRecord.containerSection, at: o, in: b)
            storeLE(BaseRecord.requiredFlag, at: o + 2, in: b)
            storeLE(UInt32(sectionLength), at: o + 4, in: b)
            o += BaseRecord.sectionHeaderSize
            storeLE(UInt32(containers.count), at: o, in: b)
            o += 4
            for c in containers {
                storeLE(c.physicalID, at: o, in: b)
                storeLE(c.logicalID, at: o + 4, in: b)
                storeLE(c.state.rawValue, at: o + 8, in: b)
                storeLE(c.endOffset, at: o + 16, in: b)
                o += BaseRecord.entrySize
            }
            for (type, body) in [(BaseRecord.streamSection, streamBytes), (BaseRecord.policySection, policyBytes), (BaseRecord.nameSection, nameBytes)] where !body.isEmpty {
                storeLE(type, at: o, in: b)
                storeLE(BaseRecord.requiredFlag, at: o + 2, in: b)
                storeLE(UInt32(body.count), at: o + 4, in: b)
                o += BaseRecord.sectionHeaderSize
                UnsafeMutableRawBufferPointer(rebasing: b[o..<(o + body.count)]).copyBytes(from: body)
                o += body.count
            }
            let covered = UnsafeRawBufferPointer(rebasing: b[0..<(BaseRecord.headerSize + payloadLength)])
            storeLE(CRC32C.checksum(covered), at: 12, in: b)
        }
        return bytes
    }

    /// Decodes and fully validates one slot image. Every length, count and offset is checked before use.
    public static func decode(_ bytes: UnsafeRawBufferPointer) throws -> BaseRecord {
        let r = ByteReader(bytes, what: "base slot")
        guard try r.u64(0) == Format.baseMagic else { throw LogError(.corrupt, "base slot magic is wrong") }
        // Bytes 0..<28 (magic, version, header size, CRC, generation, payload length) keep their places in
        // every version, so the CRC is checked first: a torn or damaged slot is corrupt, and only an intact
        // slot of another version is unsupported.
        let payloadLength = Int(try r.u32(24))
        guard payloadLength <= maxPayloadLength, headerSize + payloadLength <= bytes.count else {
            throw LogError(.corrupt, "base payload length \(payloadLength) does not fit the slot")
        }
        var covered = [UInt8](try r.slice(0, headerSize + payloadLength))
        covered.withUnsafeMutableBytes { storeLE(UInt32(0), at: 12, in: $0) }
        guard CRC32C.checksum(covered) == (try r.u32(12)) else { throw LogError(.corrupt, "base slot checksum mismatch") }
        let version = try r.u16(8)
        guard version == Format.version else {
            throw LogError(.unsupportedVersion, "base file version \(version) is not \(Format.version)")
        }
        guard try r.u16(10) == UInt16(headerSize) else { throw LogError(.corrupt, "base header size is wrong") }

        let codec = try Codec(id: try r.u8(64), level: try r.u8(65))
        var record = BaseRecord(
            generation: try r.u64(16), flags: try r.u32(28), logID: try LogID(r, at: 32),
            containerSize: try r.u64(48), blockSize: try r.u32(56), maxRecordSize: try r.u32(60), codec: codec,
            epoch: try r.u32(68), baseLSN: LSN(rawValue: try r.u64(72)),
            durableWatermark: LSN(rawValue: try r.u64(80)), scanStart: LSN(rawValue: try r.u64(88)),
            scanStartPreviousLSN: LSN(rawValue: try r.u64(96)), scanStartPreviousCRC: try r.u32(104),
            nextPhysicalID: try r.u32(108), containers: [])
        record.archiveTail = LSN(rawValue: try r.u64(112))

        // Sections.
        var o = headerSize
        let end = headerSize + payloadLength
        var sawContainers = false
        var sawStreams = false
        var sawPolicy = false
        var sawNames = false
        while o < end {
            guard end - o >= sectionHeaderSize else { throw LogError(.corrupt, "truncated base section header") }
            let type = try r.u16(o)
            let flags = try r.u16(o + 2)
            let length = Int(try r.u32(o + 4))
            let body = o + sectionHeaderSize
            guard length <= end - body else { throw LogError(.corrupt, "base section \(type) overruns the payload") }
            switch type {
            case containerSection:
                guard !sawContainers else { throw LogError(.corrupt, "two container sections") }
                sawContainers = true
                record.containers = try decodeContainers(r, at: body, length: length)
            case streamSection:
                guard !sawStreams else { throw LogError(.corrupt, "two stream sections") }
                sawStreams = true
                (record.streams, record.nextStreamID) = try decodeStreams(r, at: body, length: length)
            case policySection:
                guard !sawPolicy else { throw LogError(.corrupt, "two policy sections") }
                sawPolicy = true
                record.policy = try decodePolicy(r, at: body, length: length)
            case nameSection:
                guard !sawNames else { throw LogError(.corrupt, "two container-name sections") }
                sawNames = true
                record.containerNames = try decodeNames(r, at: body, length: length)
            default:
                if flags & requiredFlag != 0 {
                    throw LogError(.unsupportedVersion, "base file has an unknown required section \(type)")
                }
            }
            o = body + length
        }
        guard sawContainers else { throw LogError(.corrupt, "base file has no container section") }
        try record.validate()
        return record
    }

    private static func decodeContainers(_ r: ByteReader, at body: Int, length: Int) throws -> [ContainerEntry] {
        guard length >= 4 else { throw LogError(.corrupt, "container section too short") }
        let count = Int(try r.u32(body))
        guard count <= Format.maxContainerCount, length == 4 + count * entrySize else {
            throw LogError(.corrupt, "container count \(count) does not match section length \(length)")
        }
        var entries: [ContainerEntry] = []
        entries.reserveCapacity(count)
        for i in 0..<count {
            let e = body + 4 + i * entrySize
            let stateByte = try r.u8(e + 8)
            guard let state = ContainerState(rawValue: stateByte) else {
                throw LogError(.corrupt, "container \(i) has unknown state \(stateByte)")
            }
            entries.append(
                ContainerEntry(
                    physicalID: try r.u32(e), logicalID: try r.u32(e + 4), state: state, endOffset: try r.u64(e + 16)))
        }
        return entries
    }

    /// Checks the relations between fields, so nothing later trusts an impossible value, and that the
    /// encoded record fits a slot (``payloadLength`` at most ``maxPayloadLength``).
    public func validate() throws {
        func bad(_ m: String) -> LogError { LogError(.corrupt, "base file: \(m)") }
        guard containerSize >= Format.containerSizeUnit, containerSize <= Format.maxContainerSize,
            containerSize % Format.containerSizeUnit == 0
        else { throw bad("container size \(containerSize) is invalid") }
        guard blockSize >= 1024, blockSize % UInt32(Format.sectorSize) == 0,
            UInt64(blockSize) <= containerSize - UInt64(Format.containerDataStart),
            Int(blockSize) <= Format.maxBlockSize
        else { throw bad("block size \(blockSize) is invalid") }
        guard UInt64(maxRecordSize) <= LogLimits.largestRecord(containerSize: containerSize) else {
            throw bad("max record size \(maxRecordSize) does not fit a container")
        }
        guard (Format.minContainerCount...Format.maxContainerCount).contains(containers.count) else {
            throw bad("container count \(containers.count) is not \(Format.minContainerCount)...\(Format.maxContainerCount)")
        }
        var physical = Set<UInt32>()
        var logical = Set<UInt32>()
        for c in containers {
            guard c.physicalID < nextPhysicalID, physical.insert(c.physicalID).inserted else {
                throw bad("physical container id \(c.physicalID) is duplicated or not below \(nextPhysicalID)")
            }
            guard c.endOffset <= containerSize, c.endOffset % UInt64(Format.sectorSize) == 0 else {
                throw bad("container \(c.physicalID) end offset \(c.endOffset) is invalid")
            }
            if c.state.holdsData {
                guard c.logicalID != 0, logical.insert(c.logicalID).inserted else {
                    throw bad("logical container id \(c.logicalID) is zero or duplicated")
                }
            } else {
                guard c.logicalID == 0, c.endOffset == 0 else { throw bad("inactive container \(c.physicalID) has data") }
            }
        }
        guard scanStart.slot == 0, logical.contains(scanStart.container),
            scanStart.blockOffset >= UInt64(Format.containerDataStart), scanStart.blockOffset < containerSize
        else { throw bad("scan start \(scanStart) is not a block of an active container") }
        guard let maxLogical = logical.max(), let minLogical = logical.min(),
            logical.count == Int(maxLogical - minLogical + 1)
        else { throw bad("active logical containers are not contiguous") }
        guard scanStart.container == maxLogical else { throw bad("scan start is not in the newest container") }
        for c in containers where c.state.holdsData && c.logicalID < maxLogical {
            guard c.endOffset >= UInt64(Format.containerDataStart) else {
                throw bad("closed container \(c.physicalID) has no end offset")
            }
        }
        for id in containerNames.keys where !physical.contains(id) {
            throw bad("a container name is given for unknown container \(id)")
        }
        // Decode refuses these; an encoder must not write a base file that no open can read back.
        for (id, name) in containerNames where !BaseRecord.isValidContainerName(name) {
            throw bad("container \(id) has an invalid file name \"\(name)\"")
        }
        // The stream table's rules, as decode checks them: a stream table that breaks one (a name written
        // twice) would make every later open fail with `corrupt`.
        if !streams.isEmpty {
            guard streams.count <= BaseRecord.maxStreams else { throw bad("\(streams.count) streams, more than \(BaseRecord.maxStreams)") }
            var ids = Set<UInt16>()
            var names = Set<String>()
            for s in streams {
                guard s.flags & ~StreamEntry.deletedFlag == 0, s.name.utf8.count <= StreamEntry.maxNameLength else {
                    throw bad("stream \(s.id) has unknown flags \(s.flags) or a name longer than \(StreamEntry.maxNameLength) bytes")
                }
                guard s.id < nextStreamID || nextStreamID == 0 && s.id == 0, ids.insert(s.id).inserted else {
                    throw bad("stream id \(s.id) is duplicated or not below \(nextStreamID)")
                }
                guard s.isDeleted || names.insert(s.name).inserted else { throw bad("stream name \"\(s.name)\" is duplicated") }
            }
        }
        guard baseLSN == .null || baseLSN.container >= minLogical else {
            throw bad("base LSN \(baseLSN) is below the oldest active container")
        }
        // Decode checks the stored payload length; this keeps an encoder from producing a slot that
        // overruns its half of the file (many streams with long names fill it first).
        let length = payloadLength
        guard length <= BaseRecord.maxPayloadLength else {
            throw bad("its sections take \(length) bytes (\(streams.count) streams), more than the \(BaseRecord.maxPayloadLength) a slot holds")
        }
    }
}

/// Limits derived from the format.
public enum LogLimits {
    /// The largest record a container of this size can hold: the container's data area less one block
    /// header and one record header.
    public static func largestRecord(containerSize: UInt64) -> UInt64 {
        let overhead = UInt64(Format.containerDataStart + BlockHeader.size + RecordHeader.size)
        guard containerSize > overhead else { return 0 }
        let data = containerSize - UInt64(Format.containerDataStart)
        return min(data - UInt64(BlockHeader.size) - UInt64(RecordHeader.size), UInt64(Format.maxRawBlockLength - RecordHeader.size))
    }
}
