// `setPolicy` running beside another `setPolicy`. The policy used to be put in force in memory before its
// base-file update and restored when that update failed: the restore overwrote a concurrent setPolicy that
// had succeeded (its policy was on disk, the old one in memory), and any base-file update running in
// between could write the policy of a call that then failed. Now a policy is in force once it is written.

import Foundation
import Testing
import TxLogTestSupport
@testable import LogStore

@Suite("setPolicy beside another setPolicy")
struct PolicyRaceTests {
    @Test("a setPolicy whose base-file write fails does not undo a concurrent one that succeeded", .hangGuard)
    func failedSetPolicyKeepsConcurrentSuccess() async throws {
        try await onOwnThread {
            let dir = FaultTestKit.temporaryPath("policy-race")
            defer { FaultTestKit.remove(dir) }
            let io = ParkingIO(parkAt: .baseWrite, failAfterRelease: true)
            let log = try LogStore.create(at: dir, options: FaultTestKit.tinyOptions(), io: io)
            defer { try? log.close() }
            func growingBy(_ n: UInt32) -> LogPolicy {
                var p = LogPolicy()
                p.growthIncrement = n
                return p
            }
            let first = growingBy(3), second = growingBy(5)
            io.arm()
            let firstResult = LockedBox<Result<Void, any Error>?>(nil)
            let secondResult = LockedBox<Result<Void, any Error>?>(nil)
            let done = DispatchSemaphore(value: 0)
            Thread {
                let r = Result { try log.setPolicy(first) }
                firstResult.withLock { $0 = r }
                done.signal()
            }.start()
            io.entered.wait()  // the first call is writing the base file (and will get EIO)
            Thread {
                let r = Result { try log.setPolicy(second) }
                secondResult.withLock { $0 = r }
                done.signal()
            }.start()
            // The second call waits for the base file behind the first. Before the fix its policy was in
            // force in memory by then; now it is not until written, so this waits its bound out.
            for _ in 0..<100 where log.info().policy != second { Thread.sleep(forTimeInterval: 0.002) }
            io.release.signal()
            done.wait()
            done.wait()
            let firstFailed = firstResult.withLock { r -> Bool in if case .failure = r { return true } else { return false } }
            let secondSucceeded = secondResult.withLock { r -> Bool in if case .success = r { return true } else { return false } }
            #expect(firstFailed, "its base-file write got EIO")
            let inForce = log.info().policy
            #expect(inForce != first, "the failed call's policy is not in force")
            // The first call's EIO failed the log before the second got the base file: sticky, so the
            // second is refused too (it used to write its policy and return success on a failed log).
            #expect(!secondSucceeded, "a change was acknowledged after the log failed")
            #expect(log.isFailed)
            #expect(inForce == LogPolicy.default, "in force: growth \(inForce.growthIncrement)")
        }
    }
}
