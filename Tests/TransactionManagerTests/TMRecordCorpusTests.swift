// Replays the seed corpus of the `FuzzTMRecord` fuzz target (tools/fuzz) through the call it makes, so
// every test run checks the seeds even where nobody runs the fuzzer: each seed decodes to the record its
// name says, and each damaged copy decodes or is refused with a typed error, never a trap.

import LogFormat
import Testing
import TransactionManager
import TxLogTestSupport

@Suite struct TMRecordCorpusTests {
    /// Every kind of docs/format/tm-records.md; `checkpoint` last, so `tm-checkpoint-part…` is a part.
    static let kinds = ["rm-registered", "prepared", "outcome", "end", "forced", "checkpoint-part", "checkpoint-index", "checkpoint"]

    /// The kind a seed holds, by its name: `tm-<kind>…`.
    static func expectedKind(_ name: String) -> String? { kinds.first { name.hasPrefix("tm-\($0)") } }

    @Test func seedsDecodeAndDamagedCopiesAreTypedErrors() throws {
        let seeds = FuzzCorpus.seeds("FuzzTMRecord")
        // A seed of every kind, so the fuzzer starts from each body's layout (the seeds of kinds other than
        // checkpoint and outcome were written by an independent encoder following the document).
        #expect(Set(seeds.compactMap { Self.expectedKind($0.name) }) == Set(Self.kinds))
        for (name, input) in seeds {
            let summary = try decodeTMRecordSummary(input)
            #expect(summary?.kind == Self.expectedKind(name), "\(name): \(String(describing: summary))")
            #expect(summarizeTMRecord(input) == summary)
            for damaged in FuzzCorpus.damagedCopies(of: input, count: 500) {
                do { _ = try decodeTMRecordSummary(damaged) } catch let e as LogError {
                    #expect(e.code == .corrupt || e.code == .unsupportedVersion, "\(name): \(e)")
                }
            }
        }
    }
}
