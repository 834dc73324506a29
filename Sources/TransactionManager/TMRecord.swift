// The records the transaction manager writes to its stream, and its checkpoint (restart area).
// Specified in docs/format/tm-records.md. Decoding is total: bad bytes give `corrupt`, never a trap.

import LogFormat

/// Limits on variable-length fields, checked when encoding and decoding.
public enum TMLimits {
    /// Longest transaction or resource-manager description, in UTF-8 bytes.
    public static let maxDescription = 4096
    /// Longest enlistment recovery-information blob.
    public static let maxRecoveryInformation = 64 * 1024
    /// Longest stream name, actor or reason text.
    public static let maxShortText = 1024
    /// Most forced outcomes a checkpoint may carry (its audit section), and the largest effective
    /// ``TransactionManagerOptions/auditRetention``.
    public static let maxAuditEntries = 65536
}

/// One enlistment as logged: identity, owner, mask, recovery blob, and (in checkpoints) whether its
/// outcome was acknowledged.
struct LoggedEnlistment: Equatable, Sendable {
    var id: GUID
    var rm: GUID
    var mask: UInt32
    var acknowledged = false
    var recoveryInformation: [UInt8]
}

/// A durable resource manager as logged.
struct LoggedRM: Equatable, Sendable {
    var id: GUID
    var stream: String
    var description: String
}

/// A transaction that is still owed work, as held in a checkpoint.
struct LoggedTransaction: Equatable, Sendable {
    var id: GUID
    var outcome: Outcome
    var superior: Bool
    var description: String
    var enlistments: [LoggedEnlistment]
}

/// What a forced (heuristic) resolution did.
public enum ForcedAction: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    /// Force commit: participants are told to commit.
    case commit = 1
    /// Force rollback: participants are told to roll back.
    case rollback = 2
    /// Drop the transaction without telling its participants (they must be repaired by hand).
    case forget = 3
    public var description: String {
        switch self {
        case .commit: "commit"
        case .rollback: "rollback"
        case .forget: "forget"
        }
    }
}

/// A forced outcome as the TM retains it for audit (``TransactionManager/forcedOutcomes``): the fields of
/// its `forced` record and that record's LSN. Kept across checkpoints, which carry the most recent
/// ``TransactionManagerOptions/auditRetention`` of them (docs/format/tm-records.md, "checkpoint").
public struct ForcedOutcome: Equatable, Sendable {
    /// The LSN of the original `forced` record (it may since have been recycled).
    public var lsn: LSN
    /// The transaction whose outcome was forced.
    public var transaction: GUID
    /// Commit, rollback or forget.
    public var action: ForcedAction
    /// Wall-clock time of the decision, nanoseconds since 1970-01-01 UTC (may go backwards: order by LSN).
    public var unixNanos: UInt64
    /// Who forced it.
    public var actor: String
    /// Why (may be empty).
    public var reason: String

    /// A forced outcome with the fields of its `forced` record.
    public init(lsn: LSN, transaction: GUID, action: ForcedAction, unixNanos: UInt64, actor: String, reason: String) {
        self.lsn = lsn
        self.transaction = transaction
        self.action = action
        self.unixNanos = unixNanos
        self.actor = actor
        self.reason = reason
    }
}

/// The TM's snapshot in a restart area.
struct TMCheckpoint: Equatable, Sendable {
    var tm: GUID
    /// Records of the TM stream at or below this LSN are already reflected here (null: none).
    var coveredThrough: LSN
    var clock: UInt64
    var rms: [LoggedRM]
    var transactions: [LoggedTransaction]
    /// The most recent forced outcomes at or below `coveredThrough`, oldest first (the audit section).
    var forcedOutcomes: [ForcedOutcome] = []
}

/// The restart area of a checkpoint too large for one record: where its parts are, and how to check
/// them once reassembled (docs/format/tm-records.md, "Checkpoints in parts").
struct TMCheckpointIndex: Equatable, Sendable {
    var tm: GUID
    /// Length of the whole encoded `checkpoint` record the parts concatenate to.
    var totalLength: UInt64
    /// CRC32C of those bytes.
    var crc: UInt32
    /// The data records holding parts 0, 1, … in order.
    var parts: [LSN]
}

