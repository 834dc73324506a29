// A store, its TM and its log close every file they open: snapshots written by checkpoints, the data
// directory, the log's containers. Counted from /proc/self/fd, looking only at the test's directory.

import Foundation
import LogStore
import Testing
import TransactionManager
@testable import TransactionalKV

@Suite("KV file descriptors")
struct KVDescriptorTests {
    @Test("ten lives of a log, a TM and two stores, each with commits and checkpoints, leave no descriptor open")
    func lives() async throws {
        let world = try KVWorld(tag: "fd")
        defer { world.finish() }
        for life in 0..<10 {
            for i in 0..<20 {
                try await world.load(world.stores[i % 2], [("k\(i)", "life \(life)")])
            }
            for store in world.stores { try store.checkpoint() }
            try world.tm.checkpoint()
            #expect(!world.snapshotFiles().isEmpty, "the checkpoints wrote snapshot files")
            for store in world.stores { store.close() }
            try world.tm.close()
            try world.log.close()
            #expect(openDescriptors(under: world.directory).isEmpty, "life \(life): \(openDescriptors(under: world.directory))")
            try world.reopen()
            #expect(world.contents(world.a)["k0"] == "life \(life)")
        }
    }
}
