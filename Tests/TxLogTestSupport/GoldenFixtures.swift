// Golden fixture files: read from the test bundle (falling back to the source tree), or rewritten from
// the encoder when TXLOG_UPDATE_FIXTURES=1. Each golden suite makes one with its own bundle.

import Foundation
import Testing

public struct GoldenFixtures: Sendable {
    /// True when the fixtures are being regenerated (TXLOG_UPDATE_FIXTURES=1).
    public static let updating = ProcessInfo.processInfo.environment["TXLOG_UPDATE_FIXTURES"] == "1"

    /// `Fixtures/` in the test bundle, if it was copied there.
    public let bundledDirectory: URL?
    /// `Fixtures/` beside the suite's source file, for writing.
    public let sourceDirectory: URL

    /// `bundle` is the test target's `Bundle.module`; `filePath` defaults to the caller's file.
    public init(bundle: Bundle, filePath: String = #filePath) {
        bundledDirectory = bundle.url(forResource: "Fixtures", withExtension: nil)
        sourceDirectory = URL(fileURLWithPath: filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
    }

    /// Fixtures read from the source tree only (`Fixtures/` beside `filePath`), for a target that excludes
    /// them from its bundle.
    public init(filePath: String = #filePath) {
        bundledDirectory = nil
        sourceDirectory = URL(fileURLWithPath: filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
    }

    /// The fixture's bytes, or nil if it is missing.
    public func load(_ name: String) -> [UInt8]? {
        for dir in [bundledDirectory, sourceDirectory].compactMap({ $0 }) {
            if let data = try? Data(contentsOf: dir.appendingPathComponent(name)) { return [UInt8](data) }
        }
        return nil
    }

    /// In update mode writes `expected` and returns it; otherwise returns the checked-in bytes (a missing
    /// fixture is a test failure).
    public func fixture(_ name: String, expected: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) throws -> [UInt8] {
        if Self.updating {
            try FileManager.default.createDirectory(at: sourceDirectory, withIntermediateDirectories: true)
            try Data(expected).write(to: sourceDirectory.appendingPathComponent(name))
            print("note: wrote Fixtures/\(name) (\(expected.count) bytes)")
            return expected
        }
        return try #require(load(name), "Fixtures/\(name) is missing; run with TXLOG_UPDATE_FIXTURES=1", sourceLocation: sourceLocation)
    }
}