enum TMRecord: Equatable, Sendable {
    case rmRegistered(LoggedRM)
    /// Every vote is in and a superior must be told: the transaction is prepared (forced).
    case prepared(LoggedTransaction)
    /// The decision. Commit is forced; abort is not (presumed abort).
    case outcome(LoggedTransaction)
    /// Every outcome was acknowledged; the transaction is forgotten (not forced).
    case end(GUID)
    /// An outcome forced through the API or `txlog tm resolve`, with who, when and why (forced).
    case forced(tx: GUID, action: ForcedAction, unixNanos: UInt64, actor: String, reason: String)
    case checkpoint(TMCheckpoint)
    /// One slice of a checkpoint too large for one record (a data record, not forced by itself).
    case checkpointPart(index: UInt32, count: UInt32, bytes: [UInt8])
    /// The restart area naming the parts of a checkpoint too large for one record.
    case checkpointIndex(TMCheckpointIndex)

    enum Kind: UInt8 {
        case rmRegistered = 1, prepared = 2, outcome = 3, end = 4, forced = 5, checkpoint = 16, checkpointPart = 17,
            checkpointIndex = 18
    }

    /// Bytes a `checkpointPart` record adds to its slice: header, index, count and length.
    static let partOverhead = headerSize + 12
    /// Bytes of a `checkpointIndex` record before its LSN list.
    static let indexOverhead = headerSize + 16 + 8 + 4 + 4

    static let magic: UInt32 = 0x314D_544B  // "KTM1"

    /// Whether `bytes` starts with a TM record's magic (little-endian), i.e. claims to be one.
    static func hasMagic(_ bytes: [UInt8]) -> Bool {
        bytes.count >= 4 && UInt32(bytes[0]) | UInt32(bytes[1]) << 8 | UInt32(bytes[2]) << 16 | UInt32(bytes[3]) << 24 == magic
    }
    static let version: UInt8 = 1
    static let headerSize = 16

    var kind: Kind {
        switch self {
        case .rmRegistered: .rmRegistered
        case .prepared: .prepared
        case .outcome: .outcome
        case .end: .end
        case .forced: .forced
        case .checkpoint: .checkpoint
        case .checkpointPart: .checkpointPart
        case .checkpointIndex: .checkpointIndex
        }
    }

    // MARK: Encoding

    func encode(clock: UInt64) -> [UInt8] {
        var w = ByteWriter()
        w.u32(TMRecord.magic)
        w.u8(kind.rawValue)
        w.u8(TMRecord.version)
        w.u16(0)
        w.u64(clock)
        switch self {
        case .rmRegistered(let rm): w.rm(rm)
        case .prepared(let t), .outcome(let t): w.transaction(t, withAcks: false)
        case .end(let id): w.guid(id)
        case .forced(let tx, let action, let nanos, let actor, let reason):
            w.forced(tx: tx, action: action, unixNanos: nanos, actor: actor, reason: reason)
        case .checkpoint(let c):
            w.guid(c.tm)
            w.u64(c.coveredThrough.rawValue)
            w.u64(c.clock)
            w.u32(UInt32(c.rms.count))
            for rm in c.rms { w.rm(rm) }
            w.u32(UInt32(c.transactions.count))
            for t in c.transactions { w.transaction(t, withAcks: true) }
            w.u32(UInt32(c.forcedOutcomes.count))
            for f in c.forcedOutcomes {
                w.u64(f.lsn.rawValue)
                w.forced(tx: f.transaction, action: f.action, unixNanos: f.unixNanos, actor: f.actor, reason: f.reason)
            }
        case .checkpointPart(let index, let count, let bytes):
            w.u32(index)
            w.u32(count)
            w.blob(bytes)
        case .checkpointIndex(let x):
            w.guid(x.tm)
            w.u64(x.totalLength)
            w.u32(x.crc)
            w.u32(UInt32(x.parts.count))
            for lsn in x.parts { w.u64(lsn.rawValue) }
        }
        return w.bytes
    }

    // MARK: Decoding

