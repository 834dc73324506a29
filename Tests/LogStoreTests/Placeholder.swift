import Testing
import Foundation
@testable import LogStore

@Suite struct SmokeTests {
    @Test func appendFlushReadReopen() async throws {
        let dir = NSTemporaryDirectory() + "txlog-smoke-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var opts = LogCreateOptions()
        opts.containerSize = 512 * 1024
        opts.containerCount = 2
        opts.blockSize = 4096
        let log = try LogStore.create(at: dir, options: opts)
        var lsns: [LSN] = []
        for i in 0..<1000 {
            lsns.append(try log.append(Array("record \(i)".utf8)))
        }
        try await log.flush(upTo: lsns.last!)
        #expect(log.durableLSN >= lsns.last!)
        for (i, l) in lsns.enumerated() {
            #expect(try log.read(l).data == Array("record \(i)".utf8))
        }
        try log.close()
        let again = try LogStore.open(at: dir)
        var c = try again.records()
        var n = 0
        while let r = try c.next() {
            #expect(r.data == Array("record \(n)".utf8))
            n += 1
        }
        #expect(n == 1000)
        try again.close()
    }
}
