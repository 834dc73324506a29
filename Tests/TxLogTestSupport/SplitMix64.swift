// SplitMix64: a small, fast, seedable generator, so every randomized test replays the same inputs.

public struct SplitMix64: RandomNumberGenerator {
    public var state: UInt64

    public init(seed: UInt64) { state = seed }
    public init(state: UInt64) { self.state = state }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// `count` pseudo-random bytes.
    public mutating func bytes(_ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: (count + 7) & ~7)
        out.withUnsafeMutableBytes { b in
            for i in stride(from: 0, to: b.count, by: 8) { b.storeBytes(of: next(), toByteOffset: i, as: UInt64.self) }
        }
        out.removeLast(out.count - count)
        return out
    }
}
