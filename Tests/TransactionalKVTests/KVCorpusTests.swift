// Replays the seed corpora of the `FuzzKVRecord` and `FuzzKVSnapshot` fuzz targets (tools/fuzz) through
// the calls they make, so every test run checks the seeds even where nobody runs the fuzzers: each seed
// decodes to what its name says, and each damaged copy decodes or is refused with a typed error.

import LogFormat
import Testing
import TransactionalKV
import TxLogTestSupport

@Suite struct KVCorpusTests {
    @Test func recordSeedsDecodeAndDamagedCopiesAreTypedErrors() throws {
        let seeds = FuzzCorpus.seeds("FuzzKVRecord")
        // A seed of every kind of docs/format/kv-records.md.
        let kinds = Set(seeds.compactMap { (try? decodeKVRecordSummary($0.bytes))??.kind })
        #expect(kinds == ["prepare", "commit", "abort", "commit-one-phase", "checkpoint"])
        for (name, input) in seeds {
            let kind = try decodeKVRecordSummary(input)?.kind
            #expect(kind.map { name.hasPrefix($0 + "-record") } == true, "\(name): \(String(describing: kind))")
            #expect(describeKVRecord(input) != nil)
            for damaged in FuzzCorpus.damagedCopies(of: input, count: 500) {
                do { _ = try decodeKVRecordSummary(damaged) } catch let e as LogError {
                    #expect(e.code == .corrupt || e.code == .unsupportedVersion, "\(name): \(e)")
                }
            }
        }
    }

    @Test func snapshotSeedsValidateAndDamagedCopiesAreTypedErrors() throws {
        let seeds = FuzzCorpus.seeds("FuzzKVSnapshot")
        #expect(!seeds.isEmpty)
        for (name, input) in seeds {
            #expect(try validateKVSnapshot(input).entries > 0, "\(name)")
            // Every changed byte is caught (the CRC32C trailer covers the whole file) or cut short.
            for damaged in FuzzCorpus.damagedCopies(of: input, count: 300) {
                #expect(throws: LogError.self) { try validateKVSnapshot(damaged) }
                do { _ = try validateKVSnapshot(damaged) } catch let e as LogError {
                    #expect(e.code == .corrupt || e.code == .unsupportedVersion, "\(name): \(e)")
                }
            }
        }
    }
}
