// 128-bit identities of transaction managers, resource managers, transactions and enlistments.

import LogFormat

/// A 128-bit identifier, printed in the usual 8-4-4-4-12 hexadecimal form.
///
/// TxLog does not depend on Foundation, so this is its own type; `GUID(uuidString)` parses any
/// RFC 4122 text form (case-insensitive), and ``description`` prints lower case.
public struct GUID: Hashable, Comparable, Sendable, CustomStringConvertible, LosslessStringConvertible {
    /// The first 8 bytes, big-endian (as printed).
    public var high: UInt64
    /// The last 8 bytes, big-endian (as printed).
    public var low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// A random (version 4) identifier.
    public static func random() -> GUID {
        var g = SystemRandomNumberGenerator()
        let a: UInt64 = g.next()
        let b: UInt64 = g.next()
        let hi = (a & ~UInt64(0xF000)) | 0x4000  // version 4
        let lo = (b & ~(UInt64(0xC000) << 48)) | (UInt64(0x8000) << 48)  // RFC 4122 variant
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
