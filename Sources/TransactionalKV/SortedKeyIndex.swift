// The ordered key index behind range scans: a list of sorted chunks (each at most `maxChunk` keys),
// so an insert or delete moves at most one chunk's worth of references, and a scan walks chunks in order.

#if canImport(Glibc)
import Glibc
#endif

/// A byte-string key ordered lexicographically (shorter first on a common prefix). Hashing and
/// comparison work on the raw bytes at once (memcmp, one hasher call), not element by element.
struct Key: Hashable, Comparable, Sendable {
    var bytes: [UInt8]
    init(_ bytes: [UInt8]) { self.bytes = bytes }

    func hash(into hasher: inout Hasher) {
        bytes.withUnsafeBytes { hasher.combine(bytes: $0) }
    }

    static func == (a: Key, b: Key) -> Bool {
        a.bytes.count == b.bytes.count && compare(a.bytes, b.bytes) == 0
    }

    static func < (a: Key, b: Key) -> Bool {
        let c = compare(a.bytes, b.bytes)
        return c < 0 || (c == 0 && a.bytes.count < b.bytes.count)
    }

    /// memcmp over the common prefix.
    @inline(__always)
    private static func compare(_ a: [UInt8], _ b: [UInt8]) -> Int32 {
        let n = min(a.count, b.count)
        guard n > 0 else { return 0 }
        return a.withUnsafeBytes { pa in b.withUnsafeBytes { pb in memcmp(pa.baseAddress!, pb.baseAddress!, n) } }
    }
}

struct SortedKeyIndex: Sendable {
    static let maxChunk = 512
    private(set) var chunks: [[Key]] = []
    private(set) var count = 0

    /// Builds the index from keys already in ascending order, without duplicates.
    init(sortedUnique keys: [Key] = []) {
        var i = 0
        while i < keys.count {
            let end = min(keys.count, i + SortedKeyIndex.maxChunk / 2)
            chunks.append(Array(keys[i..<end]))
            i = end
        }
        count = keys.count
    }

    /// The chunk that holds `key` or where it would go.
    private func chunkIndex(for key: Key) -> Int {
        var lo = 0, hi = chunks.count - 1
        guard hi > 0 else { return 0 }
        while lo < hi {
            let mid = (lo + hi) / 2
            if let last = chunks[mid].last, last < key { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    private static func lowerBound(_ a: [Key], _ key: Key) -> Int {
        var lo = 0, hi = a.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if a[mid] < key { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    /// Inserts `key` if absent.
    mutating func insert(_ key: Key) {
        if chunks.isEmpty {
            chunks = [[key]]
            count = 1
            return
        }
        let c = chunkIndex(for: key)
        let p = SortedKeyIndex.lowerBound(chunks[c], key)
        if p < chunks[c].count, chunks[c][p] == key { return }
        chunks[c].insert(key, at: p)
        count += 1
        if chunks[c].count > SortedKeyIndex.maxChunk {
            let tail = Array(chunks[c][(SortedKeyIndex.maxChunk / 2)...])
            chunks[c].removeSubrange((SortedKeyIndex.maxChunk / 2)...)
            chunks.insert(tail, at: c + 1)
        }
    }

    /// Removes `key` if present.
    mutating func remove(_ key: Key) {
        guard !chunks.isEmpty else { return }
        let c = chunkIndex(for: key)
        let p = SortedKeyIndex.lowerBound(chunks[c], key)
        guard p < chunks[c].count, chunks[c][p] == key else { return }
        chunks[c].remove(at: p)
        count -= 1
        if chunks[c].isEmpty { chunks.remove(at: c) }
    }

    /// Keys in `[start, end)` in ascending order (`end` nil: to the last key), at most `limit`.
    func keys(from start: Key, to end: Key?, limit: Int) -> [Key] {
        var out: [Key] = []
        guard !chunks.isEmpty, limit > 0 else { return out }
        var c = chunkIndex(for: start)
        var p = SortedKeyIndex.lowerBound(chunks[c], start)
        while c < chunks.count {
            let chunk = chunks[c]
            while p < chunk.count {
                let k = chunk[p]
                if let end, !(k < end) { return out }
                out.append(k)
                if out.count >= limit { return out }
                p += 1
            }
            c += 1
            p = 0
        }
        return out
    }

    /// Every key in order.
    var all: [Key] { chunks.flatMap { $0 } }
}
