// What an idle `LogStore.refresh()` costs: `txlog dump --follow` calls it every `--interval` (0.1 s by
// default) on a log whose writer may write nothing for hours. Counted through the file-I/O seam, never
// timed (`ContainerReadCountingIO`: OpenCancellationTests.swift).

import Foundation
import Synchronization
import Testing
import TxLogTestSupport
@testable import LogStore

@Suite("An idle refresh reads no free container")
struct ReadOnlyRefreshIdleTests {
    /// Ten refreshes that find nothing new; returns the container reads they made, per file.
    static func idleReads(_ reader: LogStore, _ io: ContainerReadCountingIO) throws -> [String: Int] {
        let before = io.readsPerFile
        for _ in 0..<10 { #expect(try reader.refresh() == false) }
        var used: [String: Int] = [:]
        for (path, reads) in io.readsPerFile where reads != before[path] { used[path] = reads - (before[path] ?? 0) }
        return used
    }

    static func create(_ dir: String) throws -> LogStore {
        try LogStore.create(
            at: dir, options: LogTestKit.options(containerSize: Format.containerSizeUnit, containerCount: 8, blockSize: 4096, codec: .none))
    }

    /// Each poll looked for a free container whose first block continues the log (a container switch the base
    /// file does not record): one read of each of the seven free containers, at every poll of an idle log.
    @Test("an idle writer at a container's end: ten refreshes read no container")
    func idleAtContainerEnd() throws {
        let dir = LogTestKit.temporaryPath("refresh-idle-end")
        defer { LogTestKit.remove(dir) }
        let writer = try Self.create(dir)
        // One record per 4 KiB block fills the container's data area exactly: the writer ends at its end, and its
        // next block goes to another container.
        let blocks = Int((Format.containerDataEnd(size: Format.containerSizeUnit) - UInt64(Format.containerDataStart)) / 4096)
        let payload = BlockHeader.size + RecordHeader.size
        var last = LSN.null
        for i in 0..<blocks { last = try writer.append(LogTestKit.randomPayload(i, length: 4096 - payload)) }
        try writer.flush()
        #expect(last.container == 1 && last.blockOffset + 4096 == Format.containerDataEnd(size: Format.containerSizeUnit))
        let io = ContainerReadCountingIO()
        let reader = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true), io: io)
        #expect(reader.lastLSN == last)
        let used = try Self.idleReads(reader, io)
        #expect(used.isEmpty, "ten idle refreshes read containers: \(used)")
        // Still followed: the writer goes on in the next container.
        let next = try writer.append(Array("the next container's first record".utf8))
        try writer.flush()
        #expect(next.container == 2)
        #expect(try reader.refresh())
        #expect(reader.lastLSN == next)
        #expect(try reader.read(next).data == Array("the next container's first record".utf8))
        try reader.close()
        try writer.close()
    }

    @Test("an idle writer inside a container: each refresh reads one block, at the reader's end, and no free container")
    func idleInsideContainer() throws {
        let dir = LogTestKit.temporaryPath("refresh-idle-inside")
        defer { LogTestKit.remove(dir) }
        let writer = try Self.create(dir)
        for i in 0..<20 { _ = try writer.append(LogTestKit.randomPayload(i, length: 300)) }
        try writer.flush()
        let io = ContainerReadCountingIO()
        let reader = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true), io: io)
        let used = try Self.idleReads(reader, io)
        let active = dir + "/" + ContainerFiles.name(physicalID: 0)
        #expect(Set(used.keys).isSubset(of: [active]), "ten idle refreshes read free containers: \(used)")
        #expect((used[active] ?? 0) <= 10, "\(used)")
        let next = try writer.append(Array("one more".utf8))
        try writer.flush()
        #expect(try reader.refresh())
        #expect(reader.lastLSN == next)
        try reader.close()
        try writer.close()
    }
}
