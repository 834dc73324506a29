import CLZ4
import CZlib

/// How a block's payload is compressed. The log has a default; each block records its own.
///
/// A block is stored compressed only when that makes it smaller; otherwise it is stored as is and its
/// header says `none`. On-disk ids: docs/format/block.md.
public enum Codec: Sendable, Hashable, CustomStringConvertible {
    /// No compression: the stored payload is the raw payload (on-disk id 0).
    case none
    /// One LZ4 block, no frame (on-disk id 1).
    case lz4
    /// zlib at a level from 1 (fastest) to 9 (smallest).
    case zlib(level: Int)

    /// The on-disk codec id.
    public var id: UInt8 {
        switch self {
        case .none: 0
        case .lz4: 1
        case .zlib: 2
        }
    }

    /// The on-disk level byte (0 unless zlib).
    public var level: UInt8 {
        if case .zlib(let level) = self { return UInt8(clamping: level) }
        return 0
    }

    /// Decodes an on-disk (id, level) pair.
    public init(id: UInt8, level: UInt8) throws {
        switch id {
        case 0: self = .none
        case 1: self = .lz4
        case 2:
            guard (1...9).contains(level) else { throw LogError(.corrupt, "zlib level \(level) is not 1...9") }
            self = .zlib(level: Int(level))
        default: throw LogError(.unsupportedVersion, "unknown codec id \(id)")
        }
    }

    /// Parses `none`, `lz4`, `zlib` (level 1) or `zlib:N`.
    public init?(parsing text: String) {
        switch text {
        case "none": self = .none
        case "lz4": self = .lz4
        case "zlib": self = .zlib(level: 1)
        default:
            guard text.hasPrefix("zlib:"), let l = Int(text.dropFirst(5)), (1...9).contains(l) else { return nil }
            self = .zlib(level: l)
        }
    }

    public var description: String {
        switch self {
        case .none: "none"
        case .lz4: "lz4"
        case .zlib(let level): "zlib:\(level)"
        }
    }

    /// Checks the codec's parameters.
    public func validate() throws {
        if case .zlib(let level) = self, !(1...9).contains(level) {
            throw LogError(.invalidArgument, "zlib level must be 1...9, got \(level)")
        }
    }

    /// Compresses `source` into `destination` and returns the compressed length, or nil when the result
    /// would not be smaller than the source (the caller then stores the bytes uncompressed), and for a
    /// `zlib` level outside 1...9.
    public func compress(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer) -> Int? {
        guard let src = source.baseAddress, let dst = destination.baseAddress, source.count > 0 else { return nil }
        // Only a strictly smaller result is useful.
        let capacity = min(destination.count, source.count - 1)
        guard capacity > 0 else { return nil }
        switch self {
        case .none:
            return nil
        case .lz4:
            let n = LZ4_compress_default(
                src.assumingMemoryBound(to: CChar.self), dst.assumingMemoryBound(to: CChar.self),
                Int32(clamping: source.count), Int32(clamping: capacity))
            return n > 0 ? Int(n) : nil
        case .zlib(let level):
            // A caller's level outside 1...9 (``validate()`` refuses it) gives no compression: converted to
            // zlib's `Int32`, one beyond its range trapped.
            guard (1...9).contains(level) else { return nil }
            var outLength = uLong(capacity)
            let rc = compress2(
                dst.assumingMemoryBound(to: Bytef.self), &outLength, src.assumingMemoryBound(to: Bytef.self),
                uLong(source.count), Int32(level))
            return rc == Z_OK && Int(outLength) < source.count ? Int(outLength) : nil
        }
    }

    /// Decompresses `source` into `destination`, which must be exactly the expected raw length.
    /// Throws `corrupt` if the data does not decode to exactly that many bytes.
    public func decompress(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer) throws {
        switch self {
        case .none:
            guard source.count == destination.count else {
                throw LogError(.corrupt, "stored length \(source.count) != raw length \(destination.count)")
            }
            if let d = destination.baseAddress, let s = source.baseAddress { d.copyMemory(from: s, byteCount: source.count) }
        case .lz4:
            guard let src = source.baseAddress, let dst = destination.baseAddress,
                source.count <= Int(Int32.max), destination.count <= Int(Int32.max)
            else { throw LogError(.corrupt, "lz4 payload is empty or too large") }
            let n = LZ4_decompress_safe(
                src.assumingMemoryBound(to: CChar.self), dst.assumingMemoryBound(to: CChar.self),
                Int32(source.count), Int32(destination.count))
            guard n == Int32(destination.count) else {
                throw LogError(.corrupt, "lz4 payload does not decode to \(destination.count) bytes (got \(n))")
            }
        case .zlib:
            guard let src = source.baseAddress, let dst = destination.baseAddress else {
                throw LogError(.corrupt, "zlib payload is empty")
            }
            var outLength = uLong(destination.count)
            let rc = uncompress(
                dst.assumingMemoryBound(to: Bytef.self), &outLength, src.assumingMemoryBound(to: Bytef.self),
                uLong(source.count))
            guard rc == Z_OK, Int(outLength) == destination.count else {
                throw LogError(.corrupt, "zlib payload does not decode to \(destination.count) bytes (rc \(rc))")
            }
        }
    }
}
