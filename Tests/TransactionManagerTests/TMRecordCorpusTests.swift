// Replays the seed corpus of the `FuzzTMRecord` fuzz target (tools/fuzz) through the call it makes, so
// every test run checks the seeds even where nobody runs the fuzzer: each seed decodes to the record its
// name says, and each damaged copy decodes or is refused with a typed error, never a trap.

import LogFormat
import Testing
import TransactionManager
import TxLogTestSupport

@Suite struct TMRecordCorpusTests {
    @Test func seedsDecodeAndDamagedCopiesAreTypedErrors() throws {
        let seeds = FuzzCorpus.seeds("FuzzTMRecord")
        #expect(seeds.count >= 3)
        for (name, input) in seeds {
            let summary = try decodeTMRecordSummary(input)
            let expected = name.hasPrefix("tm-checkpoint") ? "checkpoint" : name.hasPrefix("tm-outcome") ? "outcome" : nil
            #expect(summary?.kind == expected, "\(name): \(String(describing: summary))")
            #expect(summarizeTMRecord(input) == summary)
            for damaged in FuzzCorpus.damagedCopies(of: input, count: 500) {
                do { _ = try decodeTMRecordSummary(damaged) } catch let e as LogError {
                    #expect(e.code == .corrupt || e.code == .unsupportedVersion, "\(name): \(e)")
                }
            }
        }
    }
}
