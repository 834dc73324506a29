// The first open of a store, and its first checkpoint, stopped by an I/O error at each write or sync
// they make (creating its RM's stream, registering the RM, making and syncing its directory, the
// snapshot, the restart area): after a reopen the store opens (the analog of a TM create stopped before its first checkpoint, which left a stream that
// made every later open fail).

import Foundation
import LogStore
import Synchronization
import Testing
import TransactionManager
@testable import TransactionalKV

/// Fails the `n`th write or sync (counted from `arm`) once, with EIO.
final class NthSyncFaultIO: ForwardingFileIO, Sendable {
    let base: any FileIO = PosixFileIO()
    private let state = Mutex<(armed: Bool, seen: Int, failAt: Int, fired: Bool)>((false, 0, 0, false))

    func arm(failAt n: Int) { state.withLock { $0 = (true, 0, n, false) } }
    var fired: Bool { state.withLock { $0.fired } }

    private func step() throws {
        let fail = state.withLock { s -> Bool in
            guard s.armed else { return false }
            s.seen += 1
            guard s.seen == s.failAt else { return false }
            s.fired = true
            return true
        }
        if fail { throw LogError(.io, "injected failure", errno: 5) }
    }
    func pwritev(_ fd: Int32, _ buffers: [UnsafeRawBufferPointer], at offset: UInt64) throws -> Int {
        try step()
        return try base.pwritev(fd, buffers, at: offset)
    }
    func fsync(_ fd: Int32) throws {
        try step()
        try base.fsync(fd)
    }
    func fdatasync(_ fd: Int32) throws {
        try step()
        try base.fdatasync(fd)
    }
    func fsyncDirectory(_ path: String) throws {
        try step()
        try base.fsyncDirectory(path)
    }
    func makeDirectory(_ path: String) throws {
        try step()
        try base.makeDirectory(path)
    }
}

@Suite("KV store open stopped by an I/O error")
struct KVOpenInterruptedTests {
    @Test("a first open that fails at any write or sync leaves a store that opens after the log is reopened", .hangGuard)
    func firstOpenStoppedAtEachStep() async throws {
        try await onOwnThread {
            var n = 1
            while n < 60 {
                let dir = try makeTempDirectory("kv-open-step")
                defer { try? FileManager.default.removeItem(atPath: dir) }
                let io = NthSyncFaultIO()
                let log = try LogStore.create(at: dir + "/log", options: KVWorld.tinyLog, io: io)
                let tm = try TransactionManager.create(log: log)
                try tm.recover()
                let id = GUID.random()
                io.arm(failAt: n)
                // The open and the store's first checkpoint.
                let opened = Result { () throws -> KVStore in
                    let s = try KVStore.open(transactionManager: tm, id: id, directory: dir + "/data", io: io)
                    try s.checkpoint()
                    return s
                }
                if case .success(let s) = opened {
                    s.close()
                    if !io.fired { break }  // every step has been failed once
                }
                try? tm.close()
                try? log.close()
                let log2 = try LogStore.open(at: dir + "/log")
                let tm2 = try TransactionManager.open(log: log2)
                try tm2.recover()
                do {
                    let store = try KVStore.open(transactionManager: tm2, id: id, directory: dir + "/data")
                    try store.checkpoint()
                    store.close()
                } catch {
                    Issue.record("step \(n): the store does not open after the failed first open: \(error)")
                }
                try tm2.close()
                try log2.close()
                n += 1
            }
            #expect(n > 4, "the sweep failed \(n - 1) steps")
        }
    }
}
