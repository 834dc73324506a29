// KVRecord and KVSnapshotFile codecs: round trips, and total decoding (every truncation and random
// corruption throws LogError and never traps; structural errors behind a valid CRC are `corrupt`).

import Foundation
import LogStore
import Testing
import TransactionManager
@testable import TransactionalKV

@Suite struct KVRecordCodecTests {
    static let t1 = GUID(high: 0x0123_4567_89AB_CDEF, low: 0x8877_6655_4433_2211)
    static let t2 = GUID(high: 1, low: 2)

    static let samples: [KVRecord] = [
        .prepare(t1, [KVWrite(key: b("alice"), value: b("100")), KVWrite(key: b("bob"), value: nil)]),
        .prepare(t2, []),
        .prepare(t2, [KVWrite(key: [], value: []), KVWrite(key: [0, 0xFF], value: [UInt8](repeating: 7, count: 3000))]),
        .commit(t1),
        .abort(t2),
        .commitOnePhase(t1, [KVWrite(key: b("k"), value: b("v"))]),
        .checkpoint(KVCheckpoint(store: t2, snapshotFile: "kv-x-3.snap", coveredThrough: LSN(rawValue: 0x0000_0002_0000_2001), pending: [])),
        .checkpoint(KVCheckpoint(
            store: t1, snapshotFile: "kv-\(t1)-12.snap", coveredThrough: LSN(rawValue: 77),
            pending: [(id: t2, writes: [KVWrite(key: b("p"), value: b("q"))]), (id: t1, writes: [])])),
    ]

    @Test func roundTripsEveryKind() throws {
        for r in Self.samples {
            let bytes = r.encode()
            #expect(try KVRecord.decode(bytes) == r)
            #expect(Array(bytes[0..<4]) == b("KVR1"))
            #expect(bytes[5] == 1 && bytes[6] == 0 && bytes[7] == 0)
        }
        #expect(KVRecord.commit(Self.t1).encode().count == 24)
        #expect(KVRecord.prepare(Self.t1, []).encode().count == 28)
        let kinds = Self.samples.map { $0.encode()[4] }
        #expect(Set(kinds) == [1, 2, 3, 4, 16])
    }

    @Test func everyTruncationThrows() {
        for r in Self.samples {
            let bytes = r.encode()
            for n in 0..<bytes.count {
                #expect(throws: LogError.self, "\(r) cut to \(n) bytes") { try KVRecord.decode(Array(bytes[0..<n])) }
            }
        }
    }

    @Test func trailingBytesAreCorrupt() async {
        for r in Self.samples {
            expectLogError(.corrupt) { _ = try KVRecord.decode(r.encode() + [0]) }
        }
    }

    /// Random byte flips either decode to some record or throw LogError; nothing traps or throws another type.
    @Test func randomFlipsNeverTrap() {
        var rng = SplitMix64(seed: 42)
        var threw = 0, decoded = 0
        for round in 0..<4000 {
            var bytes = Self.samples[round % Self.samples.count].encode()
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
            do {
                let r = try KVRecord.decode(bytes)
                // It re-encodes to the same bytes, except the reserved u16 at 6, which is not checked.
                let again = r.encode()
                #expect(Array(again[0..<6]) == Array(bytes[0..<6]) && Array(again[8...]) == Array(bytes[8...]))
                decoded += 1
            } catch is LogError {
                threw += 1
            } catch {
                Issue.record("non-LogError \(error)")
            }
        }
        #expect(threw > 1000 && decoded > 100)
        // Pure noise of every small length.
        for n in 0..<200 {
            let noise = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
            _ = try? KVRecord.decode(noise)
        }
    }

