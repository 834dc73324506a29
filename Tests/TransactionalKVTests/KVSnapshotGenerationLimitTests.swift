// The snapshot generation is read back from the file name in the store's restart area
// (docs/format/kv-snapshot.md): a restart area may name generation 2^64 − 1, and the next checkpoint
// must not trap on `generation + 1`.

import Foundation
import LogStore
import Testing
import TransactionManager
@testable import TransactionalKV

@Suite struct KVSnapshotGenerationLimitTests {
    @Test("a store whose snapshot is generation 2^64 − 1 checkpoints again (a new name), never traps")
    func checkpointAfterTheLastGeneration() async throws {
        let world = try KVWorld(stores: 1, tag: "kv-generation-limit")
        defer { world.finish() }
        try await world.load(world.a, [("k", "v")])
        _ = try world.a.checkpoint()
        let id = world.storeIDs[0]
        try world.crash()
        // Rename the snapshot to the last generation and point the restart area at it.
        let last = KVSnapshotFile.name(store: id, generation: .max)
        let log = try LogStore.open(at: world.directory + "/log")
        let stream = try log.openStream("rm-\(id)")
        let restart = try #require(try stream.readRestartArea())
        guard case .checkpoint(var cp) = try KVRecord.decode(restart.data) else { Issue.record("not a checkpoint"); return }
        try FileManager.default.moveItem(atPath: world.dataDirectory + "/" + cp.snapshotFile, toPath: world.dataDirectory + "/" + last)
        cp.snapshotFile = last
        _ = try stream.writeRestartArea(KVRecord.checkpoint(cp).encode())
        try log.close()
        try world.reopen()
        #expect(world.contents(world.a) == ["k": "v"])
        _ = try world.a.checkpoint()
        #expect(world.snapshotFiles().count == 1 && world.snapshotFiles() != [last], "\(world.snapshotFiles())")
        try world.crashAndReopen()
        #expect(world.contents(world.a) == ["k": "v"])
    }
}
