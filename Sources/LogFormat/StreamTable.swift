// Stream table and policy sections of the base file: docs/format/base-file.md ("Sections 2 and 3").

/// One stream's persisted state.
public struct StreamEntry: Sendable, Equatable {
    /// Bytes of an entry before its name (the name follows, zero-padded to a multiple of 8).
    public static let fixedSize = 40
    /// Longest stream name, in UTF-8 bytes.
    public static let maxNameLength = 255

    /// The stream's id, the stream field of its records; below the table's next stream id (or both are 0).
    public var id: UInt16
    /// Bit 0: deleted (kept until no record of it is needed; not reused before then).
    public var flags: UInt16
    /// The stream's name, at most `maxNameLength` UTF-8 bytes; the default stream 0 has the empty name.
    public var name: String
    /// Records below this LSN are no longer needed by the stream (null: nothing needed yet).
    public var base: LSN
    /// The stream's last LSN known when the base file was written (recovery raises it from the scan).
    public var last: LSN
    /// The oldest record not yet archived (null: the stream is not archived).
    public var archiveTail: LSN
    /// The latest restart area (null: none).
    public var restart: LSN

    /// Flag bit 0: the stream was deleted.
    public static let deletedFlag: UInt16 = 1
    /// Whether the entry is a deleted stream's (not a stream an open should load).
    public var isDeleted: Bool { flags & StreamEntry.deletedFlag != 0 }

    /// An entry; the flags default to 0 (not deleted) and every LSN to `LSN.null`.
    public init(id: UInt16, flags: UInt16 = 0, name: String, base: LSN = .null, last: LSN = .null, archiveTail: LSN = .null, restart: LSN = .null) {
        self.id = id
        self.flags = flags
        self.name = name
        self.base = base
        self.last = last
        self.archiveTail = archiveTail
        self.restart = restart
    }

    var encodedSize: Int { StreamEntry.fixedSize + roundUp(name.utf8.count, to: 8) }
}

/// Space-management policy, persisted so it survives reopen.
public struct LogPolicy: Sendable, Equatable {
    /// Bytes of the policy section before the container-name prefix.
    public static let fixedSize = 32
    /// Longest container-name prefix, in bytes.
    public static let maxPrefixLength = 64

    /// Auto-shrink never goes below this many containers (at least 2).
    public var minContainers: UInt32 = 2
    /// Auto-grow never takes the log above this many containers, however many appenders find it full at
    /// once, nor above the maximum in force when it names them (a lower one set meanwhile holds). Like
    /// the minimum, it counts the containers the log keeps: one pending delete (removed while it held
    /// records, deleted once every base has passed it) does not count, so until then the directory may
    /// hold that file beside the maximum. `LogStore.addContainer` is not bound by it (only by the
    /// format's 1024). Lowering it below the containers the log keeps removes none of them (only
    /// auto-shrink removes free ones, by its percentage); auto-grow then adds none.
    public var maxContainers: UInt32 = 1024
    /// Containers added per growth step.
    public var growthIncrement: UInt32 = 2
    /// Grow when the log is full and the policy allows: an append, or a reservation, that finds no room
    /// adds `growthIncrement` containers at a time, as many steps as it needs within the maximums.
    public var autoGrow = false
    /// Shrink when more than this percentage of the log is free containers (0: never). Checked after a base
    /// or an archive tail moves, a stream is deleted, reservations are released, the writer's container
    /// switch frees a container (off the writer thread), and by `LogStore.setPolicy`; a free container that
    /// reservations need is kept. Not checked by appends, nor by the recycling a full log's append makes
    /// room with, and no container is removed while an append is in the log-full path, up to its retry (a
    /// base its tail-pinned handlers move frees room that append needs). A check held back that way, or
    /// by the reservations, runs again (off the caller's thread) once the last such append is done, or
    /// once a reserved append uses a reservation up, so a log that goes idle still shrinks.
    public var autoShrinkPercent: UInt8 = 0
    /// Auto-grow never takes the log above this many bytes of containers (0: no limit), counting the
    /// containers the log keeps, as `maxContainers` does. `LogStore.addContainer` is not bound by it.
    public var maxSizeBytes: UInt64 = 0
    /// File name prefix of containers created from now on. `LogStore.setPolicy` refuses one that starts
    /// with `txlog.base` (the base file's names; the base file cannot record such a container name).
    public var containerPrefix: String = Format.defaultContainerPrefix

    /// The default policy: 2 to 1024 containers, growth by 2, no auto-grow or auto-shrink, no size limit,
    /// prefix `container-`.
    public init() {}

