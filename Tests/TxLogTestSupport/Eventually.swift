// Waiting for something another thread or task will do, without a fixed sleep.

import Foundation

/// Polls `condition` until it holds, for up to `seconds` and at least 200 times: on a starved machine
/// the deadline can pass while neither this task nor the work it waits for ran, so polling goes on a
/// little after the deadline. Returns whether the condition became true.
public func eventually(within seconds: Double = 60, _ condition: () -> Bool) async -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    var polls = 0
    while Date() < deadline || polls < 200 {
        if condition() { return true }
        polls += 1
        try? await Task.sleep(for: .milliseconds(2))
    }
    return condition()
}