    @Test func structuralErrors() async throws {
        let good = KVRecord.prepare(Self.t1, [KVWrite(key: b("alice"), value: b("100"))]).encode()
        func patched(_ at: Int, _ bytes: [UInt8]) -> [UInt8] {
            var out = good
            out.replaceSubrange(at..<at + bytes.count, with: bytes)
            return out
        }
        expectLogError(.corrupt, "magic") { _ = try KVRecord.decode(patched(0, b("KVR2"))) }
        expectLogError(.unsupportedVersion, "version") { _ = try KVRecord.decode(patched(5, [2])) }
        expectLogError(.corrupt, "kind 0") { _ = try KVRecord.decode(patched(4, [0])) }
        expectLogError(.corrupt, "kind 5") { _ = try KVRecord.decode(patched(4, [5])) }
        expectLogError(.corrupt, "write count too large") { _ = try KVRecord.decode(patched(24, [0xFF, 0xFF, 0xFF, 0x7F])) }
        expectLogError(.corrupt, "key length past the end") { _ = try KVRecord.decode(patched(28, [0xFF, 0, 0, 0])) }
        expectLogError(.corrupt, "bad write flag") { _ = try KVRecord.decode(patched(37, [2])) }
        // A key longer than maxKey is refused even when the bytes are there.
        let longKey = KVRecord.prepare(Self.t1, [KVWrite(key: [UInt8](repeating: 1, count: KVRecord.maxKey + 1), value: nil)]).encode()
        expectLogError(.corrupt, "key over maxKey") { _ = try KVRecord.decode(longKey) }
        let maxKey = KVRecord.prepare(Self.t1, [KVWrite(key: [UInt8](repeating: 1, count: KVRecord.maxKey), value: nil)])
        #expect(try KVRecord.decode(maxKey.encode()) == maxKey)
        // A checkpoint whose file name is not UTF-8.
        var cp = KVRecord.checkpoint(KVCheckpoint(store: Self.t1, snapshotFile: "ab", coveredThrough: .null, pending: [])).encode()
        cp[28] = 0xFF
        expectLogError(.corrupt, "file name") { _ = try KVRecord.decode(cp) }
        // A checkpoint must name one plain file in the store's directory: recovery opens it.
        // The first byte is a "." also when a combining mark follows it (one Swift character, not ".").
        for name in ["", ".", "..", "../kv-x-1.snap", "/etc/passwd", "a/b.snap", ".hidden.snap", "kv\u{0}.snap", ".\u{301}", ".\u{301}.snap"] {
            let bad = KVRecord.checkpoint(KVCheckpoint(store: Self.t1, snapshotFile: name, coveredThrough: .null, pending: [])).encode()
            expectLogError(.corrupt, "snapshot name \(name.debugDescription)") { _ = try KVRecord.decode(bad) }
        }
    }
}

@Suite struct KVSnapshotCodecTests {
    static let store = GUID(high: 0xA, low: 0xB)
    static let io = PosixFileIO()

    static func entries(_ pairs: [(String, String)]) -> [(Key, [UInt8])] { pairs.map { (Key(b($0.0)), b($0.1)) } }

