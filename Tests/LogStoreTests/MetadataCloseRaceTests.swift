// Metadata calls racing close(). Each call changes the in-memory state every base-file update writes
// (stream table, bases, archive tails, restart areas), then writes the base file. close() ran in
// between: its last base-file update wrote the change, and the call's own update then threw `closed`
// (and undid the change in memory). A caller told "closed" found the change made after reopen. Now
// close() waits for such a call, which completes. The rule each test checks after reopen: a call that
// succeeded made its change durable; one that threw `closed` changed nothing.

import Foundation
import Testing
import Dispatch
import Synchronization
@testable import LogStore

/// How a call parked at its racy point ended, and what close() reported.
private struct RaceOutcome: Sendable {
    var call: LogError?
    var callOther: String?
    var close: String?
}

/// Runs `call` on a thread of its own until it has made its change in memory (parked in
/// `beforeMetaChangeWrittenForTesting`), then close() on another thread until close() either returned or
/// waits for the call (`closeWaitingForOperationsForTesting`), then lets the call go.
private func raceClose(_ log: LogStore, _ call: @escaping @Sendable () throws -> Void) -> RaceOutcome {
    let parked = DispatchSemaphore(value: 0)
    let release = DispatchSemaphore(value: 0)
    let progress = DispatchSemaphore(value: 0)
    let once = Atomic<Bool>(false)
    log.core.beforeMetaChangeWrittenForTesting = {
        guard !once.exchange(true, ordering: .relaxed) else { return }
        parked.signal()
        release.wait()
    }
    log.core.closeWaitingForOperationsForTesting = { progress.signal() }
    let outcome = LockedBox(RaceOutcome())
    let callDone = DispatchSemaphore(value: 0)
    Thread {
        do { try call() } catch let e as LogError { outcome.withLock { $0.call = e } } catch {
            outcome.withLock { $0.callOther = "\(error)" }
        }
        callDone.signal()
    }.start()
    parked.wait()
    let closeDone = DispatchSemaphore(value: 0)
    Thread {
        do { try log.close() } catch { outcome.withLock { $0.close = "\(error)" } }
        progress.signal()
        closeDone.signal()
    }.start()
    progress.wait()  // close() returned, or it waits for the parked call
    release.signal()
    callDone.wait()
    closeDone.wait()
    return outcome.snapshot
}

/// The rule, checked on what a reopen found: success means the change is durable, `closed` that it was
/// not made. close() waits for a call already under way, so the call succeeds.
private func expectRule(_ outcome: RaceOutcome, changed: Bool, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(outcome.callOther == nil, "\(outcome.callOther ?? "")", sourceLocation: sourceLocation)
    #expect(outcome.close == nil, "close: \(outcome.close ?? "")", sourceLocation: sourceLocation)
    if let e = outcome.call {
        #expect(e.code == .closed, "\(e)", sourceLocation: sourceLocation)
        #expect(!changed, "the call threw \(e), yet the reopened log has its change", sourceLocation: sourceLocation)
    } else {
        #expect(changed, "the call succeeded, yet the reopened log lacks its change", sourceLocation: sourceLocation)
    }
    let threw = outcome.call.map { "\($0)" } ?? ""
    #expect(outcome.call == nil, "close() did not wait for the call under way: \(threw)", sourceLocation: sourceLocation)
}

/// A tiny log at a fresh path with a few flushed records of the default stream; returns their LSNs.
private func makeLog(_ tag: String) throws -> (LogStore, String, [LSN]) {
    let dir = LogTestKit.temporaryPath(tag)
    let log = try LogStore.create(at: dir, options: FaultTestKit.tinyOptions())
    var lsns: [LSN] = []
    for i in 0..<4 { lsns.append(try log.append(LogTestKit.randomPayload(i, length: 100))) }
    try log.flush()
    return (log, dir, lsns)
}

