// A read of a block still in memory (sealed, not yet written) decoded it under the log's lock
// (docs/RELIABILITY.md, "Found by the eleventh review"): decompressing and checking the block, milliseconds
// for a jumbo record's, held up every append meanwhile, and a rollback reading its records back one by one
// did it once per record. The bytes are now copied under the lock and decoded after it is let go.

import Dispatch
import Foundation
import Testing
@testable import LogStore

@Suite("Reading blocks not yet written")
struct InMemoryBlockReadTests {
    @Test("an append goes ahead while a read decodes a block held in memory")
    func decodeOutsideTheLock() async throws {
        let dir = LogTestKit.temporaryPath("memory-block-read")
        defer { LogTestKit.remove(dir) }
        try LogStore.create(at: dir, options: LogTestKit.options(containerSize: 8 << 20, blockSize: 64 * 1024, codec: .lz4)).close()
        // The writer thread is held back (started only at the end): sealed blocks stay in memory.
        let writer = HeldWriter()
        let log = try LogStore.open(at: dir, options: writer.options())
        let parked = LockedBox(false)
        let release = DispatchSemaphore(value: 0)
        defer {
            release.signal()
            writer.start()
            try? log.close()
        }
        var lsns: [LSN] = []
        for i in 0..<40 { lsns.append(try log.append(LogTestKit.randomPayload(i, length: 4000))) }
        let sealedFirst = log.core.lock.withLock { log.core.state.sealed.first?.firstLSN }
        try #require(sealedFirst == lsns[0], "the first block is not held in memory: the test shows nothing")

        // A read of the first record parks while it decodes that block.
        log.core.decodingInMemoryBlockForTesting = {
            guard parked.withLock({ p in defer { p = true }; return !p }) else { return }
            release.wait()
        }
        let first = lsns[0]
        let read = BackgroundCall { try await onOwnThread { try log.read(first).data } }
        #expect(await eventually { parked.snapshot }, "the read never decoded a block in memory")
        let append = BackgroundCall { try await onOwnThread { try log.append([1, 2, 3]) } }
        let appended = await eventually { append.isFinished }
        release.signal()
        #expect(appended, "an append waited for a read decoding a block in memory")
        await append.expectSuccess("the append")
        let data = await read.expectSuccess("the read")
        #expect(data == LogTestKit.randomPayload(0, length: 4000))
    }
}
