// The public API under hostile or unlucky arguments and races: each test is a bug a review found.

import Foundation
import Testing
@testable import LogStore

@Suite struct APIMisuseTests {
    /// A container prefix starting with `txlog.base` passed `LogPolicy.validate`, but the base file's
    /// decoder refuses such container names: the first container added under it left a base file with no
    /// readable copy, and the log never opened again. Now setPolicy refuses the prefix, and an update
    /// naming such a container is refused before it is written.
    @Test func aContainerPrefixLikeTheBaseFileIsRefused() throws {
        let dir = StreamTestDirectory()
        let log = try LogStore.create(at: dir.path, options: streamTestOptions())
        var p = LogPolicy()
        p.containerPrefix = "txlog.base"
        expectLogError(.invalidArgument) { try log.setPolicy(p) }
        p.containerPrefix = "txlog.base.tmp-"
        expectLogError(.invalidArgument) { try log.setPolicy(p) }
        #expect(log.policy == .default)
        p.containerPrefix = "txlog.bas"  // only names that start with the base file's are reserved
        try log.setPolicy(p)
        _ = try log.addContainer()
        try log.flush(upTo: try log.append([1, 2, 3]))
        try log.close()
        let reopened = try LogStore.open(at: dir.path)
        #expect(reopened.info().containers.count == 5)
        try reopened.close()

        var record = BaseRecordTestSample.record()
        record.containerNames = [1: "txlog.base000001"]
        #expect(throws: LogError.self) { try record.validate() }
    }
}

/// A minimal valid base record (two containers) for checks of `BaseRecord.validate`.
enum BaseRecordTestSample {
    static func record() -> BaseRecord {
        BaseRecord(
            generation: 1, flags: 0, logID: LogID.random(), containerSize: 512 * 1024, blockSize: 4096,
            maxRecordSize: 4096, codec: .none, epoch: 0, baseLSN: .null, durableWatermark: .null,
            scanStart: LSN(uncheckedContainer: 1, blockOffset: UInt64(Format.containerDataStart), slot: 0),
            scanStartPreviousLSN: .null, scanStartPreviousCRC: 0, nextPhysicalID: 2,
            containers: [
                ContainerEntry(physicalID: 0, logicalID: 1, state: .active, endOffset: 0),
                ContainerEntry(physicalID: 1, logicalID: 0, state: .inactive, endOffset: 0),
            ])
    }
}