@Suite("Metadata calls racing close(): success is durable, closed changed nothing")
struct MetadataCloseRaceTests {
    @Test func createStreamRacingClose() async throws {
        let (outcome, changed) = try await onOwnThread { () throws -> (RaceOutcome, Bool) in
            let (log, dir, _) = try makeLog("close-race-create-stream")
            defer { LogTestKit.remove(dir) }
            let outcome = raceClose(log) { _ = try log.createStream("s") }
            let again = try LogStore.open(at: dir)
            defer { try? again.close() }
            return (outcome, again.streams().contains { $0.name == "s" })
        }
        expectRule(outcome, changed: changed)
    }

    @Test func deleteStreamRacingClose() async throws {
        let (outcome, changed) = try await onOwnThread { () throws -> (RaceOutcome, Bool) in
            let (log, dir, _) = try makeLog("close-race-delete-stream")
            defer { LogTestKit.remove(dir) }
            _ = try log.createStream("s")
            let outcome = raceClose(log) { try log.deleteStream("s") }
            let again = try LogStore.open(at: dir)
            defer { try? again.close() }
            return (outcome, !again.streams().contains { $0.name == "s" })
        }
        expectRule(outcome, changed: changed)
    }

    @Test func advanceBaseRacingClose() async throws {
        let (outcome, changed) = try await onOwnThread { () throws -> (RaceOutcome, Bool) in
            let (log, dir, lsns) = try makeLog("close-race-advance-base")
            defer { LogTestKit.remove(dir) }
            let outcome = raceClose(log) { try log.advanceBase(to: lsns[2]) }
            let again = try LogStore.open(at: dir)
            defer { try? again.close() }
            return (outcome, again.defaultStream.baseLSN == lsns[2])
        }
        expectRule(outcome, changed: changed)
    }

    @Test func setArchiveTailRacingClose() async throws {
        let (outcome, changed) = try await onOwnThread { () throws -> (RaceOutcome, Bool) in
            let (log, dir, lsns) = try makeLog("close-race-archive-tail")
            defer { LogTestKit.remove(dir) }
            let outcome = raceClose(log) { try log.setArchiveTail(lsns[1]) }
            let again = try LogStore.open(at: dir)
            defer { try? again.close() }
            return (outcome, again.info().archiveTail == lsns[1])
        }
        expectRule(outcome, changed: changed)
    }

    @Test func writeRestartAreaRacingClose() async throws {
        let (outcome, changed) = try await onOwnThread { () throws -> (RaceOutcome, Bool) in
            let (log, dir, _) = try makeLog("close-race-restart-area")
            defer { LogTestKit.remove(dir) }
            let stream = try log.createStream("s")
            let first = try stream.writeRestartArea([1])
            let outcome = raceClose(log) { _ = try stream.writeRestartArea([2]) }
            let again = try LogStore.open(at: dir)
            defer { try? again.close() }
            return (outcome, try again.openStream("s").info().restartLSN != first)
        }
        expectRule(outcome, changed: changed)
    }

    /// setPolicy with a raised minimum adds the containers first. close() ran between the add and the
    /// policy's write: the call threw `closed` with the containers added (named by the base file) and
    /// the old policy in force. Both are checked: a `closed` call must have added nothing either.
    @Test func setPolicyRacingClose() async throws {
        let (outcome, policySaved, containersAdded) = try await onOwnThread { () throws -> (RaceOutcome, Bool, Bool) in
            let (log, dir, _) = try makeLog("close-race-set-policy")
            defer { LogTestKit.remove(dir) }
            let before = log.info().containers.count
            var policy = log.policy
            policy.minContainers = UInt32(before + 1)
            let raised = policy
            let outcome = raceClose(log) { try log.setPolicy(raised) }
            let again = try LogStore.open(at: dir)
            defer { try? again.close() }
            return (outcome, again.policy == raised, again.info().containers.count == before + 1)
        }
        expectRule(outcome, changed: policySaved)
        expectRule(outcome, changed: containersAdded)
    }
}
