// Space management at its edges: archive tails, policies, reservations, and close() racing container
// adds. Each test failed before its fix (docs/RELIABILITY.md, "Found by the fifth review").

import Foundation
import Testing
import TxLogTestSupport
@testable import LogStore

@Suite("Space management: archive tails, policies, reservations")
struct SpaceManagementTests {
    @Test("setArchiveTail refuses an LSN that is not durable yet")
    func archiveTailAboveDurable() throws {
        let dir = FaultTestKit.temporaryPath("space-archive-durable")
        defer { FaultTestKit.remove(dir) }
        let log = try LogStore.create(at: dir, options: FaultTestKit.tinyOptions())
        let s = try log.createStream("arch")
        let first = try log.append([1, 2, 3])
        let second = try s.append([4, 5, 6])
        #expect(log.durableLSN < first)
        expectLogError(.invalidArgument) { try log.setArchiveTail(first) }
        expectLogError(.invalidArgument) { try s.setArchiveTail(second) }
        #expect(log.info().archiveTail == .null)
        try log.flush()
        try log.setArchiveTail(first)
        try s.setArchiveTail(second)
        try log.close()
    }

    @Test("setPolicy whose required container add fails leaves the old policy in force")
    func setPolicyAddFails() throws {
        let dir = FaultTestKit.temporaryPath("space-policy-add")
        defer { FaultTestKit.remove(dir) }
        let io = FaultyFileIO()
        let log = try LogStore.create(at: dir, options: FaultTestKit.tinyOptions(containers: 2), io: io)
        let old = log.policy
        var p = old
        p.minContainers = 4
        p.maxContainers = 8
        io.inject(.open, pathContains: "container-")
        expectLogError(.io) { try log.setPolicy(p) }
        #expect(log.policy == old)
        #expect(!log.isFailed)
        #expect(log.info().containers.count == 2)
        try log.close()
        let again = try LogStore.open(at: dir)
        #expect(again.policy == old)
        try again.setPolicy(p)
        #expect(again.policy == p)
        #expect(again.info().containers.count == 4)
        try again.close()
    }
}
