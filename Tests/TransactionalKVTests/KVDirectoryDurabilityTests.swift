// The snapshot directory a store creates must itself survive a power loss: a checkpoint syncs the
// directory after renaming its snapshot into it, but the directory's own entry lives in its parent. Left
// unsynced, a power loss could take the directory, and the snapshot the restart area names, with it,
// after the base had moved past the records the snapshot replaced.

import Foundation
import LogStore
import Synchronization
import Testing
import TransactionManager
@testable import TransactionalKV

@Suite("KV snapshot directory durability")
struct KVDirectoryDurabilityTests {
    /// Records the order of directory creations and directory syncs.
    final class DirectoryCallLog: ForwardingFileIO, @unchecked Sendable {
        let base: any FileIO = PosixFileIO()
        let calls = Mutex<[String]>([])
        func makeDirectory(_ path: String) throws {
            try base.makeDirectory(path)
            calls.withLock { $0.append("mkdir \(path)") }
        }
        func fsyncDirectory(_ path: String) throws {
            try base.fsyncDirectory(path)
            calls.withLock { $0.append("sync \(path)") }
        }
    }

    @Test("opening a store in a new directory syncs that directory's parent before any checkpoint names a file in it")
    func newDirectoryEntryIsSynced() async throws {
        let w = try KVWorld(stores: 0, tag: "kv-dir-sync")
        defer { w.finish() }
        let io = DirectoryCallLog()
        let dir = w.directory + "/kv-new"
        let store = try KVStore.open(transactionManager: w.tm, id: .random(), directory: dir, io: io)
        let tx = try w.tm.createTransaction()
        try store.begin(tx).put(b("k"), b("v"))
        try await tx.commit()
        try store.checkpoint()
        store.close()
        let calls = io.calls.withLock { $0 }
        let made = calls.firstIndex(of: "mkdir \(dir)")
        let parentSynced = calls.firstIndex(of: "sync \(w.directory)")
        let snapshotSynced = calls.firstIndex(of: "sync \(dir)")
        #expect(made != nil && snapshotSynced != nil)
        #expect(parentSynced != nil && parentSynced! > made! && parentSynced! < snapshotSynced!,
                "the new directory's entry in its parent was never synced: \(calls)")
    }

    /// Lets another opener create the directory between the store's check for it and its own `mkdir`,
    /// as a store sharing the directory opened at the same time does.
    final class CreatedMeanwhile: ForwardingFileIO, @unchecked Sendable {
        let base: any FileIO = PosixFileIO()
        func makeDirectory(_ path: String) throws {
            try base.makeDirectory(path)  // the other open, first
            try base.makeDirectory(path)
        }
    }

    @Test("a store opened while another store made their shared directory opens (it found the directory missing, then mkdir said it exists)")
    func directoryMadeByAConcurrentOpen() async throws {
        let w = try KVWorld(stores: 0, tag: "kv-dir-race")
        defer { w.finish() }
        let dir = w.directory + "/kv-shared"
        let store = try KVStore.open(transactionManager: w.tm, id: .random(), directory: dir, io: CreatedMeanwhile())
        try await w.load(store, [("k", "v")])
        try store.checkpoint()
        store.close()
    }
}
