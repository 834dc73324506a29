// Running an async call in the background and waiting for its end without ever hanging the test: a
// call that never returns makes the test fail, not the test run stall.

import LogFormat
import Synchronization
import Testing

/// An async throwing call started in its own task, whose result can be awaited with a deadline.
public final class BackgroundCall<T: Sendable>: Sendable {
    private final class Outcome: Sendable {
        let value = Mutex<Result<T, any Error>?>(nil)
    }
    private let outcome = Outcome()

    /// Starts `body` in a new task.
    public init(_ body: @escaping @Sendable () async throws -> T) {
        let outcome = self.outcome
        Task {
            let r: Result<T, any Error>
            do { r = .success(try await body()) } catch { r = .failure(error) }
            outcome.value.withLock { $0 = r }
        }
    }

    /// True once the call has returned or thrown.
    public var isFinished: Bool { outcome.value.withLock { $0 != nil } }

    /// The call's result, or nil if it has not ended within `seconds` (it is then left running).
    public func result(within seconds: Double = 60) async -> Result<T, any Error>? {
        _ = await eventually(within: seconds) { isFinished }
        return outcome.value.withLock { $0 }
    }

    /// The call's value; records an issue (naming `what`) if it threw or has not returned within `seconds`.
    @discardableResult
    public func expectSuccess(
        _ what: String, within seconds: Double = 60, sourceLocation: SourceLocation = #_sourceLocation
    ) async -> T? {
        switch await result(within: seconds) {
        case nil: Issue.record("\(what) did not return within \(seconds) s", sourceLocation: sourceLocation)
        case .failure(let e): Issue.record("\(what) threw \(e)", sourceLocation: sourceLocation)
        case .success(let value): return value
        }
        return nil
    }

    /// The error the call threw; records an issue (naming `what`) unless it threw a ``LogError`` with
    /// `code` within `seconds`.
    @discardableResult
    public func expectLogError(
        _ code: LogError.Code, _ what: String, within seconds: Double = 60, sourceLocation: SourceLocation = #_sourceLocation
    ) async -> LogError? {
        switch await result(within: seconds) {
        case nil: Issue.record("\(what) did not return within \(seconds) s", sourceLocation: sourceLocation)
        case .success: Issue.record("\(what) succeeded; expected \(code.rawValue)", sourceLocation: sourceLocation)
        case .failure(let e as LogError):
            #expect(e.code == code, "\(what): \(e)", sourceLocation: sourceLocation)
            return e
        case .failure(let e): Issue.record("\(what): expected LogError \(code.rawValue), got \(e)", sourceLocation: sourceLocation)
        }
        return nil
    }
}
