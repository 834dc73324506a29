// `walkBlocks` hands the scan's blocks over one at a time and keeps none, so `txlog verify`, `stats` and
// `map` run in memory that does not grow with the log; `scanBlocks` is the same walk collected.

import Foundation
import LogFormat
import Testing
import TxLogTestSupport

@testable import LogStore

private typealias Kit = FaultTestKit

@Suite("walkBlocks")
struct WalkBlocksTests {
    /// A tiny log whose records (two streams, sizes that vary) span every container at least once.
    private func filledLog(_ tag: String) throws -> (LogStore, String) {
        let dir = Kit.temporaryPath(tag)
        let log = try LogStore.create(at: dir, options: Kit.tinyOptions(containers: 4))
        let other = try log.createStream("other")
        var last = LSN.null
        var i = 0
        while last.container < 3 {
            last = try log.append(LogTestKit.randomPayload(i, length: 100 + (i * 37) % 900))
            if i % 3 == 0 { _ = try other.append(LogTestKit.randomPayload(i + 1, length: 50)) }
            i += 1
        }
        try log.flush()
        return (log, dir)
    }

    @Test("visits exactly the blocks scanBlocks lists, in the same order, and keeps none in its report")
    func sameBlocksNoneKept() throws {
        let (log, dir) = try filledLog("walk-same")
        defer { Kit.remove(dir) }
        defer { try? log.close() }
        let scanned = try log.scanBlocks()
        var visited: [ScannedBlock] = []
        let walked = try log.walkBlocks { visited.append($0) }
        #expect(scanned.blocks.count > 40, "the log spans several containers: \(scanned.blocks.count) blocks")
        #expect(visited == scanned.blocks)
        #expect(walked.blocks.isEmpty)
        #expect(walked.problems.isEmpty && scanned.problems.isEmpty)
        #expect(walked.end == scanned.end)
        #expect(walked.bytesScanned == scanned.bytesScanned)
        #expect(Set(visited.map(\.physicalID)).count >= 3)
    }

    @Test("with damage and keepGoing: the same blocks visited and the same problems as scanBlocks")
    func damageKeepGoing() throws {
        let (writer, dir) = try filledLog("walk-damage")
        defer { Kit.remove(dir) }
        let target = try #require(try writer.scanBlocks().blocks.dropFirst(10).first)
        let path = try #require(writer.info().containers.first { $0.physicalID == target.physicalID }?.path)
        try writer.close()
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.seek(toOffset: target.offset + 100)
        try handle.write(contentsOf: Data([0xFF, 0x00, 0xFF, 0x00]))
        try handle.close()

        let log = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true, recovery: .pointInTime))
        defer { try? log.close() }
        let scanned = try log.scanBlocks(keepGoing: true)
        var visited: [ScannedBlock] = []
        let walked = try log.walkBlocks(keepGoing: true) { visited.append($0) }
        #expect(!scanned.problems.isEmpty)
        #expect(walked.problems == scanned.problems)
        #expect(visited == scanned.blocks)
        #expect(!visited.contains { $0.offset == target.offset && $0.physicalID == target.physicalID })
        #expect(walked.blocks.isEmpty)
    }

    /// A visit that moves every base up to its block, on a log with auto-shrink on: recycling frees the
    /// containers walked and auto-shrink removes them, on the visiting thread. The walk held every
    /// container's descriptor until it returned, and the removal waited for the walk, which waited for
    /// the visit: for ever.
    @Test("a visit moving the bases up to its block under auto-shrink: the walked containers go, no wait for itself")
    func visitMovesBasesUnderAutoShrink() async throws {
        let (log, dir) = try filledLog("walk-shrink")
        defer { Kit.remove(dir) }
        var policy = LogPolicy()
        policy.autoShrinkPercent = 50
        try log.setPolicy(policy)
        #expect(log.info().containers.count == 4)
        let other = try log.openStream("other")
        let newest = try #require(log.info().containers.map(\.logicalID).max())
        // On a thread of its own, waited for with a bound: before, it never returned.
        let walk = BackgroundCall {
            try await onOwnThread { () throws -> Int in
                var visits = 0
                var moved = false
                _ = try log.walkBlocks { block in
                    visits += 1
                    guard !moved, block.lsn.container == newest else { return }
                    moved = true
                    #expect(throws: Never.self) {
                        try log.advanceBase(to: block.lsn)
                        try other.advanceBase(to: block.lsn)
                    }
                }
                return visits
            }
        }
        let visits = await walk.expectSuccess("the walk whose visit moved the bases") ?? 0
        guard walk.isFinished else { return }  // the log cannot close under the walk
        #expect(visits > 40)
        // Two of the three containers walked before the newest were recycled; auto-shrink took the log
        // down to two containers, of which one (50 %) is free.
        #expect(log.info().containers.count == 2, "\(log.info().containers.map { "\($0.physicalID) \($0.state)" })")
        _ = try log.append([1, 2, 3])
        try log.close()
        #expect(openDescriptors(under: dir).isEmpty)
    }

    @Test("on a closed log: closed, and nothing visited")
    func closed() throws {
        let (log, dir) = try filledLog("walk-closed")
        defer { Kit.remove(dir) }
        try log.close()
        var visits = 0
        #expect(throws: LogError.self) { _ = try log.walkBlocks { _ in visits += 1 } }
        #expect(visits == 0)
    }
}
