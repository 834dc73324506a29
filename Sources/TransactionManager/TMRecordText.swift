// TM records for inspection tools (`txlog dump`, `txlog tm transactions`): decode bytes that may or may
// not be a TM record into a summary and a one-line text, without exposing the record types themselves.

/// What one TM record says, for display. Produced by ``summarizeTMRecord(_:)``.
public struct TMRecordSummary: Sendable, Equatable {
    /// `rm-registered`, `prepared`, `outcome`, `end`, `forced`, `checkpoint`, `checkpoint-part` or
    /// `checkpoint-index`.
    public var kind: String
    /// The virtual clock in the record's header.
    public var clock: UInt64
    /// The transaction concerned (prepared, outcome, end, forced).
    public var transactionID: GUID?
    /// The outcome logged (prepared, outcome) or forced (forced: committed, aborted, or nil for forget).
    public var outcome: Outcome?
    /// Enlistments logged with the transaction (prepared, outcome).
    public var enlistments: Int?
    /// Every transaction the record names: one for the per-transaction kinds, those owed work for a checkpoint.
    public var transactionIDs: [GUID]
    /// The one-line form, as ``describeTMRecord(_:)`` returns it.
    public var text: String
}

/// The one-line form of a TM record (kind, transaction, outcome, enlistment count, clock), or nil when
/// `bytes` are not a TM record this build can decode.
///
/// ```
/// outcome tx 5f0c…  committed  2 enlistments  clock 7
/// ```
public func describeTMRecord(_ bytes: [UInt8]) -> String? { summarizeTMRecord(bytes)?.text }

/// A summary of a TM record, or nil when `bytes` are not a TM record this build can decode.
public func summarizeTMRecord(_ bytes: [UInt8]) -> TMRecordSummary? { (try? decodeTMRecordSummary(bytes)) ?? nil }

/// As ``summarizeTMRecord(_:)``, but says why a record that is meant to be a TM record does not decode:
/// nil when `bytes` do not start with the TM record magic (another program's data); otherwise the summary,
/// or a `corrupt` / `unsupported-version` error for a damaged or newer record. `txlog dump` shows such a
/// record raw with the error as a note.
public func decodeTMRecordSummary(_ bytes: [UInt8]) throws -> TMRecordSummary? {
    guard TMRecord.hasMagic(bytes) else { return nil }
    let (record, clock) = try TMRecord.decode(bytes)
    func quoted(_ s: String) -> String {
        let short = s.count > 60 ? String(s.prefix(57)) + "..." : s
        return "\"" + short.replacing("\n", with: " ") + "\""
    }
    var s = TMRecordSummary(kind: "", clock: clock, transactionIDs: [], text: "")
    switch record {
    case .rmRegistered(let rm):
        s.kind = "rm-registered"
        s.text = "rm-registered rm \(rm.id) stream \(rm.stream)" + (rm.description.isEmpty ? "" : " \(quoted(rm.description))")
    case .prepared(let t), .outcome(let t):
        s.kind = record.kind == .prepared ? "prepared" : "outcome"
        s.transactionID = t.id
        s.transactionIDs = [t.id]
        s.outcome = t.outcome
        s.enlistments = t.enlistments.count
        let plural = t.enlistments.count == 1 ? "" : "s"
        s.text = "\(s.kind) tx \(t.id) \(t.outcome) \(t.enlistments.count) enlistment\(plural)" + (t.superior ? " superior" : "")
            + (t.description.isEmpty ? "" : " \(quoted(t.description))")
    case .end(let id):
        s.kind = "end"
        s.transactionID = id
        s.transactionIDs = [id]
        s.text = "end tx \(id)"
    case .forced(let id, let action, let nanos, let actor, let reason):
        s.kind = "forced"
        s.transactionID = id
        s.transactionIDs = [id]
        s.outcome = action == .commit ? .committed : action == .rollback ? .aborted : nil
        s.text = "forced tx \(id) \(action) by \(quoted(actor)) at \(nanos / 1_000_000_000)s" + (reason.isEmpty ? "" : " reason \(quoted(reason))")
    case .checkpoint(let cp):
        s.kind = "checkpoint"
        s.transactionIDs = cp.transactions.map(\.id)
        s.text = "checkpoint tm \(cp.tm) covers \(cp.coveredThrough) \(cp.rms.count) rms \(cp.transactions.count) transactions owed"
            + " \(cp.forcedOutcomes.count) forced outcomes kept"
    case .checkpointPart(let index, let count, let bytes):
        s.kind = "checkpoint-part"
        s.text = "checkpoint-part \(index + 1) of \(count) \(bytes.count) bytes"
    case .checkpointIndex(let x):
        s.kind = "checkpoint-index"
        s.text = "checkpoint-index tm \(x.tm) \(x.parts.count) parts \(x.totalLength) bytes first \(x.parts.first ?? .null)"
    }
    s.text += " clock \(clock)"
    return s
}
