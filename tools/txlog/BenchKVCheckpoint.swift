// `txlog bench kv`, checkpoint part: how long a checkpoint of a large store takes, and how much it
// delays the commits that run beside it. Client threads commit single-put transactions in a loop
// while, midway, another thread checkpoints; the longest commit inside the checkpoint's window is
// compared with the longest one outside it (the disk's own jitter).

import Foundation
import LogStore
import Synchronization
import TransactionManager
import TransactionalKV

extension BenchKV {
    struct CheckpointStall {
        var checkpointSeconds: Double
        /// Longest single-put commit that overlapped the checkpoint, and the longest one that did not.
        var longestDuring: Double
        var longestOutside: Double
        var commitsDuring: Int
    }

    /// Runs on an open store holding many keys: `clients` threads commit single puts of `valueSize`
    /// bytes to distinct keys (each a key written during the checkpoint).
    static func checkpointStall(tm: TransactionManager, store: KVStore, valueSize: Int, clients: Int) throws -> CheckpointStall {
        final class Shared: Sendable {
            let stop = Atomic<Bool>(false)
            /// (start, end) of each commit, in nanoseconds.
            let spans = Mutex<[(UInt64, UInt64)]>([])
            let failure = Mutex<(any Error)?>(nil)
        }
        let shared = Shared()
        let value = [UInt8](repeating: 0x63, count: valueSize)
        let finished = DispatchSemaphore(value: 0)
        for c in 0..<clients {
            Thread {
                var spans: [(UInt64, UInt64)] = []
                spans.reserveCapacity(1 << 16)
                var i = 0
                while !shared.stop.load(ordering: .relaxed) {
                    let t0 = nowNanos()
                    do {
                        let tx = try tm.createTransaction()
                        try store.begin(tx).put(Array(String(format: "stall-%02d-%06d", c, i % 100_000).utf8), value)
                        try blockingCommit(tx)
                    } catch {
                        shared.failure.withLock { $0 = $0 ?? error }
                        break
                    }
                    spans.append((t0, nowNanos()))
                    i += 1
                }
                shared.spans.withLock { $0 += spans }
                finished.signal()
            }.start()
        }
        sleepSeconds(0.3)
        let c0 = nowNanos()
        let checkpointError: (any Error)?
        do { try store.checkpoint(); checkpointError = nil } catch { checkpointError = error }
        let c1 = nowNanos()
        sleepSeconds(0.3)
        shared.stop.store(true, ordering: .relaxed)
        for _ in 0..<clients { finished.wait() }
        if let checkpointError { throw checkpointError }
        if let f = shared.failure.withLock({ $0 }) { throw BenchError("checkpoint stall: a commit failed", cause: f) }
        let spans = shared.spans.withLock { $0 }
        var during = 0.0, outside = 0.0, n = 0
        for (s, e) in spans {
            let seconds = Double(e - s) / 1e9
            if s < c1 && e > c0 {
                during = max(during, seconds)
                n += 1
            } else {
                outside = max(outside, seconds)
            }
        }
        return CheckpointStall(checkpointSeconds: Double(c1 - c0) / 1e9, longestDuring: during, longestOutside: outside, commitsDuring: n)
    }
}
