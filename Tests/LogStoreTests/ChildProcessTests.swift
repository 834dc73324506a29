// The test support that runs txlog children: a child that outlives its limit is killed and reported,
// so a hung child fails its test instead of stalling the whole test run.

import Foundation
import Testing
import TxLogTestSupport

@Suite("Child processes")
struct ChildProcessTests {
    @Test("a child still running after its limit is killed and reported as hung", .timeLimit(.minutes(1)))
    func hungChildIsKilled() async throws {
        let scratch = LogTestKit.temporaryPath("child")
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { LogTestKit.remove(scratch) }
        let started = Date()
        do {
            _ = try await TxlogProcess.run(
                ["bench", "crc", "--seconds", "60"], scratch: scratch, hangAfter: 1)
            Issue.record("a 60-second child returned within its 1-second limit")
        } catch let TxlogProcess.Failure.hung(arguments, seconds, _) {
            #expect(arguments.first == "bench" && seconds == 1)
        }
        #expect(Date().timeIntervalSince(started) < 30)
    }
}
