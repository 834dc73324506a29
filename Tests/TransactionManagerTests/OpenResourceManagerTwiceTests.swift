// Two opens of one registered RM racing each other: exactly one gets the RM, the other throws
// already-exists, as a second open made after the first does.

import Foundation
import LogStore
import Testing
@testable import TransactionManager

@Suite struct OpenResourceManagerTwiceTests {
    /// Before the fix both opens could pass the "already open" check before either put its RM in the
    /// TM's table: two RM objects of one id, both recovering the same enlistments (two KV stores on one
    /// stream), the first one no longer in the table.
    @Test func concurrentOpensOfOneRMYieldOneRM() async throws {
        let scratch = TMScratch("rm-open-twice")
        defer { scratch.remove() }
        let (log, tm) = try scratch.createOnline()
        defer { try? log.close() }
        let first = try tm.createResourceManager(description: "opened twice at once")
        let id = first.id
        first.close()
        let rounds = 20_000
        let doubles = try await onOwnThread { () throws -> Int in
            var doubles = 0
            for _ in 0..<rounds {
                let opened = Locked<[ResourceManager]>([])
                DispatchQueue.concurrentPerform(iterations: 2) { _ in
                    if let rm = try? tm.openResourceManager(id: id) { opened.withLock { $0.append(rm) } }
                }
                let rms = opened.withLock { $0 }
                if rms.count > 1 { doubles += 1 }
                for rm in rms { rm.close() }
            }
            return doubles
        }
        #expect(doubles == 0, "\(doubles) of \(rounds) rounds opened the RM twice")
    }
}

/// A value behind a lock, for test threads.
private final class Locked<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: T
    init(_ value: T) { self.value = value }
    func withLock<R>(_ body: (inout T) -> R) -> R { lock.withLock { body(&value) } }
}
