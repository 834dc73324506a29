// The crash loop shared by the key-value store's SIGKILL tests: run a txlog workload, kill it at a random
// moment, keep the lines it completed as acknowledged, and check the survivors after every kill.

import Testing

/// What a ``killLoop(iterations:killAfter:run:scratch:acks:context:sourceLocation:check:)`` did.
public struct KillLoopResult: Sendable {
    /// Runs that were killed (the others ended on their own).
    public var killed = 0
    /// Lines the runs completed before their kills (appended to the acknowledgements file).
    public var acknowledged = 0
    /// The last check's result.
    public var lastCheck: TxlogProcess.Ended?
    /// A check failed: the loop stopped after it.
    public var checkFailed = false
}

/// Runs `txlog run…` `iterations` times, each killed with SIGKILL after a random delay in `killAfter`
/// seconds (unless it ended first: it must then have exited 0), appends the lines it completed to the
/// file at `acks`, and runs `check` after each. Records an issue for a run that failed and for a check
/// that did not exit 0, and stops at the first such check. `context(i, delay)` names an iteration in
/// those issues.
public func killLoop(
    iterations: Int, killAfter: ClosedRange<Double>, run arguments: [String], scratch: String, acks: String,
    context: (Int, Double) -> String, sourceLocation: SourceLocation = #_sourceLocation,
    check: () async throws -> TxlogProcess.Ended
) async throws -> KillLoopResult {
    var result = KillLoopResult()
    var rng = SystemRandomNumberGenerator()
    for i in 0..<iterations {
        let delay = Double.random(in: killAfter, using: &rng)
        let run = try await TxlogProcess.run(arguments, scratch: scratch, killAfter: delay)
        #expect(run.killed || run.status == 0, "\(context(i, delay)): run ended with status \(run.status): \(run.stderr)", sourceLocation: sourceLocation)
        if run.killed { result.killed += 1 }
        // Cumulative: every line acknowledged by any run must still hold after every later crash. Only
        // complete lines count; a line cut by the kill was never acknowledged.
        result.acknowledged += try appendCompleteLines(of: run.stdout, to: acks)
        let checked = try await check()
        result.lastCheck = checked
        #expect(checked.status == 0, "\(context(i, delay)): \(checked.stdout) \(checked.stderr)", sourceLocation: sourceLocation)
        if checked.status != 0 {
            result.checkFailed = true
            break
        }
    }
    return result
}
