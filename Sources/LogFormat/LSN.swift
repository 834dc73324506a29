// LSN layout: docs/format/lsn.md.

/// A 64-bit log sequence number, totally ordered within one log.
///
/// Layout (most significant first): 32 bits logical container id, 23 bits block offset in 512-byte
/// units, 9 bits record slot inside the block. Comparing raw values compares positions in the log.
/// ``null`` (0) is smaller than every record's LSN; ``invalid`` (all ones) is greater than every
/// valid LSN and ends previous/undo-next chains.
public struct LSN: RawRepresentable, Hashable, Comparable, Sendable {
    public var rawValue: UInt64

    public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// The smallest LSN; no record has it.
    public static let null = LSN(rawValue: 0)
    /// Greater than every valid LSN; no record has it. Ends previous and undo-next chains.
    public static let invalid = LSN(rawValue: .max)

    /// Bytes per block-offset unit.
    public static let offsetUnit: UInt64 = 512
    /// Largest record slot (records per block are at most `maxSlot + 1`).
    public static let maxSlot: UInt16 = 511
    /// Largest byte offset an LSN can express.
    public static let maxBlockOffset: UInt64 = ((1 << 23) - 1) * 512

    /// Builds an LSN, or returns nil if a part is out of range (offset not a multiple of 512 or
    /// beyond 4 GiB - 512, slot above 511).
    public init?(container: UInt32, blockOffset: UInt64, slot: UInt16) {
        guard blockOffset % LSN.offsetUnit == 0, blockOffset <= LSN.maxBlockOffset, slot <= LSN.maxSlot else {
            return nil
        }
        self.rawValue = UInt64(container) << 32 | (blockOffset / LSN.offsetUnit) << 9 | UInt64(slot)
    }

    /// Builds an LSN from parts the caller has already checked (offset a multiple of 512 below 4 GiB,
    /// slot at most 511). Out-of-range parts are masked to their field (never spill into a neighbour).
    @inlinable
    public init(uncheckedContainer container: UInt32, blockOffset: UInt64, slot: UInt16) {
        self.rawValue = UInt64(container) << 32 | ((blockOffset >> 9) & 0x7F_FFFF) << 9 | UInt64(slot & 0x1FF)
    }

    /// The logical container id.
    @inlinable public var container: UInt32 { UInt32(truncatingIfNeeded: rawValue >> 32) }
    /// The byte offset of the record's block inside its container.
    @inlinable public var blockOffset: UInt64 { ((rawValue >> 9) & 0x7F_FFFF) * 512 }
    /// The record's index inside its block.
    @inlinable public var slot: UInt16 { UInt16(truncatingIfNeeded: rawValue & 0x1FF) }
    /// The LSN of slot 0 of the same block.
    @inlinable public var blockLSN: LSN { LSN(rawValue: rawValue & ~0x1FF) }

    /// True for every LSN except ``null`` and ``invalid``.
    public var isValid: Bool { self != .null && self != .invalid }

    public static func < (a: LSN, b: LSN) -> Bool { a.rawValue < b.rawValue }
}

extension LSN: CustomStringConvertible, LosslessStringConvertible {
    /// `container:offset:slot` in decimal, for example `3:8192:17`; or `null` / `invalid`.
    public var description: String {
        if self == .null { return "null" }
        if self == .invalid { return "invalid" }
        return "\(container):\(blockOffset):\(slot)"
    }

    /// Parses `container:offset:slot`, `null`, `invalid`, or a raw `0x…` hexadecimal value.
    public init?(_ text: String) {
        let t = text.trimmingCharacters(inSet: " \t")
        if t == "null" { self = .null; return }
        if t == "invalid" { self = .invalid; return }
        if t.hasPrefix("0x") || t.hasPrefix("0X") {
            let digits = t.dropFirst(2)
            guard !digits.isEmpty, digits.allSatisfy(\.isHexDigit), let raw = UInt64(digits, radix: 16) else { return nil }
            self.init(rawValue: raw)
            return
        }
        let parts = t.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 3, parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }),
            let c = UInt32(parts[0]), let o = UInt64(parts[1]), let s = UInt16(parts[2])
        else { return nil }
        self.init(container: c, blockOffset: o, slot: s)
    }
}

extension String {
    fileprivate func trimmingCharacters(inSet set: String) -> String {
        var s = Substring(self)
        while let f = s.first, set.contains(f) { s = s.dropFirst() }
        while let l = s.last, set.contains(l) { s = s.dropLast() }
        return String(s)
    }
}