    /// Writes a snapshot with the real writer and returns its bytes.
    static func snapshotBytes(_ dir: String, _ e: [(Key, [UInt8])], covered: LSN = LSN(rawValue: 99)) throws -> [UInt8] {
        try KVSnapshotFile.write(io: io, directory: dir, name: "s.snap", store: store, coveredThrough: covered, entries: e)
        return [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/s.snap")))
    }

    static func read(_ dir: String, _ bytes: [UInt8]) throws -> (coveredThrough: LSN, entries: [(Key, [UInt8])]) {
        try Data(bytes).write(to: URL(fileURLWithPath: dir + "/m.snap"))
        return try KVSnapshotFile.read(io: io, path: dir + "/m.snap", store: store)
    }

    /// The same bytes with the CRC32C trailer recomputed (to reach the structural checks behind it).
    static func withFixedCRC(_ bytes: [UInt8]) -> [UInt8] {
        var out = Array(bytes.dropLast(4))
        let crc = CRC32C.checksum(out)
        out += [UInt8(crc & 0xFF), UInt8(crc >> 8 & 0xFF), UInt8(crc >> 16 & 0xFF), UInt8(crc >> 24)]
        return out
    }

    @Test func roundTrip() async throws {
        let dir = try makeTempDirectory("snapcodec")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for e in [[], Self.entries([("a", "1"), ("b", ""), ("bb", "22")]), (0..<3000).map { (Key(b(String(format: "key%05d", $0))), b("v\($0)")) }] {
            let bytes = try Self.snapshotBytes(dir, e)
            let back = try KVSnapshotFile.read(io: Self.io, path: dir + "/s.snap", store: Self.store)
            #expect(back.coveredThrough == LSN(rawValue: 99))
            #expect(back.entries.map(\.0) == e.map(\.0))
            #expect(back.entries.map(\.1) == e.map(\.1))
            #expect(bytes.count == 44 + e.reduce(0) { $0 + 8 + $1.0.bytes.count + $1.1.count })
        }
        #expect(!FileManager.default.fileExists(atPath: dir + "/s.snap.tmp"), "the temporary file is renamed away")
        // A snapshot of another store is refused.
        expectLogError(.corrupt) { _ = try KVSnapshotFile.read(io: Self.io, path: dir + "/s.snap", store: GUID(high: 1, low: 1)) }
    }

    @Test func everyTruncationAndRandomFlipThrows() throws {
        let dir = try makeTempDirectory("snaptrunc")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let bytes = try Self.snapshotBytes(dir, Self.entries([("apple", "red"), ("banana", "yellow"), ("cherry", "")]))
        for n in 0..<bytes.count {
            #expect(throws: LogError.self, "cut to \(n)") { _ = try Self.read(dir, Array(bytes[0..<n])) }
        }
        var rng = SplitMix64(seed: 7)
        for i in 0..<300 {
            var m = bytes
            let at = Int.random(in: 0..<m.count, using: &rng)
            m[at] ^= UInt8.random(in: 1...255, using: &rng)
            #expect(throws: LogError.self, "flip at \(at)") { _ = try Self.read(dir, m) }
            // The same flip behind a valid CRC: the structural checks must catch it or decode cleanly.
            if at < m.count - 4 {
                do {
                    let r = try Self.read(dir, Self.withFixedCRC(m))
                    #expect(zip(r.entries, r.entries.dropFirst()).allSatisfy { $0.0 < $1.0 }, "round \(i)")
                } catch is LogError {
                } catch { Issue.record("non-LogError \(error)") }
            }
        }
    }

    @Test func badCRCAndOrderAreCorrupt() async throws {
        let dir = try makeTempDirectory("snapbad")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let good = try Self.snapshotBytes(dir, Self.entries([("a", "1"), ("b", "2")]))
        var badCRC = good
        badCRC[badCRC.count - 1] ^= 0x01
        expectLogError(.corrupt, "bad CRC") { _ = try Self.read(dir, badCRC) }
        // Out of order and duplicate keys, each with a correct CRC (KVSnapshotFile.write does not check order).
        for pairs in [[("b", "2"), ("a", "1")], [("a", "1"), ("a", "2")]] {
            let bad = try Self.snapshotBytes(dir, Self.entries(pairs))
            expectLogError(.corrupt, "order \(pairs)") { _ = try Self.read(dir, bad) }
        }
        // Header errors behind a valid CRC.
        var m = good
        m[4] = 2
        expectLogError(.unsupportedVersion, "version") { _ = try Self.read(dir, Self.withFixedCRC(m)) }
        m = good
        m[0] = 0
        expectLogError(.corrupt, "magic") { _ = try Self.read(dir, Self.withFixedCRC(m)) }
        m = good
        m[32] = 3  // count 3, two entries
        expectLogError(.corrupt, "count") { _ = try Self.read(dir, Self.withFixedCRC(m)) }
        m = good
        m[39] = 0x80  // count of 2^63
        expectLogError(.corrupt, "huge count") { _ = try Self.read(dir, Self.withFixedCRC(m)) }
        m = good
        m[32] = 1  // count 1: the second entry is trailing bytes
        expectLogError(.corrupt, "trailing") { _ = try Self.read(dir, Self.withFixedCRC(m)) }
        // A missing file is not-found or io, never a trap.
        #expect(throws: LogError.self) { _ = try KVSnapshotFile.read(io: Self.io, path: dir + "/absent.snap", store: Self.store) }
    }

    /// A count the entries do not bear out, behind a valid CRC, reserves nothing: the reader reserved a
    /// dictionary slot per claimed entry (up to a ninth of the file's size in entries, each slot many
    /// times an entry's 8 bytes) before the parse failed. Also a good file reserves exactly its count.
    @Test func aCountTheEntriesDoNotBearOutReservesNothing() async throws {
        let dir = try makeTempDirectory("snapcount")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let good = try Self.snapshotBytes(dir, [(Key(b("k")), [UInt8](repeating: 1, count: 8000))])
        var reserved: [Int] = []
        _ = try KVSnapshotFile.parse(good, path: "good", store: Self.store, reserve: { reserved.append($0) }, each: { _, _ in })
        #expect(reserved == [1])
        // The largest count the check on the remaining bytes lets through: (size − 44) / 8, 1001 here.
        var m = good
        let claimed = (good.count - 44) / 8
        for i in 0..<8 { m[32 + i] = UInt8(truncatingIfNeeded: UInt64(claimed) >> (8 * UInt64(i))) }
        reserved = []
        var seen = 0
        expectLogError(.corrupt) {
            _ = try KVSnapshotFile.parse(Self.withFixedCRC(m), path: "m", store: Self.store, reserve: { reserved.append($0) }, each: { _, _ in seen += 1 })
        }
        #expect(claimed > 1000)
        #expect(reserved.isEmpty, "reserved \(reserved) entries for a file holding one")
        #expect(seen == 0, "nothing handed on from a file that does not parse")
    }

    /// A snapshot whose size no buffer can hold (a sparse file here: a damaged file system can report any
    /// size) is an error before it is read into one buffer, whose allocation trapped.
    @Test func aSizeNoBufferCanHoldIsAnError() throws {
        let dir = try makeTempDirectory("snaphuge")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try Self.snapshotBytes(dir, Self.entries([("a", "1")]))
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: dir + "/s.snap"))
        // 8 TiB; a file system that cannot hold a file that large leaves the check out.
        let sparse = (try? handle.truncate(atOffset: 1 << 43)) != nil
        try handle.close()
        guard sparse else { return }
        let error = #expect(throws: LogError.self) { _ = try KVSnapshotFile.read(io: Self.io, path: dir + "/s.snap", store: Self.store) }
        // More than the machine's memory: io, ENOMEM, whatever the kernel's overcommit mode.
        #expect(error?.code == .io && error?.errno == ENOMEM, "\(String(describing: error))")
    }
}
