// The fuzz targets' seed corpora (tools/fuzz/corpus/<Target>/), for the tests that replay them through
// the calls the targets make, so every test run checks the seeds (and damaged copies of them) even
// where nobody runs the fuzzers.

import Foundation

public enum FuzzCorpus {
    /// tools/fuzz/corpus in the source tree.
    public static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("tools/fuzz/corpus")

    /// The seeds of `target`, by file name, sorted (empty when the directory is missing).
    public static func seeds(_ target: String) -> [(name: String, bytes: [UInt8])] {
        let dir = root.appendingPathComponent(target)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return names.sorted().compactMap { name in
            (try? Data(contentsOf: dir.appendingPathComponent(name))).map { (name, [UInt8]($0)) }
        }
    }

    /// `count` copies of `input`, each with one byte changed and, one time in four, cut short: the same
    /// copies for the same input.
    public static func damagedCopies(of input: [UInt8], count: Int) -> [[UInt8]] {
        guard !input.isEmpty else { return [] }
        var rng = SplitMix64(seed: UInt64(input.count))
        return (0..<count).map { _ in
            var damaged = input
            damaged[Int(rng.next() % UInt64(input.count))] ^= UInt8(truncatingIfNeeded: rng.next() | 1)
            if rng.next() % 4 == 0 { damaged.removeLast(Int(rng.next() % UInt64(damaged.count))) }
            return damaged
        }
    }
}
