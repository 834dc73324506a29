// Every file a log opens is closed again: by close, by recycling and removing containers, and by an
// open that fails. Counted from /proc/self/fd, looking only at the test's own directory.

import Foundation
import Testing
@testable import LogStore

@Suite("File descriptors")
struct DescriptorLeakTests {
    @Test("opening and closing a log, writable and read-only, 40 times leaves no descriptor open")
    func openCloseCycles() throws {
        let dir = LogTestKit.temporaryPath("fd-cycles")
        defer { LogTestKit.remove(dir) }
        let log = try LogStore.create(at: dir, options: LogTestKit.options(containerSize: 512 << 10, containerCount: 3))
        try log.flush(upTo: try log.append(LogTestKit.randomPayload(1, length: 100)))
        try log.close()
        #expect(openDescriptors(under: dir).isEmpty)
        for i in 0..<40 {
            let writer = try LogStore.open(at: dir)
            try writer.flush(upTo: try writer.append(LogTestKit.randomPayload(i, length: 100)))
            let held = openDescriptors(under: dir)
            let reader = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true))
            _ = try reader.read(writer.lastLSN)
            try reader.close()
            #expect(openDescriptors(under: dir) == held, "a read-only open beside the writer closed what it opened")
            if i % 8 == 0 {  // a second writer is refused (after a 250 ms retry window: not every cycle)
                #expect(throws: LogError.self) { try LogStore.open(at: dir) }
                #expect(openDescriptors(under: dir) == held, "a refused open closed what it opened")
            }
            try writer.close()
            #expect(openDescriptors(under: dir).isEmpty, "cycle \(i): \(openDescriptors(under: dir))")
        }
    }

    @Test("recycling, adding and removing containers keep descriptors bounded; close releases them all")
    func containerChurn() throws {
        let dir = LogTestKit.temporaryPath("fd-churn")
        defer { LogTestKit.remove(dir) }
        let log = try LogStore.create(at: dir, options: LogTestKit.options(containerSize: 512 << 10, containerCount: 2, blockSize: 4096))
        var added: [UInt32] = []
        var removed = 0
        for round in 0..<6 {
            // About 4 containers' worth per round, with the base following the durable end: many recyclings.
            for i in 0..<400 {
                let lsn = try log.append(LogTestKit.randomPayload(round * 1000 + i, length: 5000))
                if i % 50 == 49 {
                    try log.flush(upTo: lsn)
                    try log.advanceBase(to: log.durableLSN)
                }
            }
            added.append(try log.addContainer())
            if round % 2 == 1, let id = added.first {
                added.removeFirst()
                if (try? log.removeContainer(id)) != nil { removed += 1 }  // refused if it is the one being written
            }
            let files = LogTestKit.containerFiles(in: dir).count
            let open = openDescriptors(under: dir)
            // The base file, one descriptor per container file, and nothing else (a lock file, if any, is the base).
            #expect(open.count <= files + 1, "round \(round): \(open.count) descriptors for \(files) container files: \(open)")
        }
        #expect(log.lastLSN.container > 8, "the log went round its containers: last LSN \(log.lastLSN)")
        #expect(removed > 0, "a container was removed while open")
        try log.close()
        #expect(openDescriptors(under: dir).isEmpty, "\(openDescriptors(under: dir))")
    }

    @Test("an open that fails on a damaged log closes what it opened")
    func failedOpen() throws {
        let dir = LogTestKit.temporaryPath("fd-fail")
        defer { LogTestKit.remove(dir) }
        let log = try LogStore.create(at: dir, options: LogTestKit.options(containerSize: 512 << 10, containerCount: 2))
        try log.close()
        // A missing container: the open fails after opening the base file and the other container.
        let victim = dir + "/" + LogTestKit.containerFiles(in: dir)[1]
        try FileManager.default.moveItem(atPath: victim, toPath: victim + ".away")
        for _ in 0..<10 {
            #expect(throws: LogError.self) { try LogStore.open(at: dir) }
            #expect(throws: LogError.self) { try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true)) }
        }
        #expect(openDescriptors(under: dir).isEmpty, "\(openDescriptors(under: dir))")
    }
}
