// The records a store writes to its own stream, and its checkpoint (restart area). Specified in
// docs/format/kv-records.md. Decoding is total: bad bytes give `corrupt`, never a trap.

import LogStore
import TransactionManager

/// One write of a transaction: a put (value present) or a delete (value nil).
struct KVWrite: Equatable, Sendable {
    var key: [UInt8]
    var value: [UInt8]?
}

/// The checkpoint a store keeps in its stream's restart area.
struct KVCheckpoint: Equatable, Sendable {
    var store: GUID
    /// The snapshot file holding every committed key at `coveredThrough`.
    var snapshotFile: String
    /// Records of the store's stream at or below this LSN are reflected in the snapshot.
    var coveredThrough: LSN
    /// Transactions prepared and not yet decided at the snapshot, with their writes.
    var pending: [(id: GUID, writes: [KVWrite])]

    static func == (a: KVCheckpoint, b: KVCheckpoint) -> Bool {
        a.store == b.store && a.snapshotFile == b.snapshotFile && a.coveredThrough == b.coveredThrough
            && a.pending.map(\.id) == b.pending.map(\.id) && a.pending.map(\.writes) == b.pending.map(\.writes)
    }
}

enum KVRecord: Equatable, Sendable {
    /// The transaction's writes, appended before prepare-complete (not flushed: the TM's decision
    /// record, later in the same log, is).
    case prepare(GUID, [KVWrite])
    /// The decision reached the store; its writes are applied.
    case commit(GUID)
    /// A prepared transaction rolled back.
    case abort(GUID)
    /// Single-phase commit: the writes and the decision in one record, flushed by the store.
    case commitOnePhase(GUID, [KVWrite])
    case checkpoint(KVCheckpoint)

    static let magic: UInt32 = 0x3152_564B  // "KVR1"
    /// The encoded size of a `commit` or an `abort` record (the same for both), reserved at prepare.
    static let outcomeSize = max(KVRecord.commit(GUID.random()).encode().count, KVRecord.abort(GUID.random()).encode().count)
    static let version: UInt8 = 1
    static let maxKey = 64 * 1024
    static let maxValue = 16 * 1024 * 1024

    private var kind: UInt8 {
        switch self {
        case .prepare: 1
        case .commit: 2
        case .abort: 3
        case .commitOnePhase: 4
        case .checkpoint: 16
        }
    }

    func encode() -> [UInt8] {
        var w = ByteWriter()
        w.u32(KVRecord.magic)
        w.u8(kind)
        w.u8(KVRecord.version)
        w.u16(0)
        switch self {
        case .prepare(let id, let writes), .commitOnePhase(let id, let writes):
            w.guid(id)
            w.writes(writes)
        case .commit(let id), .abort(let id):
            w.guid(id)
        case .checkpoint(let c):
            w.guid(c.store)
            w.lengthPrefixed(c.snapshotFile.utf8)
            w.u64(c.coveredThrough.rawValue)
            w.u32(UInt32(c.pending.count))
            for p in c.pending {
                w.guid(p.id)
                w.writes(p.writes)
            }
        }
        return w.bytes
    }

    static func decode(_ bytes: [UInt8]) throws -> KVRecord {
        var r = KVReader(bytes, what: "kv record")
        guard try r.u32() == magic else { throw LogError(.corrupt, "kv record: bad magic") }
        let kind = try r.u8()
        let v = try r.u8()
        guard v == version else { throw LogError(.unsupportedVersion, "kv record: version \(v)") }
        _ = try r.u16()
        let rec: KVRecord
        switch kind {
        case 1: rec = .prepare(try r.guid(), try r.writes())
        case 2: rec = .commit(try r.guid())
        case 3: rec = .abort(try r.guid())
        case 4: rec = .commitOnePhase(try r.guid(), try r.writes())
        case 16:
            let store = try r.guid()
            let name = try r.bytes(limit: 4096)
            guard let file = String(validating: name, as: UTF8.self) else { throw LogError(.corrupt, "kv record: file name is not UTF-8") }
            // One plain name inside the store's directory: recovery opens it, so a damaged or crafted record
            // must not be able to point anywhere else. Checked on the bytes: `String.hasPrefix` compares
            // characters, and a "." followed by a combining mark is one character that is not ".".
            guard name.first.map({ $0 != UInt8(ascii: ".") }) ?? false, !name.contains(UInt8(ascii: "/")), !name.contains(0) else {
                throw LogError(.corrupt, "kv record: snapshot file name \"\(file.prefix(64))\" is not a plain file name")
            }
            let covered = LSN(rawValue: try r.u64())
            let n = try r.count(minimumEntrySize: 20)
            var pending: [(GUID, [KVWrite])] = []
            for _ in 0..<n { pending.append((try r.guid(), try r.writes())) }
            rec = .checkpoint(KVCheckpoint(store: store, snapshotFile: file, coveredThrough: covered, pending: pending.map { (id: $0.0, writes: $0.1) }))
        default: throw LogError(.corrupt, "kv record: unknown kind \(kind)")
        }
        guard r.atEnd else { throw LogError(.corrupt, "kv record: trailing bytes") }
        return rec
    }
}

