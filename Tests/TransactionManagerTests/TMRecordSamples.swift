// Fixed TM records: the inputs of the golden fixtures (docs/format/tm-records.md, worked examples) and
// one sample of every record kind for the codec tests. Change them only together with the spec, and
// regenerate the fixtures with TXLOG_UPDATE_FIXTURES=1.

import LogStore
@testable import TransactionManager

enum TMSample {
    static func guid(_ text: String) -> GUID {
        guard let g = GUID(text) else { preconditionFailure("bad sample GUID \(text)") }
        return g
    }

    static let tm = guid("0e0e0e0e-1111-4222-8333-444455556666")
    static let tx = guid("5f0c1a2b-3c4d-4e5f-8a6b-7c8d9e0f1a2b")
    static let rmA = guid("a1a1a1a1-0000-4000-8000-00000000000a")
    static let rmB = guid("b2b2b2b2-0000-4000-8000-00000000000b")
    static let enlistmentA = guid("e1e1e1e1-0000-4000-8000-000000000001")
    static let enlistmentB = guid("e2e2e2e2-0000-4000-8000-000000000002")

    /// The virtual clock in the header of the outcome-record fixture.
    static let clock: UInt64 = 7

    /// The transaction of the outcome-record fixture: committed, no superior, two enlistments.
    static let committed = LoggedTransaction(
        id: tx, outcome: .committed, superior: false, description: "transfer",
        enlistments: [
            LoggedEnlistment(id: enlistmentA, rm: rmA, mask: NotificationMask.twoPhase.rawValue, recoveryInformation: Array("row 17".utf8)),
            LoggedEnlistment(id: enlistmentB, rm: rmB, mask: NotificationMask.all.normalized.rawValue, recoveryInformation: []),
        ])

    /// The outcome record of the worked example (Fixtures/tm-outcome-record.bin).
    static let outcomeRecord = TMRecord.outcome(committed)

    static let rmRegisteredA = LoggedRM(id: rmA, stream: ResourceManager.streamName(for: rmA), description: "accounts")

    /// A transaction resolved by an operator before the checkpoint (its audit entry).
    static let resolvedTx = guid("c3c3c3c3-0000-4000-8000-00000000000c")

    /// The audit entry of the second worked example: a forced commit at 3:4096:0.
    static let forcedOutcome = ForcedOutcome(
        lsn: LSN(rawValue: 0x0000_0003_0000_1000), transaction: resolvedTx, action: .commit, unixNanos: 1_790_000_000_123_456_789,
        actor: "ops", reason: "lost")

    /// The checkpoint of the second worked example (Fixtures/tm-checkpoint.bin): one RM, one in-doubt
    /// transaction whose first enlistment acknowledged nothing yet, one forced outcome kept for audit.
    static let checkpoint = TMCheckpoint(
        tm: tm, coveredThrough: LSN(rawValue: 0x0000_0003_0000_2001), clock: 9, rms: [rmRegisteredA],
        transactions: [
            LoggedTransaction(
                id: tx, outcome: .undetermined, superior: true, description: "",
                enlistments: [LoggedEnlistment(id: enlistmentA, rm: rmA, mask: 0xF, acknowledged: true, recoveryInformation: [0xAB])])
        ],
        forcedOutcomes: [forcedOutcome])

    static let checkpointClock: UInt64 = 9

    /// The third worked example (Fixtures/tm-checkpoint-index.bin): the checkpoint above written in parts,
    /// as with a `maxRecordSize` of 128: slices of 128 − 28 = 100 bytes, appended at 3:8192:2, 3 and 4 (after
    /// its covered-through LSN); the index holds the length and CRC32C of the 247 bytes of tm-checkpoint.bin.
    static let partSize = 100
    static let partLSNs = [LSN(rawValue: 0x0000_0003_0000_2002), LSN(rawValue: 0x0000_0003_0000_2003), LSN(rawValue: 0x0000_0003_0000_2004)]
    static var checkpointIndex: TMCheckpointIndex {
        let bytes = TMRecord.checkpoint(checkpoint).encode(clock: checkpointClock)
        return TMCheckpointIndex(tm: tm, totalLength: UInt64(bytes.count), crc: CRC32C.checksum(bytes), parts: partLSNs)
    }
    /// The part records the index names, in order.
    static var checkpointParts: [[UInt8]] {
        let bytes = TMRecord.checkpoint(checkpoint).encode(clock: checkpointClock)
        return stride(from: 0, to: bytes.count, by: partSize).enumerated().map { i, start in
            let slice = Array(bytes[start..<min(bytes.count, start + partSize)])
            return TMRecord.checkpointPart(index: UInt32(i), count: UInt32(partLSNs.count), bytes: slice).encode(clock: checkpointClock)
        }
    }

    /// One record of every kind, with non-trivial contents.
    static let everyKind: [TMRecord] = [
        .rmRegistered(rmRegisteredA),
        .rmRegistered(LoggedRM(id: rmB, stream: "s", description: "")),
        .prepared(LoggedTransaction(id: tx, outcome: .undetermined, superior: true, description: "π ≈ 3.14", enlistments: committed.enlistments)),
        .outcome(committed),
        .outcome(LoggedTransaction(id: tx, outcome: .aborted, superior: true, description: "", enlistments: [])),
        .end(tx),
        .forced(tx: tx, action: .commit, unixNanos: 1_790_000_000_123_456_789, actor: "operator", reason: "superior lost"),
        .forced(tx: tx, action: .rollback, unixNanos: 0, actor: "", reason: ""),
        .forced(tx: tx, action: .forget, unixNanos: .max, actor: "ops", reason: "decommissioned"),
        .checkpoint(checkpoint),
        .checkpoint(TMCheckpoint(tm: tm, coveredThrough: .null, clock: 1, rms: [], transactions: [])),
        .checkpoint(TMCheckpoint(
            tm: tm, coveredThrough: LSN(rawValue: 0x0000_0004_0000_0000), clock: 3, rms: [], transactions: [],
            forcedOutcomes: [
                forcedOutcome,
                ForcedOutcome(lsn: LSN(rawValue: 0x0000_0003_0000_1001), transaction: tx, action: .forget, unixNanos: 0, actor: "", reason: ""),
                ForcedOutcome(
                    lsn: LSN(rawValue: 0x0000_0004_0000_0000), transaction: tx, action: .rollback, unixNanos: .max, actor: "π", reason: "why\nnot"),
            ])),
        .checkpointPart(index: 0, count: 2, bytes: [1, 2, 3, 4, 5]),
        .checkpointPart(index: 4, count: 5, bytes: []),
        .checkpointIndex(TMCheckpointIndex(
            tm: tm, totalLength: 70_000, crc: 0xDEAD_BEEF, parts: [LSN(rawValue: 0x0000_0003_0000_2001), LSN(rawValue: 0x0000_0004_0000_0001)])),
    ]
}
