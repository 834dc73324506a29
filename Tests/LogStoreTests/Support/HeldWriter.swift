// A log's writer thread held back: opened with `options`, the log queues sealed blocks in memory and
// writes nothing until `start()` runs the writer on a thread of its own.

import Foundation
@testable import LogStore

final class HeldWriter: Sendable {
    private let body = LockedBox<(@Sendable () -> Void)?>(nil)

    /// `base` with the writer thread handed to this instead of started.
    func options(_ base: LogOpenOptions = LogOpenOptions()) -> LogOpenOptions {
        var options = base
        let body = self.body
        options.startThreadForTesting = { writer in
            body.withLock { $0 = writer }
            return true
        }
        return options
    }

    /// Starts the writer thread (once; later calls do nothing). Call it before closing the log: close waits
    /// for the writer.
    func start() {
        guard let writer = body.withLock({ w in defer { w = nil }; return w }) else { return }
        Thread { writer() }.start()
    }
}
