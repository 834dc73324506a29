// Removing a free container while a read that looked it up (before recycling freed it) is reading it
// (docs/RELIABILITY.md, "Found by the eleventh review"). The removal closed the container's descriptor at
// once: the read then went through a closed descriptor (EBADF, reported as `io`), or through its number
// reused by another file by then.

import Dispatch
import Foundation
import Testing
@testable import LogStore

@Suite("Removing a container a read is using")
struct RemoveWhileReadingTests {
    struct Outcome: Sendable {
        var data: [UInt8]?
        var readError: LogError?
        var removal: LogError?
        var stale: [String]
        var recycled: Bool
    }

    @Test("a free container's removal waits for the read in progress on it")
    func removalWaitsForTheRead() async throws {
        let dir = FaultTestKit.temporaryPath("remove-while-reading")
        defer { FaultTestKit.remove(dir) }
        let outcome = try await onOwnThread { () throws -> Outcome in
            let io = ParkingIO(parkAt: .containerRead)
            let (log, first, lsn) = try ReadWhileRecyclingTests.twoContainerLog(dir, io: io, containers: 3)
            defer { try? log.close() }
            guard let physical = log.core.lock.withLock({ log.core.state.logicalToPhysical[first.container] }) else {
                throw LogError(.notFound, "no container holds \(first)")
            }
            let waiting = DispatchSemaphore(value: 0)
            log.core.waitingForReadsForTesting = { waiting.signal() }

            // A read of the first record parks in its pread, the container looked up.
            io.arm()
            let read = LockedBox<(data: [UInt8]?, error: LogError?)>((nil, nil))
            let readDone = DispatchSemaphore(value: 0)
            Thread {
                do {
                    let data = try log.read(first).data
                    read.withLock { $0.data = data }
                } catch {
                    read.withLock { $0.error = (error as? LogError) ?? LogError(.io, "\(error)") }
                }
                readDone.signal()
            }.start()
            io.entered.wait()

            // Recycling frees the container (it stays open, free), then it is removed.
            try log.advanceBase(to: lsn)
            let recycled = log.core.lock.withLock { log.core.state.logicalToPhysical[first.container] == nil }
            let removal = LockedBox<LogError?>(nil)
            let removed = DispatchSemaphore(value: 0)
            Thread {
                do { try log.removeContainer(physical) } catch { removal.withLock { $0 = (error as? LogError) ?? LogError(.io, "\(error)") } }
                removed.signal()
            }.start()
            // The removal either returns (having closed the descriptor under the read) or waits for the read.
            var removalReturned = false
            while true {
                if waiting.wait(timeout: .now() + .milliseconds(5)) == .success { break }
                if removed.wait(timeout: .now() + .milliseconds(5)) == .success {
                    removalReturned = true
                    break
                }
            }
            io.release.signal()
            readDone.wait()
            if !removalReturned { removed.wait() }
            let (data, readError) = read.snapshot
            return Outcome(data: data, readError: readError, removal: removal.snapshot, stale: io.stale, recycled: recycled)
        }
        #expect(outcome.recycled, "moving the base did not free the first container: the test shows nothing")
        #expect(outcome.stale.isEmpty, "a read went through a closed descriptor: \(outcome.stale)")
        #expect(outcome.removal == nil, "\(String(describing: outcome.removal))")
        // The bytes were still there (the container was free, not reused): the record, or `notFound`.
        if let e = outcome.readError {
            #expect(e.code == .notFound, "\(e)")
        } else {
            #expect(outcome.data == FaultTestKit.payload(0))
        }
    }
}