extension ByteWriter {
    mutating func writes(_ ws: [KVWrite]) {
        u32(UInt32(ws.count))
        for w in ws {
            lengthPrefixed(w.key)
            if let v = w.value {
                u8(1)
                lengthPrefixed(v)
            } else {
                u8(0)
            }
        }
    }
}

/// Bounds-checked reader: every length and count is checked against the bytes that remain.
struct KVReader {
    let data: [UInt8]
    let what: String
    var offset = 0
    /// Reading stops here (a trailer after it is not part of the fields).
    let end: Int

    init(_ data: [UInt8], what: String, offset: Int = 0, end: Int? = nil) {
        self.data = data
        self.what = what
        self.offset = offset
        self.end = min(end ?? data.count, data.count)
    }

    var remaining: Int { end - offset }
    var atEnd: Bool { offset == end }

    private mutating func int<T: FixedWidthInteger>(_: T.Type) throws -> T {
        let n = MemoryLayout<T>.size
        guard remaining >= n else { throw LogError(.corrupt, "\(what): truncated at byte \(offset)") }
        let at = offset
        offset += n
        return data.withUnsafeBytes { T(littleEndian: $0.loadUnaligned(fromByteOffset: at, as: T.self)) }
    }

    mutating func u8() throws -> UInt8 { try int(UInt8.self) }
    mutating func u16() throws -> UInt16 { try int(UInt16.self) }
    mutating func u32() throws -> UInt32 { try int(UInt32.self) }
    mutating func u64() throws -> UInt64 { try int(UInt64.self) }
    mutating func guid() throws -> GUID { GUID(high: try u64(), low: try u64()) }

    mutating func bytes(limit: Int) throws -> [UInt8] {
        let n = Int(try u32())
        guard n <= limit else { throw LogError(.corrupt, "\(what): field of \(n) bytes exceeds \(limit)") }
        guard n <= remaining, n >= 0 else { throw LogError(.corrupt, "\(what): field of \(n) bytes runs past the end") }
        defer { offset += n }
        return Array(data[offset..<offset + n])
    }

    /// Like ``bytes(limit:)``, but a slice sharing the reader's buffer: no allocation.
    mutating func slice(limit: Int) throws -> ArraySlice<UInt8> {
        let n = Int(try u32())
        guard n <= limit else { throw LogError(.corrupt, "\(what): field of \(n) bytes exceeds \(limit)") }
        guard n <= remaining, n >= 0 else { throw LogError(.corrupt, "\(what): field of \(n) bytes runs past the end") }
        defer { offset += n }
        return data[offset..<offset + n]
    }

    mutating func count(minimumEntrySize: Int) throws -> Int {
        let n = Int(try u32())
        guard n <= remaining / minimumEntrySize else { throw LogError(.corrupt, "\(what): count \(n) cannot fit in \(remaining) bytes") }
        return n
    }

    mutating func writes() throws -> [KVWrite] {
        let n = try count(minimumEntrySize: 5)
        var out: [KVWrite] = []
        out.reserveCapacity(n)
        for _ in 0..<n {
            let key = try bytes(limit: KVRecord.maxKey)
            let flag = try u8()
            switch flag {
            case 0: out.append(KVWrite(key: key, value: nil))
            case 1: out.append(KVWrite(key: key, value: try bytes(limit: KVRecord.maxValue)))
            default: throw LogError(.corrupt, "\(what): bad write flag \(flag)")
            }
        }
        return out
    }
}