    /// Decodes one record; returns it with the virtual clock from its header.
    static func decode(_ bytes: [UInt8]) throws -> (record: TMRecord, clock: UInt64) {
        try bytes.withUnsafeBytes { raw in
            var r = FieldReader(ByteReader(raw, what: "tm record"))
            guard try r.u32() == magic else { throw LogError(.corrupt, "tm record: bad magic") }
            let kindByte = try r.u8()
            let version = try r.u8()
            guard version == TMRecord.version else {
                throw LogError(.unsupportedVersion, "tm record: version \(version) (this build reads \(TMRecord.version))")
            }
            _ = try r.u16()
            let clock = try r.u64()
            guard let kind = Kind(rawValue: kindByte) else { throw LogError(.corrupt, "tm record: unknown kind \(kindByte)") }
            let record: TMRecord
            switch kind {
            case .rmRegistered: record = .rmRegistered(try r.rm())
            case .prepared:
                // Written only before the decision: a decided one would, replayed, decide the transaction
                // (docs/format/tm-records.md, "Transaction"). And only by a superior's prepare(): one
                // without the superior flag would, replayed, abort (presumed abort) a transaction that
                // is in doubt, whose superior may have committed it.
                let t = try r.transaction(withAcks: false)
                guard t.outcome == .undetermined else { throw LogError(.corrupt, "tm record: prepared record with outcome \(t.outcome)") }
                guard t.superior else { throw LogError(.corrupt, "tm record: prepared record without a superior") }
                record = .prepared(t)
            case .outcome:
                // Written only with the decision: an undetermined one would, replayed, undo it.
                let t = try r.transaction(withAcks: false)
                guard t.outcome != .undetermined else { throw LogError(.corrupt, "tm record: outcome record with no outcome") }
                record = .outcome(t)
            case .end: record = .end(try r.guid())
            case .forced:
                let f = try r.forced(lsn: .null)
                record = .forced(tx: f.transaction, action: f.action, unixNanos: f.unixNanos, actor: f.actor, reason: f.reason)
            case .checkpoint:
                let tm = try r.guid()
                let covered = LSN(rawValue: try r.u64())
                let clock = try r.u64()
                let rmCount = try r.count(minimumEntrySize: 16 + 8)
                var rms: [LoggedRM] = []
                for _ in 0..<rmCount { rms.append(try r.rm()) }
                let txCount = try r.count(minimumEntrySize: 16 + 2 + 4 + 4)
                var txs: [LoggedTransaction] = []
                for _ in 0..<txCount { txs.append(try r.transaction(withAcks: true)) }
                // The audit section; a checkpoint written before it existed ends here (no entries).
                let audit = r.remaining == 0 ? [] : try r.forcedOutcomes(coveredThrough: covered)
                record = .checkpoint(TMCheckpoint(
                    tm: tm, coveredThrough: covered, clock: clock, rms: rms, transactions: txs, forcedOutcomes: audit))
            case .checkpointPart:
                let index = try r.u32()
                let count = try r.u32()
                guard index < count else { throw LogError(.corrupt, "tm record: checkpoint part \(index) of \(count)") }
                record = .checkpointPart(index: index, count: count, bytes: try r.blob(Int(UInt32.max)))
            case .checkpointIndex:
                let tm = try r.guid()
                let total = try r.u64()
                let crc = try r.u32()
                let n = try r.count(minimumEntrySize: 8)
                guard n > 0 else { throw LogError(.corrupt, "tm record: checkpoint index with no parts") }
                var parts: [LSN] = []
                parts.reserveCapacity(n)
                for _ in 0..<n { parts.append(LSN(rawValue: try r.u64())) }
                record = .checkpointIndex(TMCheckpointIndex(tm: tm, totalLength: total, crc: crc, parts: parts))
            }
            guard r.offset == raw.count else { throw LogError(.corrupt, "tm record: \(raw.count - r.offset) trailing bytes") }
            return (record, clock)
        }
    }
}

// MARK: Field coding

extension ByteWriter {
    /// A 128-bit identifier: the high half, then the low half, each little-endian.
    public mutating func guid(_ g: GUID) {
        u64(g.high)
        u64(g.low)
    }
    mutating func blob(_ b: [UInt8]) { lengthPrefixed(b) }
    mutating func text(_ s: String) { lengthPrefixed(s.utf8) }
    /// The body of a `forced` record (also each audit entry of a checkpoint, after its LSN).
    mutating func forced(tx: GUID, action: ForcedAction, unixNanos: UInt64, actor: String, reason: String) {
        guid(tx)
        u8(action.rawValue)
        u64(unixNanos)
        text(actor)
        text(reason)
    }
    mutating func rm(_ rm: LoggedRM) {
        guid(rm.id)
        text(rm.stream)
        text(rm.description)
    }
    mutating func transaction(_ t: LoggedTransaction, withAcks: Bool) {
        guid(t.id)
        u8(t.outcome.rawValue)
        u8(t.superior ? 1 : 0)
        text(t.description)
        u32(UInt32(t.enlistments.count))
        for e in t.enlistments {
            guid(e.id)
            guid(e.rm)
            u32(e.mask)
            if withAcks { u8(e.acknowledged ? 1 : 0) }
            blob(e.recoveryInformation)
        }
    }
}

/// Reads fields in order; every length and count is checked against the bytes that remain.
struct FieldReader {
    let r: ByteReader
    var offset = 0

    init(_ r: ByteReader) { self.r = r }

    var remaining: Int { r.bytes.count - offset }

