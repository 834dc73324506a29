// Expecting a `LogError` with a given code (the stable codes are what callers match on).

import LogFormat
import Testing

/// Expects `body` to throw a `LogError` with `code`.
public func expectLogError(
    _ code: LogError.Code, _ comment: Comment? = nil, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void
) {
    do {
        try body()
        Issue.record("expected \(code.rawValue), but nothing was thrown. \(comment.map { "\($0)" } ?? "")", sourceLocation: sourceLocation)
    } catch let e as LogError {
        #expect(e.code == code, "\(e)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected LogError \(code.rawValue), got \(error)", sourceLocation: sourceLocation)
    }
}

/// Expects `body` to throw a `LogError` with `code` (async).
public func expectLogError(
    _ code: LogError.Code, _ comment: Comment? = nil, sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> Void
) async {
    do {
        try await body()
        Issue.record("expected \(code.rawValue), but nothing was thrown. \(comment.map { "\($0)" } ?? "")", sourceLocation: sourceLocation)
    } catch let e as LogError {
        #expect(e.code == code, "\(e)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected LogError \(code.rawValue), got \(error)", sourceLocation: sourceLocation)
    }
}
