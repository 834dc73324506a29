// Running an async call in the background and waiting for its end without ever hanging the test: a
// call that never returns makes the test fail, not the test run stall.

import Synchronization

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
    public func result(within seconds: Double = 10) async -> Result<T, any Error>? {
        _ = await eventually(within: seconds) { isFinished }
        return outcome.value.withLock { $0 }
    }
}