    mutating func u8() throws -> UInt8 { defer { offset += 1 }; return try r.u8(offset) }
    mutating func u16() throws -> UInt16 { defer { offset += 2 }; return try r.u16(offset) }
    mutating func u32() throws -> UInt32 { defer { offset += 4 }; return try r.u32(offset) }
    mutating func u64() throws -> UInt64 { defer { offset += 8 }; return try r.u64(offset) }
    mutating func guid() throws -> GUID { GUID(high: try u64(), low: try u64()) }

    mutating func blob(_ limit: Int) throws -> [UInt8] {
        let n = Int(try u32())
        guard n <= limit else { throw LogError(.corrupt, "\(r.what): field of \(n) bytes exceeds its limit of \(limit)") }
        let s = try r.slice(offset, n)
        offset += n
        return Array(s)
    }

    mutating func text(_ limit: Int) throws -> String {
        let b = try blob(limit)
        guard let s = String(validating: b, as: UTF8.self) else { throw LogError(.corrupt, "\(r.what): text is not UTF-8") }
        return s
    }

    /// A count of entries each at least `minimumEntrySize` bytes long, checked against what remains.
    mutating func count(minimumEntrySize: Int) throws -> Int {
        let n = Int(try u32())
        guard n <= remaining / minimumEntrySize else {
            throw LogError(.corrupt, "\(r.what): count \(n) cannot fit in the \(remaining) bytes that remain")
        }
        return n
    }

    /// The body of a `forced` record, as a ``ForcedOutcome`` at `lsn`.
    mutating func forced(lsn: LSN) throws -> ForcedOutcome {
        let tx = try guid()
        let a = try u8()
        guard let action = ForcedAction(rawValue: a) else { throw LogError(.corrupt, "\(r.what): unknown forced action \(a)") }
        let nanos = try u64()
        return ForcedOutcome(
            lsn: lsn, transaction: tx, action: action, unixNanos: nanos, actor: try text(TMLimits.maxShortText),
            reason: try text(TMLimits.maxShortText))
    }

    /// Smallest audit entry: LSN, then a `forced` body with empty texts.
    static let minimumAuditEntrySize = 8 + 16 + 1 + 8 + 4 + 4

    /// A checkpoint's audit section: a count, then entries (LSN and `forced` body) whose LSNs increase
    /// strictly and are valid and not above `coveredThrough`.
    mutating func forcedOutcomes(coveredThrough: LSN) throws -> [ForcedOutcome] {
        let n = try count(minimumEntrySize: Self.minimumAuditEntrySize)
        guard n <= TMLimits.maxAuditEntries else {
            throw LogError(.corrupt, "\(r.what): \(n) audit entries, more than the limit of \(TMLimits.maxAuditEntries)")
        }
        var out: [ForcedOutcome] = []
        out.reserveCapacity(n)
        for _ in 0..<n {
            let lsn = LSN(rawValue: try u64())
            guard lsn.isValid, lsn <= coveredThrough, lsn > (out.last?.lsn ?? .null) else {
                throw LogError(.corrupt, "\(r.what): audit entry at \(lsn) is out of order or above covered-through \(coveredThrough)")
            }
            out.append(try forced(lsn: lsn))
        }
        return out
    }

    mutating func rm() throws -> LoggedRM {
        LoggedRM(id: try guid(), stream: try text(TMLimits.maxShortText), description: try text(TMLimits.maxDescription))
    }

    mutating func transaction(withAcks: Bool) throws -> LoggedTransaction {
        let id = try guid()
        let o = try u8()
        guard let outcome = Outcome(rawValue: o) else { throw LogError(.corrupt, "\(r.what): unknown outcome \(o)") }
        let sup = try u8()
        guard sup <= 1 else { throw LogError(.corrupt, "\(r.what): bad superior flag \(sup)") }
        let description = try text(TMLimits.maxDescription)
        let n = try count(minimumEntrySize: 16 + 16 + 4 + (withAcks ? 1 : 0) + 4)
        var es: [LoggedEnlistment] = []
        es.reserveCapacity(n)
        for _ in 0..<n {
            let eid = try guid()
            let rm = try guid()
            let mask = try u32()
            var acked = false
            if withAcks {
                let a = try u8()
                guard a <= 1 else { throw LogError(.corrupt, "\(r.what): bad acknowledged flag \(a)") }
                acked = a == 1
            }
            let info = try blob(TMLimits.maxRecoveryInformation)
            es.append(LoggedEnlistment(id: eid, rm: rm, mask: mask, acknowledged: acked, recoveryInformation: info))
        }
        return LoggedTransaction(id: id, outcome: outcome, superior: sup == 1, description: description, enlistments: es)
    }
}