    /// The default policy, `init()`; the base file holds no policy section for it.
    public static let `default` = LogPolicy()

    /// Checks the policy's values.
    public func validate() throws {
        func bad(_ m: String) -> LogError { LogError(.invalidArgument, "policy: \(m)") }
        guard minContainers >= UInt32(Format.minContainerCount) else { throw bad("minimum containers must be at least 2") }
        guard maxContainers >= minContainers, maxContainers <= UInt32(Format.maxContainerCount) else {
            throw bad("maximum containers must be between the minimum and \(Format.maxContainerCount)")
        }
        guard growthIncrement >= 1, growthIncrement <= 64 else { throw bad("growth increment must be 1...64") }
        guard autoShrinkPercent <= 100 else { throw bad("auto-shrink percentage must be 0...100") }
        let p = containerPrefix.utf8
        guard !p.isEmpty, p.count <= LogPolicy.maxPrefixLength,
            containerPrefix.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) })
        else { throw bad("container prefix must be 1...64 characters of letters, digits, '-', '_' or '.'") }
    }
}

extension BaseRecord {
    static let streamSection: UInt16 = 2
    static let policySection: UInt16 = 3
    static let maxStreams = 4096
    static let nameSection: UInt16 = 4

    static func encodeNames(_ names: [UInt32: String]) -> [UInt8] {
        var bytes: [UInt8] = []
        withUnsafeBytes(of: UInt32(names.count).littleEndian) { bytes.append(contentsOf: $0) }
        for (id, name) in names.sorted(by: { $0.key < $1.key }) {
            let n = Array(name.utf8)
            withUnsafeBytes(of: id.littleEndian) { bytes.append(contentsOf: $0) }
            withUnsafeBytes(of: UInt16(n.count).littleEndian) { bytes.append(contentsOf: $0) }
            bytes.append(contentsOf: n)
        }
        while bytes.count % 8 != 0 { bytes.append(0) }
        return bytes
    }

