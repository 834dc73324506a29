// Test helpers that make a scratch directory and then more in it (a log, a TM, stores) return its path
// for the caller's `defer` to remove. When a later step throws, the caller never gets the path, so the
// helper must remove it itself, or every failing run leaves a directory behind.

import Foundation

/// Runs `body`; if it throws, removes `path` (and everything under it) before rethrowing.
public func removingOnThrow<T>(_ path: String, _ body: () throws -> T) rethrows -> T {
    do {
        return try body()
    } catch {
        try? FileManager.default.removeItem(atPath: path)
        throw error
    }
}

/// The asynchronous form of ``removingOnThrow(_:_:)``.
public func removingOnThrow<T>(
    _ path: String, isolation: isolated (any Actor)? = #isolation, _ body: () async throws -> T
) async rethrows -> T {
    do {
        return try await body()
    } catch {
        try? FileManager.default.removeItem(atPath: path)
        throw error
    }
}
