// The read cache's budget (`readCacheBytes`) counted a block's payload only (docs/RELIABILITY.md, "Found by
// the eleventh review"): the index of its records, 32 bytes a slot, is larger than the payload for small
// records (24 bytes each when empty), so a cache of such blocks held over twice its budget.

import Foundation
import LogFormat
import Testing
@testable import LogStore

@Suite("Read cache budget")
struct BlockCacheBudgetTests {
    @Test("blocks of empty records fill the cache only up to its budget, record index included")
    func recordIndexCounts() throws {
        let dir = LogTestKit.temporaryPath("cache-budget")
        defer { LogTestKit.remove(dir) }
        let perBlock = Format.maxRecordsPerBlock
        let log = try LogStore.create(at: dir, options: LogTestKit.options(containerSize: 4 << 20, blockSize: 16 * 1024, codec: .none))
        var blocks: [LSN] = []
        for _ in 0..<(40 * perBlock) {
            let lsn = try log.append([])
            if lsn.slot == 0 { blocks.append(lsn) }
        }
        try log.flush()
        try log.close()

        let budget = 256 * 1024
        var options = LogOpenOptions()
        options.readCacheBytes = budget
        let reader = try LogStore.open(at: dir, options: options)
        defer { try? reader.close() }
        for lsn in blocks { _ = try reader.read(lsn) }
        let cached = reader.core.cache.queueLength.blocks
        // What one such block holds: its payload and its record index.
        let held = perBlock * RecordHeader.size + perBlock * MemoryLayout<RecordSlot>.stride
        #expect(blocks.count == 40)
        #expect(cached > 0)
        #expect(cached * held <= budget, "\(cached) blocks of \(held) bytes cached under a \(budget)-byte budget")
        #expect(reader.info().readCacheBytes <= budget)
    }
}
