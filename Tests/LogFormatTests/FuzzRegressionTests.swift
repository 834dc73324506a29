// Replays the fuzz seed corpora (tools/fuzz/corpus/<Target>/) through the same calls the libFuzzer targets
// in tools/fuzz make, so every test run checks them (harness T6, like SQLite's fuzzcheck). An input that
// once crashed a fuzzer is added to its target's corpus directory and a named test below; none has so far
// (see docs/RELIABILITY.md for the runs).

import Foundation
import Testing
@testable import LogFormat
import TxLogTestSupport

@Suite struct FuzzRegressionTests {
    static func inputs(_ target: String) -> [[UInt8]] { FuzzCorpus.seeds(target).map(\.bytes) }

    static let identity = BlockIdentity(logSalt: 0x0123_4567_89AB_CDEF, logicalContainer: 5, blockOffset: 4096, maxEpoch: 3)

    @Test("every seed corpus is present", arguments: [
        "FuzzBaseRecord", "FuzzContainerHeader", "FuzzBlockHeader", "FuzzDecodedBlock", "FuzzRecordHeader", "FuzzTMRecord",
        "FuzzTMCheckpointParts", "FuzzKVRecord", "FuzzKVSnapshot",
    ])
    func corpusPresent(target: String) {
        #expect(!Self.inputs(target).isEmpty, "no inputs in \(FuzzCorpus.root.path)/\(target)")
    }

    @Test func baseRecordCorpus() {
        for input in Self.inputs("FuzzBaseRecord") {
            for bytes in [input, { var c = input; resealBaseCRC(&c); return c }()] {
                if let r = try? bytes.withUnsafeBytes({ try BaseRecord.decode($0) }) { _ = try? r.validate() }
            }
        }
    }

    @Test func containerHeaderCorpus() {
        for input in Self.inputs("FuzzContainerHeader") {
            for bytes in [input, { var c = input; resealContainerCRC(&c); return c }()] {
                if let h = try? bytes.withUnsafeBytes({ try ContainerHeader.decode($0) }) { _ = h.encode() }
            }
        }
    }

    @Test func blockCorpus() {
        var decoded = 0
        for input in Self.inputs("FuzzBlockHeader") + Self.inputs("FuzzDecodedBlock") {
            if let h = try? input.withUnsafeBytes({ try BlockHeader.decode($0) }) { _ = input.withUnsafeBytes { h.verifyChecksum(block: $0) } }
            for bytes in [input, { var c = input; resealBlockCRC(&c); return c }()] {
                if case .success = bytes.withUnsafeBytes({ DecodedBlock.decode($0, expecting: Self.identity, maxRawLength: 1 << 20) }) { decoded += 1 }
            }
        }
        // The seeds are the block fixtures: valid blocks of the sample identity.
        #expect(decoded >= 6)
    }

    @Test func recordCorpus() {
        for input in Self.inputs("FuzzRecordHeader") where input.count >= 2 {
            let count = (Int(input[0]) | Int(input[1]) << 8) % 513
            _ = try? DecodedBlock.parseRecords(Array(input[2...]), count: count)
        }
    }
}