    /// Whether a container file name may be recorded (section 4): 1...80 ASCII letters, digits, `-`, `_`
    /// and `.`, not `.` or `..`, and not starting with `txlog.base` (the base file's own names).
    public static func isValidContainerName(_ name: String) -> Bool {
        let n = name.utf8.count
        return n >= 1 && n <= 80 && name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) })
            && name != "." && name != ".." && !name.hasPrefix(Format.baseFileName)
    }

    static func decodeNames(_ r: ByteReader, at body: Int, length: Int) throws -> [UInt32: String] {
        let end = body + length
        let count = Int(try r.u32(body))
        guard count <= Format.maxContainerCount else { throw LogError(.corrupt, "container-name count \(count)") }
        var names: [UInt32: String] = [:]
        var o = body + 4
        for _ in 0..<count {
            guard end - o >= 6 else { throw LogError(.corrupt, "container-name entry overruns its section") }
            let id = try r.u32(o)
            let n = Int(try r.u16(o + 4))
            guard n >= 1, n <= 80, end - o - 6 >= n else { throw LogError(.corrupt, "container name length \(n)") }
            guard let name = String(validating: try r.slice(o + 6, n), as: UTF8.self), isValidContainerName(name),
                names.updateValue(name, forKey: id) == nil
            else { throw LogError(.corrupt, "container name for \(id) is invalid or duplicated") }
            o += 6 + n
        }
        guard end - o < 8, try r.slice(o, end - o).allSatisfy({ $0 == 0 }) else {
            throw LogError(.corrupt, "container-name section has trailing bytes")
        }
        return names
    }

    static func encodeStreams(_ streams: [StreamEntry], nextStreamID: UInt16) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 8 + streams.reduce(0) { $0 + $1.encodedSize })
        bytes.withUnsafeMutableBytes { b in
            storeLE(nextStreamID, at: 0, in: b)
            storeLE(UInt32(streams.count), at: 4, in: b)
            var o = 8
            for s in streams {
                let name = Array(s.name.utf8)
                storeLE(s.id, at: o, in: b)
                storeLE(s.flags, at: o + 2, in: b)
                storeLE(UInt16(name.count), at: o + 4, in: b)
                storeLE(s.base.rawValue, at: o + 8, in: b)
                storeLE(s.last.rawValue, at: o + 16, in: b)
                storeLE(s.archiveTail.rawValue, at: o + 24, in: b)
                storeLE(s.restart.rawValue, at: o + 32, in: b)
                let at = o + StreamEntry.fixedSize
                UnsafeMutableRawBufferPointer(rebasing: b[at..<(at + name.count)]).copyBytes(from: name)
                o += s.encodedSize
            }
        }
        return bytes
    }

    static func decodeStreams(_ r: ByteReader, at body: Int, length: Int) throws -> ([StreamEntry], UInt16) {
        guard length >= 8 else { throw LogError(.corrupt, "stream section too short") }
        let next = try r.u16(body)
        let count = Int(try r.u32(body + 4))
        guard count <= maxStreams else { throw LogError(.corrupt, "stream count \(count) exceeds \(maxStreams)") }
        var entries: [StreamEntry] = []
        var o = body + 8
        let end = body + length
        var ids = Set<UInt16>()
        var names = Set<String>()
        for _ in 0..<count {
            guard end - o >= StreamEntry.fixedSize else { throw LogError(.corrupt, "stream entry overruns its section") }
            let id = try r.u16(o)
            let flags = try r.u16(o + 2)
            let nameLength = Int(try r.u16(o + 4))
            guard nameLength <= StreamEntry.maxNameLength else { throw LogError(.corrupt, "stream name length \(nameLength)") }
            let size = StreamEntry.fixedSize + roundUp(nameLength, to: 8)
            guard end - o >= size else { throw LogError(.corrupt, "stream entry overruns its section") }
            guard let name = String(validating: try r.slice(o + StreamEntry.fixedSize, nameLength), as: UTF8.self) else {
                throw LogError(.corrupt, "stream name is not UTF-8")
            }
            guard flags & ~1 == 0 else { throw LogError(.corrupt, "stream \(id) has unknown flags \(flags)") }
            guard id < next || next == 0 && id == 0, ids.insert(id).inserted else {
                throw LogError(.corrupt, "stream id \(id) is duplicated or not below \(next)")
            }
            guard flags & 1 != 0 || names.insert(name).inserted else { throw LogError(.corrupt, "stream name \"\(name)\" is duplicated") }
            entries.append(
                StreamEntry(
                    id: id, flags: flags, name: name, base: LSN(rawValue: try r.u64(o + 8)), last: LSN(rawValue: try r.u64(o + 16)),
                    archiveTail: LSN(rawValue: try r.u64(o + 24)), restart: LSN(rawValue: try r.u64(o + 32))))
            o += size
        }
        guard o == end else { throw LogError(.corrupt, "stream section has \(end - o) trailing bytes") }
        return (entries, next)
    }

    static func encodePolicy(_ p: LogPolicy) -> [UInt8] {
        let prefix = Array(p.containerPrefix.utf8)
        var bytes = [UInt8](repeating: 0, count: LogPolicy.fixedSize + roundUp(prefix.count, to: 8))
        bytes.withUnsafeMutableBytes { b in
            storeLE(p.minContainers, at: 0, in: b)
            storeLE(p.maxContainers, at: 4, in: b)
            storeLE(p.growthIncrement, at: 8, in: b)
            storeLE(UInt8(p.autoGrow ? 1 : 0), at: 12, in: b)
            storeLE(p.autoShrinkPercent, at: 13, in: b)
            storeLE(UInt16(prefix.count), at: 14, in: b)
            storeLE(p.maxSizeBytes, at: 16, in: b)
            for (i, c) in prefix.enumerated() { b[LogPolicy.fixedSize + i] = c }
        }
        return bytes
    }

    static func decodePolicy(_ r: ByteReader, at body: Int, length: Int) throws -> LogPolicy {
        guard length >= LogPolicy.fixedSize else { throw LogError(.corrupt, "policy section too short") }
        var p = LogPolicy()
        p.minContainers = try r.u32(body)
        p.maxContainers = try r.u32(body + 4)
        p.growthIncrement = try r.u32(body + 8)
        let grow = try r.u8(body + 12)
        guard grow <= 1 else { throw LogError(.corrupt, "policy auto-grow flag \(grow)") }
        p.autoGrow = grow == 1
        p.autoShrinkPercent = try r.u8(body + 13)
        let prefixLength = Int(try r.u16(body + 14))
        p.maxSizeBytes = try r.u64(body + 16)
        guard prefixLength <= LogPolicy.maxPrefixLength, length == LogPolicy.fixedSize + roundUp(prefixLength, to: 8) else {
            throw LogError(.corrupt, "policy prefix length \(prefixLength) does not match the section")
        }
        guard let prefix = String(validating: try r.slice(body + LogPolicy.fixedSize, prefixLength), as: UTF8.self) else {
            throw LogError(.corrupt, "policy prefix is not UTF-8")
        }
        p.containerPrefix = prefix
        do { try p.validate() } catch let e as LogError { throw LogError(.corrupt, e.message) }
        return p
    }
}
