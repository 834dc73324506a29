// 128-bit identities of transaction managers, resource managers, transactions and enlistments.

import LogFormat
import Synchronization

/// A 128-bit identifier, printed in the usual 8-4-4-4-12 hexadecimal form.
///
/// TxLog does not depend on Foundation, so this is its own type; `GUID(uuidString)` parses any
/// RFC 4122 text form (case-insensitive), and ``description`` prints lower case.
public struct GUID: Hashable, Comparable, Sendable, CustomStringConvertible, LosslessStringConvertible {
    /// The first 8 bytes, big-endian (as printed).
    public var high: UInt64
    /// The last 8 bytes, big-endian (as printed).
    public var low: UInt64

    /// A GUID from its two halves.
    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// A new identifier in the version 4 (random) layout.
    ///
    /// To avoid a `getrandom` system call per transaction, the process draws a 128-bit secret once and
    /// then derives identifiers from it and an atomic counter: the low 62 bits are `secret + counter`, so
    /// no two identifiers of one process are equal; the high half is the counter scrambled by a
    /// bijective mixer, so identifiers look random. Different processes draw different secrets.
    public static func random() -> GUID {
        let n = GUIDSource.shared.next()
        let hi = (mix64(GUIDSource.shared.secretHigh ^ n) & ~UInt64(0xF000)) | 0x4000  // version 4
        let lo = ((GUIDSource.shared.secretLow &+ n) & ~(UInt64(0xC000) << 48)) | (UInt64(0x8000) << 48)  // RFC 4122 variant
        return GUID(high: hi, low: lo)
    }

    /// The all-zero identifier.
    public static let zero = GUID(high: 0, low: 0)

    /// Parses `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (hyphens optional, any case).
    public init?(_ text: String) {
        var digits: [UInt8] = []
        digits.reserveCapacity(32)
        for c in text.utf8 where c != UInt8(ascii: "-") {
            guard let v = GUID.hexValue(c), digits.count < 32 else { return nil }
            digits.append(v)
        }
        guard digits.count == 32 else { return nil }
        var hi: UInt64 = 0
        var lo: UInt64 = 0
        for i in 0..<16 { hi = hi << 4 | UInt64(digits[i]) }
        for i in 16..<32 { lo = lo << 4 | UInt64(digits[i]) }
        self.init(high: hi, low: lo)
    }

    public var description: String {
        let hex = GUID.hex(high, 16) + GUID.hex(low, 16)
        let u = Array(hex.utf8)
        func part(_ r: Range<Int>) -> String { String(decoding: u[r], as: UTF8.self) }
        return "\(part(0..<8))-\(part(8..<12))-\(part(12..<16))-\(part(16..<20))-\(part(20..<32))"
    }

    public static func < (a: GUID, b: GUID) -> Bool { (a.high, a.low) < (b.high, b.low) }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    private static func hex(_ v: UInt64, _ width: Int) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: max(0, width - s.count)) + s
    }
}

/// The per-process secret and counter behind ``GUID/random()``.
final class GUIDSource: Sendable {
    static let shared = GUIDSource()
    let secretHigh: UInt64
    let secretLow: UInt64
    private let counter = Atomic<UInt64>(0)

    private init() {
        var g = SystemRandomNumberGenerator()
        secretHigh = g.next()
        secretLow = g.next()
    }

    func next() -> UInt64 { counter.add(1, ordering: .relaxed).newValue }
}

/// splitmix64's finalizer: a bijection on 64-bit values with good avalanche.
@inline(__always)
func mix64(_ x: UInt64) -> UInt64 {
    var z = x &+ 0x9E37_79B9_7F4A_7C15
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}
