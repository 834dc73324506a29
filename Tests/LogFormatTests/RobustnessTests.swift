// Total parsers: every decoder maps any byte string to a value or a typed error, and never traps.
// Random bytes mostly stop at the magic, so most inputs are mutations of valid encodings, half of them
// with the checksum recomputed so that the checks behind the CRC are reached too.

import Testing
@testable import LogFormat

/// Produces random and mutated byte strings from valid seeds.
struct Mutator {
    var g: SplitMix64
    let seeds: [[UInt8]]
    let reseal: (inout [UInt8]) -> Void

    static let interesting: [UInt64] = [
        0, 1, 2, 7, 8, 0x7F, 0x80, 0xFF, 0x100, 511, 512, 513, 1023, 1024, 4095, 4096, 0x7FFF, 0x8000, 0xFFFF,
        0x1_0000, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 0x1_0000_0000, 0x7FFF_FFFF_FFFF_FFFF, .max, 64 << 20, 1 << 20,
    ]

    mutating func below(_ n: Int) -> Int { n <= 0 ? 0 : Int(g.next() % UInt64(n)) }

    mutating func next() -> [UInt8] {
        var seed = seeds[below(seeds.count)]
        switch below(8) {
        case 0:
            return g.bytes(below(1200))
        case 1:
            // Random bytes behind a valid-looking start (magic, version, sizes).
            let keep = below(min(seed.count, 140) + 1)
            return Array(seed[0..<keep]) + g.bytes(below(600))
        case 2:
            return Array(seed[0..<below(seed.count + 1)])
        case 3:
            for _ in 0...below(8) { seed[below(seed.count)] ^= UInt8(truncatingIfNeeded: g.next() | 1) }
            return seed
        case 4:
            // Insert or delete a few bytes.
            let at = below(seed.count + 1)
            if g.next() & 1 == 0 {
                seed.insert(contentsOf: g.bytes(1 + below(16)), at: at)
            } else {
                seed.removeSubrange(at..<min(seed.count, at + 1 + below(16)))
            }
            return seed
        default:
            // Overwrite a field with an interesting value, then fix the checksum.
            for _ in 0...below(3) {
                let width = [1, 2, 4, 8][below(4)]
                guard seed.count >= width else { break }
                let at = below(seed.count - width + 1)
                let value = g.next() & 3 == 0 ? g.next() : Self.interesting[below(Self.interesting.count)]
                for i in 0..<width { seed[at + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
            }
            reseal(&seed)
            return seed
        }
    }
}

@Suite struct RobustnessTests {
    static let iterations = 20_000

    /// Tallies what happened, so a broken mutator (everything rejected at the magic) fails the test.
    struct Tally {
        var ok = 0
        var codes: [LogError.Code: Int] = [:]
    }

    static func run<T>(_ input: [UInt8], _ tally: inout Tally, _ decode: (UnsafeRawBufferPointer) throws -> T) -> T? {
        do {
            let value = try input.withUnsafeBytes { try decode($0) }
            tally.ok += 1
            return value
        } catch let e as LogError {
            tally.codes[e.code, default: 0] += 1
        } catch {
            Issue.record("untyped error \(type(of: error)): \(error)")
        }
        return nil
    }

    static var blockSeeds: [[UInt8]] {
        let small = [SampleRecord(type: .data, stream: 9, previous: .null, undoNext: .null, data: [])]
        let big = (0..<40).map {
            SampleRecord(type: .data, stream: UInt16($0), previous: .invalid, undoNext: .invalid, data: Array("record \($0) ".utf8))
        }
        return [Codec.none, .lz4, .zlib(level: 6)].flatMap { c in [Sample.records, small, big].map { sealBlock($0, codec: c) } }
    }

    @Test func blockDecoders() {
        var m = Mutator(g: SplitMix64(seed: 40), seeds: Self.blockSeeds, reseal: resealBlockCRC)
        var headers = Tally()
        var outcomes: [BlockOutcome: Int] = [:]
        for _ in 0..<Self.iterations {
            let input = m.next()
            _ = Self.run(input, &headers) { try BlockHeader.decode($0) }
            let result = decodeBlock(input)
            outcomes[BlockOutcome(result), default: 0] += 1
            if case .success(let d) = result {
                // A block that decodes is internally consistent.
                let consistent = d.payload.count == Int(d.header.rawLength) && d.slots.count == Int(d.header.recordCount)
                    && d.slots.allSatisfy { $0.dataOffset + Int($0.header.length) <= d.payload.count }
                    && d.header.logSalt == Sample.logID.salt && d.header.epoch <= Sample.epoch
                if !consistent { Issue.record("inconsistent decoded block from \(hex(input))") }
            }
        }
        #expect(headers.ok > 1000 && headers.codes[.corrupt, default: 0] > 1000 && headers.codes[.unsupportedVersion, default: 0] > 10)
        #expect(outcomes[.success, default: 0] > 100 && outcomes[.absent, default: 0] > 1000 && outcomes[.damaged, default: 0] > 1000)
    }

    @Test func containerHeaderDecoder() throws {
        let seeds = [
            Sample.containerHeader.encode(),
            ContainerHeader(logID: LogID(high: 0, low: 0), physicalID: 0, containerSize: 0).encode() + [UInt8](repeating: 0, count: 64),
        ]
        var m = Mutator(g: SplitMix64(seed: 41), seeds: seeds, reseal: resealContainerCRC)
        var tally = Tally()
        for _ in 0..<Self.iterations {
            if let h = Self.run(m.next(), &tally, { try ContainerHeader.decode($0) }), try decodeContainer(h.encode()) != h {
                Issue.record("\(h) does not survive a re-encode")
            }
        }
        #expect(tally.ok > 100 && tally.codes[.corrupt, default: 0] > 1000 && tally.codes[.unsupportedVersion, default: 0] > 10)
    }

    @Test func baseRecordDecoder() throws {
        var forty = Sample.baseRecord
        forty.containers += (3..<40).map { ContainerEntry(physicalID: $0, logicalID: 0, state: .inactive, endOffset: 0) }
        forty.nextPhysicalID = 40
        var m = Mutator(
            g: SplitMix64(seed: 42), seeds: [Sample.baseRecord.encode(), forty.encode(), BaseRecordTests.richRecord.encode()],
            reseal: resealBaseCRC)
        var tally = Tally()
        for _ in 0..<Self.iterations {
            // Whatever decodes has passed validate() and survives a re-encode.
            if let r = Self.run(m.next(), &tally, { try BaseRecord.decode($0) }), try decodeBase(r.encode()) != r {
                Issue.record("\(r) does not survive a re-encode")
            }
        }
        #expect(tally.ok > 100 && tally.codes[.corrupt, default: 0] > 1000 && tally.codes[.unsupportedVersion, default: 0] > 10)
    }

    @Test func lsnParser() {
        var g = SplitMix64(seed: 43)
        let alphabet = Array("0123456789:xX+- \tabcdefnulinvd")
        var parsed = 0
        var rejected = 0
        for _ in 0..<Self.iterations / 4 {
            // A valid printed or hexadecimal form with a few random edits.
            let l = LSN(rawValue: g.next() >> (g.next() % 64))
            var text = Array(g.next() & 1 == 0 ? l.description : "0x" + String(l.rawValue, radix: 16))
            for _ in 0..<Int(g.next() % 3) {
                let at = Int(g.next() % UInt64(text.count + 1))
                let c = alphabet[Int(g.next() % UInt64(alphabet.count))]
                switch g.next() % 3 {
                case 0: text.insert(c, at: at)
                case 1: if at < text.count { text.remove(at: at) }
                default: if at < text.count { text[at] = c }
                }
            }
            if let l = LSN(String(text)) {
                parsed += 1
                if LSN(l.description) != l { Issue.record("\(String(text).debugDescription) parsed to \(l), which does not round-trip") }
            } else {
                rejected += 1
            }
        }
        #expect(parsed > 1000 && rejected > 1000)
    }
}
