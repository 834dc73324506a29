// `maxDirtyBytes` bounds the memory of the sealed blocks waiting for the writer, whatever they compress to
// (docs/RELIABILITY.md, "Found by the eleventh review"). Each sealed block holds a whole buffer until it is
// written, but back-pressure counted its length on disk: blocks of compressible records (a 64 KiB block
// stored in one sector) let the queue hold over a hundred times the limit while the writer fell behind.

import Dispatch
import Foundation
import Testing
@testable import LogStore

@Suite("Dirty memory under back-pressure")
struct DirtyMemoryBoundTests {
    @Test("compressible blocks waiting for a stalled writer hold at most maxDirtyBytes plus one block")
    func compressedBlocksCountTheirBuffers() async throws {
        let dir = LogTestKit.temporaryPath("dirty-memory")
        defer { LogTestKit.remove(dir) }
        let blockSize = 64 * 1024
        try LogStore.create(at: dir, options: LogTestKit.options(containerSize: 16 << 20, blockSize: blockSize, codec: .lz4)).close()
        // The writer thread is held back (started only at the end): nothing is written meanwhile.
        let writer = HeldWriter()
        var options = writer.options()
        options.groupCommit.maxDirtyBytes = 256 * 1024
        let log = try LogStore.open(at: dir, options: options)
        let waited = LockedBox(false)
        log.core.waitingForSpaceForTesting = { waited.withLock { $0 = true } }
        defer {
            writer.start()
            try? log.close()
        }

        // 64 blocks of zeros: 4 MiB of buffers, about 32 KiB on disk.
        let record = [UInt8](repeating: 0, count: 16_000)
        let appends = BackgroundCall { () -> LSN in
            try await onOwnThread {
                var last = LSN.null
                for _ in 0..<256 { last = try log.append(record) }
                return last
            }
        }
        // The appender either waits for back-pressure to ease, or (the bug) appended everything.
        let settled = await eventually { waited.snapshot || appends.isFinished }
        let held = log.core.lock.withLock { log.core.state.sealed.reduce(0) { $0 + $1.buffer.count } }
        #expect(settled)
        #expect(waited.snapshot, "256 compressible appends never waited for a writer that wrote nothing")
        let bound = options.groupCommit.maxDirtyBytes + LogCore.pooledBufferSize(blockSize: blockSize)
        #expect(held <= bound, "sealed blocks hold \(held) bytes of buffers; maxDirtyBytes is \(options.groupCommit.maxDirtyBytes)")

        writer.start()
        let appended = await appends.expectSuccess("the appends once the writer runs", within: 60)
        let last = try #require(appended)
        try await log.flush(upTo: last)
        #expect(try log.read(last).data == record)
    }
}
