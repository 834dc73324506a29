// Metadata operations under I/O faults: an operation that throws has changed nothing, or the log is
// failed (sticky); one whose change is durable returns; no file is left that the base file does not name
// (except the documented orphan of an unlink that failed).

import Foundation
import Testing
@testable import LogStore

private typealias Kit = FaultTestKit

@Suite("Metadata operations under I/O faults")
struct MetadataFaultTests {
    /// Container files in a simulated directory.
    static func containerFiles(_ disk: SimulatedDisk, _ dir: String) throws -> [String] {
        try disk.listDirectory(dir).filter { $0.hasPrefix("container-") }
    }

    /// A log on a simulated disk whose stream table fills the base-file slot: one more stream does not fit.
    static func logWithFullSlot() throws -> (SimulatedDisk, LogStore, String) {
        let disk = SimulatedDisk()
        try disk.makeDirectory("/sim")
        let dir = "/sim/log"
        let log = try LogStore.create(at: dir, options: Kit.tinyOptions(containers: 2), io: disk)
        var k = 0
        while true {
            let name = String(format: "%05d", k) + String(repeating: "s", count: 250)
            do { _ = try log.createStream(name) } catch let e as LogError {
                #expect(e.code == .invalidArgument)
                break
            }
            k += 1
        }
        return (disk, log, dir)
    }

    @Test("addContainer refused because the base-file slot is full: nothing is left behind (no orphan file)")
    func addContainerRefusedLeavesNoFile() throws {
        let (disk, log, dir) = try Self.logWithFullSlot()
        // Containers are added until one more would not fit the slot either.
        var refused: LogError?
        for _ in 0..<1000 {
            do { _ = try log.addContainer() } catch let e as LogError {
                refused = e
                break
            }
        }
        #expect(refused?.code == .invalidArgument)
        #expect(!log.isFailed)
        let named = Set(log.info().containers.map { URL(fileURLWithPath: $0.path).lastPathComponent })
        let files = Set(try Self.containerFiles(disk, dir))
        #expect(files == named, "files on disk \(files.sorted()), base file names \(named.sorted())")
        let stray = try log.strayFiles()
        #expect(stray.isEmpty, "\(stray)")
        try log.close()
    }
}
