// SortedKeyIndex: the ordered key index behind range scans (a list of sorted chunks of at most 512 keys).

import Testing
@testable import TransactionalKV

@Suite struct SortedKeyIndexTests {
    static func k(_ s: String) -> Key { Key(Array(s.utf8)) }
    static func names(_ keys: [Key]) -> [String] { keys.map { String(decoding: $0.bytes, as: UTF8.self) } }
    /// A fixed-width numeric key, so string order equals numeric order.
    static func nk(_ i: Int) -> Key { k("k" + String(repeating: "0", count: 6 - String(i).count) + String(i)) }

    /// The structural invariants: chunks non-empty, at most maxChunk keys, strictly ascending overall,
    /// and `count` equal to the number of keys.
    static func checkInvariants(_ idx: SortedKeyIndex, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(idx.chunks.allSatisfy { !$0.isEmpty && $0.count <= SortedKeyIndex.maxChunk }, sourceLocation: sourceLocation)
        let all = idx.all
        #expect(all.count == idx.count, sourceLocation: sourceLocation)
        #expect(zip(all, all.dropFirst()).allSatisfy { $0 < $1 }, "keys not strictly ascending", sourceLocation: sourceLocation)
    }

    @Test func keyOrderIsBytewiseWithShorterFirst() {
        #expect(Self.k("a") < Self.k("b"))
        #expect(Self.k("a") < Self.k("aa"))
        #expect(Self.k("") < Self.k("a"))
        #expect(Key([0x7F]) < Key([0x80]))  // unsigned bytes
        #expect(Key([0x00, 0xFF]) < Key([0x01]))
        #expect(!(Self.k("ab") < Self.k("ab")))
    }

    @Test func insertRemoveAndScan() {
        var idx = SortedKeyIndex()
        #expect(idx.keys(from: Self.k(""), to: nil, limit: .max).isEmpty)
        idx.remove(Self.k("nothing"))  // removing from an empty index is a no-op
        for s in ["m", "c", "x", "a", "q", "c", "m"] { idx.insert(Self.k(s)) }
        #expect(idx.count == 5)
        #expect(Self.names(idx.all) == ["a", "c", "m", "q", "x"])
        idx.remove(Self.k("m"))
        idx.remove(Self.k("zzz"))  // absent
        #expect(Self.names(idx.all) == ["a", "c", "q", "x"])
        #expect(idx.count == 4)
        Self.checkInvariants(idx)
        for s in ["a", "c", "q", "x"] { idx.remove(Self.k(s)) }
        #expect(idx.count == 0 && idx.chunks.isEmpty)
        idx.insert(Self.k("again"))
        #expect(Self.names(idx.all) == ["again"])
    }

    @Test func scanBoundsAreHalfOpenAndLimitsCut() {
        var idx = SortedKeyIndex()
        for s in ["apple", "apricot", "banana", "blueberry", "cherry", "date"] { idx.insert(Self.k(s)) }
        func scan(_ from: String, _ to: String?, _ limit: Int = .max) -> [String] {
            Self.names(idx.keys(from: Self.k(from), to: to.map(Self.k), limit: limit))
        }
        #expect(scan("", nil) == ["apple", "apricot", "banana", "blueberry", "cherry", "date"])
        #expect(scan("b", "c") == ["banana", "blueberry"])  // start inclusive, end exclusive
        #expect(scan("banana", "cherry") == ["banana", "blueberry"])
        #expect(scan("banana", "cherry\u{0}") == ["banana", "blueberry", "cherry"])
        #expect(scan("ap", "apr") == ["apple"])
        #expect(scan("a", nil, 3) == ["apple", "apricot", "banana"])
        #expect(scan("a", nil, 0) == [])
        #expect(scan("e", nil) == [])  // after the last key
        #expect(scan("c", "c") == [])  // empty range
        #expect(scan("d", "a") == [])  // inverted range
    }

