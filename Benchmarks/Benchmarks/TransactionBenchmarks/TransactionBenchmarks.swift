// Transactions over the log, through TransactionManager and TransactionalKV. N concurrent tasks each run
// `transactionsPerClient` transactions per iteration, so one iteration is N x transactionsPerClient
// durable commits. Each transaction is createTransaction, work, `await commit()`.
// - "2pc 2 RMs": two durable bench RMs each enlist and append a 100-byte work record; commit runs
//   pre-prepare, prepare (each RM appends a prepare record, unflushed), the TM's forced decision record,
//   commit, and the lazy end record.
// - "1pc 1 RM": one bench RM appends a work record; it gets single-phase commit, appends its commit
//   record and flushes it before answering. Both should cost one shared flush per commit.
// - "kv single put": one 100-byte put per transaction in one KVStore (single-phase commit).
// Custom metrics: "commits/s" for the iteration, "commits per fdatasync x100" (from
// `log.info().statistics.syncs`), and "commit latency (us)" for every single commit.
// `txlog bench 2pc` and `txlog bench kv` measure the same with a fixed run time.

import Benchmark
import BenchFixtures
import LogStore
import TransactionManager
import TransactionalKV

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .cpuTotal, .mallocCountTotal],
        warmupIterations: 3,
        maxDuration: .seconds(2),
        maxIterations: 100_000)

    let commitMetrics = CommitMetrics()
    let metrics = Benchmark.defaultConfiguration.metrics + commitMetrics.custom
    let transactionsPerClient = 8
    let recordSize = 100

    for clients in [1, 64] {
        for twoPhase in [true, false] {
            let name = twoPhase ? "2pc 2 RMs \(clients) clients" : "1pc 1 RM \(clients) clients"
            let fixture = TransactionFixture(twoPhase ? "2pc-\(clients)" : "1pc-\(clients)")
            let mask: NotificationMask = twoPhase ? .twoPhase : .all
            Benchmark(
                name,
                configuration: .init(
                    metrics: metrics,
                    setup: { try fixture.create(benchRMs: twoPhase ? 2 : 1, recordSize: recordSize) },
                    teardown: { fixture.remove() })
            ) { benchmark in
                let tm = fixture.tm
                let rms = fixture.resourceManagers
                try await commitMetrics.measure(benchmark, log: fixture.log, clients: clients, perClient: transactionsPerClient) { _, _ in
                    let tx = try tm.createTransaction()
                    for r in rms { try r.work(tx, mask: mask) }
                    try await tx.commit()
                }
            }
        }
    }

    let kvClients = 64
    let kvFixture = TransactionFixture("kv-\(kvClients)")
    Benchmark(
        "kv single put \(kvClients) clients",
        configuration: .init(
            metrics: metrics,
            setup: { try kvFixture.create(kvStore: true) },
            teardown: { kvFixture.remove() })
    ) { benchmark in
        let tm = kvFixture.tm
        guard let store = kvFixture.store else { preconditionFailure("kv fixture without a store") }
        let value = [UInt8](repeating: 0x61, count: recordSize)
        // Each client writes its own keys (1000 per client), so transactions do not conflict; a conflict
        // would be retried.
        let base = kvFixture.counter
        kvFixture.counter &+= transactionsPerClient
        try await commitMetrics.measure(benchmark, log: kvFixture.log, clients: kvClients, perClient: transactionsPerClient) { c, k in
            let key = Array("k\(c)-\((base &+ k) % 1000)".utf8)
            while true {
                let tx = try tm.createTransaction()
                try store.begin(tx).put(key, value)
                do {
                    try await tx.commit()
                    return
                } catch let e as LogError where e.code == .conflict {
                    continue
                }
            }
        }
    }
}
