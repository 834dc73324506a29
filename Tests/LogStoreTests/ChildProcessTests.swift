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
}
