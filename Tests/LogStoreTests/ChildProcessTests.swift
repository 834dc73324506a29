// The test support that runs txlog children: a child that outlives its limit is killed and reported,
// so a hung child fails its test instead of stalling the whole test run.

import Foundation
import Testing
import TxLogTestSupport

@Suite("Child processes")
struct ChildProcessTests {
    @Test("a child still running after its limit is killed and reported as hung", .hangGuard)
    func hungChildIsKilled() async throws {
        let scratch = LogTestKit.temporaryPath("child")
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { LogTestKit.remove(scratch) }
        // The child would run for an hour: only the kill at the limit ends it within the test's time limit
        // (no timing is asserted; under load the kill's reporting may take a while).
        do {
            _ = try await TxlogProcess.run(
                ["bench", "crc", "--seconds", "3600"], scratch: scratch, hangAfter: 1)
            Issue.record("an hour-long child returned within its 1-second limit")
        } catch let TxlogProcess.Failure.hung(arguments, seconds, _) {
            #expect(arguments.first == "bench" && seconds == 1)
        }
    }

    /// `KillTimer` sends its SIGKILL from a thread of its own, so it comes while other tests hold every
    /// thread of the cooperative pool. Before, the crash tests slept on the pool and then killed: under
    /// `make test-long` the long synchronous sweeps held the pool, and a kill meant for 378 ms came after
    /// the child (`--seconds 600`) had finished by itself.
    @Test("a KillTimer kills on time while every thread of the cooperative pool is held")
    func killTimerFiresWhilePoolIsHeld() async throws {
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/bin/sleep")
        child.arguments = ["600"]
        try child.run()
        let timer = KillTimer(child, afterMilliseconds: 20)
        // Hold one thread per CPU (the pool's width) until the child is gone: at most 60 s, a bound that
        // only a kill that waits for a pool thread reaches.
        let outlived = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<ProcessInfo.processInfo.activeProcessorCount {
                group.addTask {
                    let deadline = Date().addingTimeInterval(60)
                    while child.isRunning {
                        if Date() > deadline { return true }
                        usleep(1000)
                    }
                    return false
                }
            }
            return await group.contains(true)
        }
        if child.isRunning { kill(child.processIdentifier, SIGKILL) }
        #expect(!outlived, "the child outlived 60 s of a held pool: the kill waited for a pool thread")
        #expect(await timer.wait())
    }
}
