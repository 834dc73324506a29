// A writable open whose writer thread cannot be started (the system's limit on threads) fails with a
// typed error instead of trapping (docs/RELIABILITY.md, "Found by the tenth review"). Failed before the
// fix: the test process died on `precondition(pthread_create ...)`, so this test could not have run.

import Foundation
import Testing
import TxLogTestSupport
@testable import LogStore

@Suite("A writer thread the system refuses")
struct WriterThreadStartTests {
    @Test func openFailsWithATypedErrorAndLeavesTheLogUsable() throws {
        let dir = FaultTestKit.temporaryPath("writer-thread-refused")
        defer { FaultTestKit.remove(dir) }
        let log = try LogStore.create(at: dir, options: LogCreateOptions(containerSize: 512 * 1024, containerCount: 2, blockSize: 4096, codec: .none))
        let lsn = try log.append([1, 2, 3])
        try log.flush(upTo: lsn)
        try log.close()

        var refused = LogOpenOptions()
        refused.startThreadForTesting = { _ in false }
        do {
            _ = try LogStore.open(at: dir, options: refused)
            Issue.record("the open succeeded without a writer thread")
        } catch let e as LogError {
            #expect(e.code == .io, "\(e)")
            #expect(e.message.contains("writer thread"), "\(e)")
        }
        // Nothing stays open or locked, and nothing acknowledged is lost.
        let again = try LogStore.open(at: dir)
        #expect(try again.read(lsn).data == [1, 2, 3])
        try again.close()
        // A read-only open starts no writer: the hook is not asked.
        var readOnly = LogOpenOptions(readOnly: true)
        readOnly.startThreadForTesting = { _ in
            Issue.record("a read-only open started a writer thread")
            return false
        }
        let reader = try LogStore.open(at: dir, options: readOnly)
        try reader.close()
    }
}
