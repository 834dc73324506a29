// The transactions of the churn workload (`txlog workload churn`) and the model a checker replays them
// into. Client `c` runs transactions 1, 2, 3, ... on keys of its own (prefix `cNN:`) in two stores; the
// n-th one is a pure function of (seed, c, n), so after a crash the exact expected contents of both
// stores follow from how far each client got (its `seq` keys). Transactions put, overwrite and delete
// keys (also keys written in the same transaction, keys that do not exist, and delete-then-put), some
// span many blocks of the log's tiny blocks, and many touch both stores (two-phase commit).

import Foundation

/// What a put writes: its bytes follow from these numbers, so a model holds no value bytes.
struct ChurnValue: Equatable, Sendable {
    var client, n, op, length: Int
    /// `op` -1: a `seq` key's value, the decimal transaction number.
    static func seq(client: Int, n: Int) -> ChurnValue { ChurnValue(client: client, n: n, op: -1, length: 0) }

    var bytes: [UInt8] {
        if op < 0 { return Array(String(n).utf8) }
        var out = Array("\(client).\(n).\(op);".utf8)
        out.reserveCapacity(max(length, out.count))
        var x = UInt64(truncatingIfNeeded: client &* 131 &+ n &* 31 &+ op)
        while out.count < length {
            x = x &* 6364136223846793005 &+ 1442695040888963407
            out.append(UInt8(truncatingIfNeeded: x >> 59) &+ 97)  // a few letters: lz4 compresses some of it
        }
        return out
    }
}

/// One write: a put (value present) or a delete.
struct ChurnWrite: Sendable {
    var store: Int
    var key: String
    var value: ChurnValue?
}

/// The n-th transaction of a client.
struct ChurnTransaction: Sendable {
    var client, n: Int
    /// In the order the client issues them (a later write of a key wins).
    var writes: [ChurnWrite]
    /// Whether it scans its keys in each store it touches before committing (checked against the model).
    var scans: Bool
    /// Whether the client first tries a write set larger than the log's largest record (in both stores),
    /// which must fail and leave nothing behind.
    var oversizeFirst: Bool

    static let keys = 12, missingKeys = 4, bulkKeys = 400

    static func prefix(_ client: Int) -> String { String(format: "c%02d:", client) }
    static func seqKey(_ client: Int) -> String { prefix(client) + "seq" }
    /// Written only by the oversize attempts, which never commit: it must never exist.
    static func neverKey(_ client: Int) -> String { prefix(client) + "x" }
    static func bulkKey(_ client: Int, _ i: Int) -> String { prefix(client) + String(format: "b%03d", i) }
    /// Every key a client may touch: `k00`... (written and deleted), `b000`... (written and deleted in runs
    /// of up to 200), `z00`... (only ever deleted), `seq`, `x`.
    static func universe(_ client: Int) -> [String] {
        (0..<keys).map { prefix(client) + String(format: "k%02d", $0) } + (0..<bulkKeys).map { bulkKey(client, $0) }
            + (0..<missingKeys).map { prefix(client) + String(format: "z%02d", $0) } + [seqKey(client), neverKey(client)]
    }

    /// The transaction, from the seed alone. Some values span several of the log's 1 KiB blocks, one
    /// transaction in 40 writes 60-200 KB in each store it touches, and one in 30 puts or deletes a run of
    /// up to 200 keys in each.
    static func make(seed: UInt64, client: Int, n: Int) -> ChurnTransaction {
        var rng = SplitMix64(seed: seed ^ (UInt64(truncatingIfNeeded: client) &* 0x9E37_79B9_7F4A_7C15) ^ UInt64(truncatingIfNeeded: n) &* 0xC2B2_AE3D_27D4_EB4F)
        let shape = rng.below(100)
        let stores = shape < 40 ? [0] : shape < 60 ? [1] : [0, 1]
        let huge = rng.below(40) == 0
        var writes: [ChurnWrite] = []
        var op = 0
        func put(_ s: Int, _ key: String, _ length: Int) {
            writes.append(ChurnWrite(store: s, key: key, value: ChurnValue(client: client, n: n, op: op, length: length)))
            op += 1
        }
        func delete(_ s: Int, _ key: String) { writes.append(ChurnWrite(store: s, key: key, value: nil)) }
        let p = prefix(client)
        for s in stores {
            for _ in 0..<(1 + rng.below(6)) {
                let key = p + String(format: "k%02d", rng.below(keys))
                switch rng.below(10) {
                case 0...3: put(s, key, 1 + rng.below(rng.below(8) == 0 ? 6000 : 300))
                case 4, 5: delete(s, key)
                case 6: delete(s, p + String(format: "z%02d", rng.below(missingKeys)))
                case 7: put(s, key, 1 + rng.below(200)); delete(s, key)
                case 8: delete(s, key); put(s, key, 1 + rng.below(200))
                default: put(s, key, 1 + rng.below(100)); put(s, key, 1 + rng.below(100))
                }
            }
            if rng.below(30) == 0 {
                // A run of up to 200 consecutive keys, all put or all deleted: the stores hold thousands of
                // keys, over several chunks of the sorted index.
                let first = rng.below(bulkKeys), end = min(bulkKeys, first + 1 + rng.below(200))
                let puts = rng.below(2) == 0
                for i in first..<end {
                    if puts { put(s, bulkKey(client, i), 1 + rng.below(40)) } else { delete(s, bulkKey(client, i)) }
                }
            }
            if huge {
                // A write set of 60-200 KB: many 1 KiB blocks, under a 512 KiB container's largest record.
                for _ in 0..<(2 + rng.below(3)) { put(s, p + String(format: "k%02d", rng.below(keys)), 30_000 + rng.below(20_000)) }
            }
            writes.append(ChurnWrite(store: s, key: seqKey(client), value: .seq(client: client, n: n)))
        }
        return ChurnTransaction(client: client, n: n, writes: writes, scans: rng.below(4) == 0, oversizeFirst: rng.below(60) == 0)
    }
}

/// The contents a client's transactions 1...n leave in the two stores.
struct ChurnModel: Sendable {
    var stores: [[String: ChurnValue]] = [[:], [:]]

    mutating func apply(_ t: ChurnTransaction) {
        for w in t.writes { stores[w.store][w.key] = w.value }
    }

    /// Client `client`'s keys after its transactions 1...`through`.
    static func replay(seed: UInt64, client: Int, through: Int) -> ChurnModel {
        var m = ChurnModel()
        var n = 1
        while n <= through {
            m.apply(ChurnTransaction.make(seed: seed, client: client, n: n))
            n += 1
        }
        return m
    }
}

/// A small, fast, seedable generator (SplitMix64): the workload must replay exactly.
struct SplitMix64: Sendable {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// A number in 0..<bound (bound > 0).
    mutating func below(_ bound: Int) -> Int { Int(truncatingIfNeeded: next() % UInt64(bound)) }
}
