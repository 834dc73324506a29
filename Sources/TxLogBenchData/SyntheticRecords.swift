// Synthetic transaction-log records, shared by `txlog bench` and the Benchmarks package so both compress
// the same kind of data. Deterministic, shaped like a
// database's redo/undo log: growing ids and timestamps, table and column names from a small vocabulary,
// keys from a hot set, small integers, short text, and some random bytes such as hashes.

/// An immutable buffer of synthetic records that bench threads slice fixed-size records from.
public final class Corpus: @unchecked Sendable {
    public let bytes: UnsafeRawBufferPointer

    public init(byteCount: Int, seed: UInt64 = 0x7458_4C6F_6721) {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: byteCount, alignment: 64)
        var generator = SyntheticRecords(seed: seed)
        var filled = 0
        while filled < byteCount {
            filled += generator.write(into: UnsafeMutableRawBufferPointer(rebasing: buffer[filled...]))
        }
        bytes = UnsafeRawBufferPointer(buffer)
    }

    deinit { bytes.deallocate() }

    /// The `index`th record of `size` bytes: consecutive slices of the corpus (wrapping around), so a run
    /// of records reads memory sequentially, as an application appending fresh data would, and a block
    /// of them compresses like the corpus itself.
    @inline(__always) public func record(_ index: Int, size: Int) -> UnsafeRawBufferPointer {
        let n = size > 0 ? max(1, bytes.count / size) : 1
        let offset = (index % n) * size
        return UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + min(size, bytes.count))])
    }

    /// A copy of the whole corpus.
    public var array: [UInt8] { Array(bytes) }
}

/// Writes one synthetic log record at a time.
public struct SyntheticRecords {
    private var state: UInt64
    private var txid: UInt64 = 1_000_000
    private var clock: UInt64 = 1_700_000_000_000_000_000

    static let tables = ["accounts", "orders", "order_items", "customers", "inventory", "payments", "audit", "sessions"]
    static let columns = [
        "balance", "status", "quantity", "price", "updated_at", "email", "name", "note", "currency", "sku",
        "region", "owner", "version", "flags", "total", "address",
    ]
    static let words = [
        "pending", "shipped", "paid", "refund", "EUR", "USD", "express", "standard", "gift", "returned",
        "berlin", "paris", "oslo", "lisbon", "warehouse", "priority", "customer", "requested", "change", "of",
    ]
    static let ops = ["INSERT", "UPDATE", "DELETE", "COMMIT"]

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }

    /// Writes one record (about 60 to 400 bytes) into `out`, truncated if it does not fit; returns its length.
    public mutating func write(into out: UnsafeMutableRawBufferPointer) -> Int {
        var record: [UInt8] = []
        record.reserveCapacity(512)
        func le(_ v: UInt64, _ n: Int) { for i in 0..<n { record.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) } }
        func text(_ s: String) { record.append(UInt8(s.utf8.count)); record.append(contentsOf: s.utf8) }
        txid &+= UInt64(1 + below(3))
        clock &+= UInt64(below(50_000))
        le(txid, 8)
        le(clock, 8)
        let op = below(10) == 0 ? 3 : below(3)
        text(Self.ops[op])
        if op != 3 {
            text(Self.tables[below(Self.tables.count)])
            // Keys: a hot set most of the time, like real workloads.
            text("k-\(below(4) == 0 ? 100_000 + below(900_000) : 100_000 + below(2_000))")
            for _ in 0..<(1 + below(4)) {
                text(Self.columns[below(Self.columns.count)])
                switch below(12) {
                case 0...4: le(UInt64(below(100_000)), 8)
                case 5...7: text((0..<(2 + below(6))).map { _ in Self.words[below(Self.words.count)] }.joined(separator: " "))
                case 8: le(next(), 8); le(next(), 8)  // a hash or UUID
                default: text("\(below(10_000)).\(below(100))")
                }
            }
        }
        le(next() & 0xFFFF_FFFF, 4)
        let n = min(record.count, out.count)
        record.withUnsafeBytes { out.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        return n
    }
}