    @Test func chunksSplitPast512Keys() {
        var idx = SortedKeyIndex()
        for i in 0...SortedKeyIndex.maxChunk { idx.insert(Self.nk(i)) }  // 513 keys, ascending
        #expect(idx.count == 513)
        #expect(idx.chunks.count == 2, "one chunk of 513 must split")
        #expect(idx.chunks.map(\.count) == [256, 257])
        Self.checkInvariants(idx)
        // Inserting into the middle of a full chunk splits that chunk, not the last.
        var mid = SortedKeyIndex()
        for i in stride(from: 0, to: 2048, by: 2) { mid.insert(Self.nk(i)) }
        for i in stride(from: 1, to: 2048, by: 2) { mid.insert(Self.nk(i)) }
        #expect(mid.count == 2048)
        #expect(mid.chunks.count > 4)
        Self.checkInvariants(mid)
        #expect(mid.all == (0..<2048).map(Self.nk))
        // A scan crossing chunk boundaries, with a limit.
        let got = mid.keys(from: Self.nk(500), to: Self.nk(1600), limit: 700)
        #expect(got == (500..<1200).map(Self.nk))
        // Emptying whole chunks removes them.
        for i in 0..<2048 where i % 7 != 0 { mid.remove(Self.nk(i)) }
        Self.checkInvariants(mid)
        #expect(mid.all == stride(from: 0, to: 2048, by: 7).map(Self.nk))
    }

    @Test func bulkInitBuildsHalfFullChunks() {
        let keys = (0..<1000).map(Self.nk)
        var idx = SortedKeyIndex(sortedUnique: keys)
        #expect(idx.count == 1000)
        #expect(idx.chunks.map(\.count) == [256, 256, 256, 232])
        Self.checkInvariants(idx)
        #expect(idx.keys(from: Self.nk(255), to: Self.nk(258), limit: .max) == [Self.nk(255), Self.nk(256), Self.nk(257)])
        idx.insert(Self.k("k000255x"))  // between two chunks: goes to the front of the second
        #expect(idx.keys(from: Self.nk(255), to: Self.nk(257), limit: .max) == [Self.nk(255), Self.k("k000255x"), Self.nk(256)])
        #expect(SortedKeyIndex(sortedUnique: []).chunks.isEmpty)
    }

    /// Random inserts, removes and scans against a reference sorted array.
    @Test(arguments: [1, 2, 3] as [UInt64])
    func randomOperationsMatchASortedArray(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        var idx = SortedKeyIndex()
        var reference: [Key] = []
        func randomKey() -> Key {
            // Short keys over a small alphabet: many duplicates, prefixes and boundary cases.
            let n = Int.random(in: 0...4, using: &rng)
            return Key((0..<n).map { _ in UInt8.random(in: 0x61...0x66, using: &rng) })
        }
        func refInsert(_ key: Key) {
            let p = reference.firstIndex { !($0 < key) } ?? reference.count
            if p == reference.count || reference[p] != key { reference.insert(key, at: p) }
        }
        for step in 0..<6000 {
            let op = Int.random(in: 0..<10, using: &rng)
            let key = randomKey()
            if op < 6 {
                idx.insert(key)
                refInsert(key)
            } else if op < 9 {
                idx.remove(key)
                reference.removeAll { $0 == key }
            } else {
                let end: Key? = Bool.random(using: &rng) ? randomKey() : nil
                let limit = Bool.random(using: &rng) ? Int.random(in: 0...50, using: &rng) : .max
                let expected = Array(reference.filter { x in !(x < key) && (end.map { x < $0 } ?? true) }.prefix(limit))
                #expect(idx.keys(from: key, to: end, limit: limit) == expected, "step \(step)")
            }
            if step % 500 == 0 { Self.checkInvariants(idx) }
        }
        #expect(idx.all == reference)
        #expect(idx.count == reference.count)
        // Grow well past one chunk with random 8-byte keys, then shrink back.
        for _ in 0..<3000 {
            let key = Key((0..<8).map { _ in UInt8.random(in: 0...255, using: &rng) })
            idx.insert(key)
            refInsert(key)
        }
        Self.checkInvariants(idx)
        #expect(idx.chunks.count > 5)
        #expect(idx.all == reference)
        for key in reference.shuffled(using: &rng).prefix(2500) {
            idx.remove(key)
            reference.removeAll { $0 == key }
        }
        Self.checkInvariants(idx)
        #expect(idx.all == reference)
    }
}
