// TMRecord encode/decode: round trips of every kind, and total decoding: every truncation, trailing
// bytes, bad header fields, impossible counts and lengths, and random mutations give a LogError, never
// a trap.

import Foundation
import LogStore
import Testing
@testable import TransactionManager


@Suite struct TMRecordCodecTests {
    static func decodeError(_ bytes: [UInt8]) -> LogError? {
        do {
            _ = try TMRecord.decode(bytes)
            return nil
        } catch let e as LogError {
            return e
        } catch {
            Issue.record("decode threw a non-LogError: \(error)")
            return nil
        }
    }

    static func patchU32(_ bytes: inout [UInt8], at offset: Int, _ value: UInt32) {
        for i in 0..<4 { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt32(i))) }
    }

    @Test(arguments: TMSample.everyKind.indices)
    func roundTrip(_ i: Int) throws {
        let record = TMSample.everyKind[i]
        let bytes = record.encode(clock: 0x0102_0304_0506_0708)
        let (decoded, clock) = try TMRecord.decode(bytes)
        #expect(decoded == record)
        #expect(clock == 0x0102_0304_0506_0708)
        #expect(decoded.encode(clock: clock) == bytes)
    }

    @Test func headerLayout() {
        for record in TMSample.everyKind {
            let b = record.encode(clock: 7)
            #expect(Array(b[0..<4]) == Array("KTM1".utf8))
            #expect(b[4] == record.kind.rawValue)
            #expect(b[5] == 1)
            #expect(b[6] == 0 && b[7] == 0)
            #expect(Array(b[8..<16]) == [7, 0, 0, 0, 0, 0, 0, 0])
        }
        #expect(TMRecord.Kind.rmRegistered.rawValue == 1)
        #expect(TMRecord.Kind.prepared.rawValue == 2)
        #expect(TMRecord.Kind.outcome.rawValue == 3)
        #expect(TMRecord.Kind.end.rawValue == 4)
        #expect(TMRecord.Kind.forced.rawValue == 5)
        #expect(TMRecord.Kind.checkpoint.rawValue == 16)
        #expect(TMRecord.Kind.checkpointPart.rawValue == 17)
        #expect(TMRecord.Kind.checkpointIndex.rawValue == 18)
        #expect(TMRecord.checkpointPart(index: 0, count: 1, bytes: [9]).encode(clock: 1).count == TMRecord.partOverhead + 1)
        #expect(TMRecord.checkpointIndex(TMCheckpointIndex(tm: TMSample.tm, totalLength: 1, crc: 2, parts: [LSN(rawValue: 3)]))
            .encode(clock: 1).count == TMRecord.indexOverhead + 8)
        #expect(TMRecord.end(TMSample.tx).encode(clock: 1).count == 32)
    }

    @Test func everyTruncationIsCorrupt() {
        for record in TMSample.everyKind {
            let bytes = record.encode(clock: 3)
            // A checkpoint cut right before its audit section is one written before that section existed.
            var legacy: Int?
            if case .checkpoint(var cp) = record {
                cp.forcedOutcomes = []
                legacy = TMRecord.checkpoint(cp).encode(clock: 3).count - 4
            }
            for n in 0..<bytes.count {
                if n == legacy {
                    guard case .checkpoint(var cp) = record else { continue }
                    cp.forcedOutcomes = []
                    #expect((try? TMRecord.decode(Array(bytes[0..<n])))?.record == .checkpoint(cp))
                    continue
                }
                let e = Self.decodeError(Array(bytes[0..<n]))
                #expect(e?.code == .corrupt, "\(record.kind) cut to \(n) of \(bytes.count) bytes: \(String(describing: e))")
            }
        }
    }

    @Test func trailingBytesAreCorrupt() {
        for record in TMSample.everyKind {
            #expect(Self.decodeError(record.encode(clock: 1) + [0])?.code == .corrupt)
        }
    }

    @Test func badHeaderFields() {
        let good = TMRecord.end(TMSample.tx).encode(clock: 1)
        var b = good
        b[0] = 0x4A  // magic
        #expect(Self.decodeError(b)?.code == .corrupt)
        for version: UInt8 in [0, 2, 255] {
            b = good
            b[5] = version
            #expect(Self.decodeError(b)?.code == .unsupportedVersion)
        }
        for kind: UInt8 in [0, 6, 15, 19, 255] {
            b = good
            b[4] = kind
            #expect(Self.decodeError(b)?.code == .corrupt, "kind \(kind)")
        }
        // The version is checked before the kind.
        b = good
        b[4] = 99
        b[5] = 2
        #expect(Self.decodeError(b)?.code == .unsupportedVersion)
        // The reserved u16 is not checked.
        b = good
        b[6] = 0xFF
        #expect(Self.decodeError(b) == nil)
    }

    @Test func badEnumeratedFieldsAreCorrupt() {
        // Outcome record: outcome byte at 32, superior flag at 33.
        let outcome = TMSample.outcomeRecord.encode(clock: 1)
        var b = outcome
        b[32] = 3
        #expect(Self.decodeError(b)?.code == .corrupt)
        b = outcome
        b[33] = 2
        #expect(Self.decodeError(b)?.code == .corrupt)
        // Forced record: action byte at 32.
        let forced = TMRecord.forced(tx: TMSample.tx, action: .commit, unixNanos: 1, actor: "a", reason: "r").encode(clock: 1)
        for action: UInt8 in [0, 4, 255] {
            b = forced
            b[32] = action
            #expect(Self.decodeError(b)?.code == .corrupt, "action \(action)")
        }
        // Checkpoint: the acknowledged flag of the only enlistment, at 189 (docs/format/tm-records.md).
        let cp = TMRecord.checkpoint(TMSample.checkpoint).encode(clock: 9)
        b = cp
        let ackOffset = 189
        #expect(b[ackOffset] == 1)
        b[ackOffset] = 2
        #expect(Self.decodeError(b)?.code == .corrupt)
        // Text that is not UTF-8.
        let rm = TMRecord.rmRegistered(LoggedRM(id: TMSample.rmA, stream: "s", description: "ab")).encode(clock: 1)
        b = rm
        b[b.count - 1] = 0xFF
        #expect(Self.decodeError(b)?.code == .corrupt)
    }

    /// No writer emits an `outcome` record without an outcome, nor a `prepared` record with one: replayed,
    /// the first would un-decide a transaction, the second decide one that was only prepared.
    @Test func outcomeAndPreparedRecordsWithTheWrongOutcomeAreCorrupt() {
        // Outcome byte at 32 in both (docs/format/tm-records.md).
        var b = TMSample.outcomeRecord.encode(clock: 1)
        b[32] = 0
        #expect(Self.decodeError(b)?.code == .corrupt, "outcome record, outcome 0")
        b[32] = 2
        #expect(Self.decodeError(b) == nil, "outcome record, aborted")
        let prepared = TMRecord.prepared(
            LoggedTransaction(id: TMSample.tx, outcome: .undetermined, superior: true, description: "", enlistments: []))
        b = prepared.encode(clock: 1)
        #expect(Self.decodeError(b) == nil)
        for outcome: UInt8 in [1, 2] {
            b[32] = outcome
            #expect(Self.decodeError(b)?.code == .corrupt, "prepared record, outcome \(outcome)")
        }
    }

    /// Only a superior's `prepare()` writes a `prepared` record, always with the superior flag: one
    /// without it would, replayed, have recovery abort (presumed abort) a transaction in doubt.
    @Test func preparedRecordWithoutASuperiorIsCorrupt() {
        // Superior byte at 33 (docs/format/tm-records.md).
        let t = LoggedTransaction(id: TMSample.tx, outcome: .undetermined, superior: true, description: "", enlistments: [])
        var b = TMRecord.prepared(t).encode(clock: 1)
        #expect(b[33] == 1)
        b[33] = 0
        #expect(Self.decodeError(b)?.code == .corrupt)
        // An outcome record without a superior is what every commit without one writes.
        b = TMRecord.outcome(LoggedTransaction(id: TMSample.tx, outcome: .committed, superior: false, description: "", enlistments: []))
            .encode(clock: 1)
        #expect(b[33] == 0)
        #expect(Self.decodeError(b) == nil)
    }

    @Test func countsLargerThanTheRemainingBytesAreCorrupt() {
        // Checkpoint: rm count at 48, transaction count right after the empty RM list (52).
        // Audit count right after the empty transaction list (56).
        var b = TMRecord.checkpoint(TMCheckpoint(tm: TMSample.tm, coveredThrough: .null, clock: 1, rms: [], transactions: [])).encode(clock: 1)
        #expect(b.count == 60)
        for count: UInt32 in [1, 0xFFFF, 0xFFFF_FFFF] {
            var c = b
            Self.patchU32(&c, at: 48, count)
            #expect(Self.decodeError(c)?.code == .corrupt, "rm count \(count)")
            c = b
            Self.patchU32(&c, at: 52, count)
            #expect(Self.decodeError(c)?.code == .corrupt, "transaction count \(count)")
            c = b
            Self.patchU32(&c, at: 56, count)
            #expect(Self.decodeError(c)?.code == .corrupt, "audit count \(count)")
        }
        // Outcome record: description length at 34, enlistment count after the description.
        b = TMRecord.outcome(LoggedTransaction(id: TMSample.tx, outcome: .committed, superior: false, description: "", enlistments: []))
            .encode(clock: 1)
        #expect(b.count == 42)
        for count: UInt32 in [1, 0x7FFF_FFFF, 0xFFFF_FFFF] {
            var c = b
            Self.patchU32(&c, at: 38, count)
            #expect(Self.decodeError(c)?.code == .corrupt, "enlistment count \(count)")
        }
        // Lengths: beyond the remaining bytes, and beyond the field's limit.
        for length: UInt32 in [1, UInt32(TMLimits.maxDescription), UInt32(TMLimits.maxDescription) + 1, 0xFFFF_FFFF] {
            var c = b
            Self.patchU32(&c, at: 34, length)
            #expect(Self.decodeError(c)?.code == .corrupt, "description length \(length)")
        }
    }

    @Test func fieldLimitsAreEnforcedOnDecode() {
        let long = String(repeating: "x", count: TMLimits.maxDescription + 1)
        let t = LoggedTransaction(id: TMSample.tx, outcome: .committed, superior: false, description: long, enlistments: [])
        #expect(Self.decodeError(TMRecord.outcome(t).encode(clock: 1))?.code == .corrupt)
        var ok = t
        ok.description = String(long.dropLast())
        #expect(Self.decodeError(TMRecord.outcome(ok).encode(clock: 1)) == nil)
        let actor = String(repeating: "a", count: TMLimits.maxShortText + 1)
        #expect(Self.decodeError(TMRecord.forced(tx: TMSample.tx, action: .commit, unixNanos: 0, actor: actor, reason: "").encode(clock: 1))?.code == .corrupt)
        let blob = [UInt8](repeating: 1, count: TMLimits.maxRecoveryInformation + 1)
        var withBlob = ok
        withBlob.enlistments = [LoggedEnlistment(id: TMSample.enlistmentA, rm: TMSample.rmA, mask: 0xF, recoveryInformation: blob)]
        #expect(Self.decodeError(TMRecord.outcome(withBlob).encode(clock: 1))?.code == .corrupt)
        withBlob.enlistments[0].recoveryInformation.removeLast()
        #expect(Self.decodeError(TMRecord.outcome(withBlob).encode(clock: 1)) == nil)
    }

    @Test func randomMutationsNeverTrap() {
        var rng = SplitMix64(state: 0x7E57_C0DE)
        var rejected = 0
        var total = 0
        for record in TMSample.everyKind {
            let bytes = record.encode(clock: 5)
            for _ in 0..<2000 {
                var b = bytes
                for _ in 0..<Int.random(in: 1...4, using: &rng) {
                    let i = Int.random(in: 0..<b.count, using: &rng)
                    b[i] ^= UInt8.random(in: 1...255, using: &rng)
                }
                if Int.random(in: 0..<8, using: &rng) == 0 { b.removeLast(Int.random(in: 0...min(8, b.count), using: &rng)) }
                total += 1
                if Self.decodeError(b) != nil { rejected += 1 }
            }
        }
        #expect(total == TMSample.everyKind.count * 2000)
        #expect(rejected > total / 4)  // most mutations hit a checked field
        var random = SplitMix64(state: 42)
        for n in 0..<3000 {
            let b = (0..<(n % 200)).map { _ in UInt8.random(in: 0...255, using: &random) }
            _ = Self.decodeError(b)
        }
    }

    @Test func guidText() {
        let g = TMSample.tx
        #expect(g.description == "5f0c1a2b-3c4d-4e5f-8a6b-7c8d9e0f1a2b")
        #expect(g.high == 0x5F0C_1A2B_3C4D_4E5F && g.low == 0x8A6B_7C8D_9E0F_1A2B)
        #expect(GUID("5F0C1A2B3C4D4E5F8A6B7C8D9E0F1A2B") == g)
        #expect(GUID("5f0c1a2b-3c4d-4e5f-8a6b-7c8d9e0f1a2") == nil)
        #expect(GUID("5f0c1a2b-3c4d-4e5f-8a6b-7c8d9e0f1a2bb") == nil)
        #expect(GUID("5f0c1a2b-3c4d-4e5f-8a6b-7c8d9e0f1a2g") == nil)
        let r = GUID.random()
        #expect(GUID(r.description) == r)
        #expect((r.high >> 12) & 0xF == 4)  // version 4
        #expect(r.low >> 62 == 0b10)  // RFC 4122 variant
    }
}
