// Space management and the archive tail at their edges: a read-only log's reservations, containers
// pending delete, a failed stream deletion, archive tails outside the log. Each test failed before its
// fix (docs/RELIABILITY.md, "Found by the sixth review").

import Foundation
import Testing
import TxLogTestSupport
@testable import LogStore

@Suite("Space review: reservations, pending deletes, archive tails")
struct SpaceReviewTests {
    /// `reserve` on a log opened read-only was granted (and counted), although every other call that
    /// changes the log throws `readOnly` there.
    @Test("reserve on a read-only log throws readOnly")
    func reserveOnReadOnlyLog() throws {
        let dir = FaultTestKit.temporaryPath("space-reserve-readonly")
        defer { FaultTestKit.remove(dir) }
        let log = try LogStore.create(at: dir, options: FaultTestKit.tinyOptions())
        _ = try log.createStream("undo")
        try log.close()
        let ro = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true))
        expectLogError(.readOnly) { try ro.defaultStream.reserve(recordSizes: [100]) }
        expectLogError(.readOnly) { try ro.openStream("undo").reserve(recordSizes: [100]) }
        #expect(try ro.defaultStream.info().reservedRecords == 0)
        try ro.close()
    }
}
