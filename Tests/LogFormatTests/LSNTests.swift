// LSN layout, ordering and text forms: docs/format/lsn.md.

import Testing
@testable import LogFormat

@Suite struct LSNTests {
    @Test func roundTrip() {
        let l = LSN(container: 3, blockOffset: 8192, slot: 17)!
        #expect(l.container == 3 && l.blockOffset == 8192 && l.slot == 17)
        #expect(LSN(l.description) == l)
    }

    @Test func bitLayout() {
        // container << 32 | (offset / 512) << 9 | slot; since the offset is a multiple of 512 the low 32
        // bits are simply offset + slot.
        #expect(LSN(container: 3, blockOffset: 8192, slot: 17)!.rawValue == 0x0000_0003_0000_2011)
        #expect(LSN(container: 5, blockOffset: 4096, slot: 2)!.rawValue == 0x0000_0005_0000_1002)
        #expect(LSN(container: 4, blockOffset: 1_047_040, slot: 2)!.rawValue == 0x0000_0004_000F_FA02)
        #expect(LSN(container: 0xFFFF_FFFF, blockOffset: LSN.maxBlockOffset, slot: 510)!.rawValue == 0xFFFF_FFFF_FFFF_FFFE)
        let l = LSN(rawValue: 0xDEAD_BEEF_1234_5678)
        #expect(l.container == 0xDEAD_BEEF)
        #expect(l.blockOffset == UInt64(0x1234_5678 >> 9) * 512)
        #expect(l.slot == 0x078)
        #expect(l.blockLSN == LSN(rawValue: 0xDEAD_BEEF_1234_5600))
    }

    @Test func splitOfEveryRawValueRebuildsIt() {
        var g = SplitMix64(seed: 1)
        for _ in 0..<2000 {
            let raw = g.next()
            let l = LSN(rawValue: raw)
            let rebuilt = LSN(container: l.container, blockOffset: l.blockOffset, slot: l.slot)
            let unchecked = LSN(uncheckedContainer: l.container, blockOffset: l.blockOffset, slot: l.slot)
            if rebuilt?.rawValue != raw || unchecked.rawValue != raw {
                Issue.record("0x\(String(raw, radix: 16)) does not rebuild from its parts")
            }
        }
    }

    @Test func limits() {
        #expect(LSN.maxBlockOffset == 4 * 1024 * 1024 * 1024 - 512)
        #expect(LSN.maxSlot == 511)
        #expect(Int(LSN.maxSlot) + 1 == Format.maxRecordsPerBlock)
        #expect(LSN(container: 1, blockOffset: LSN.maxBlockOffset, slot: 511) != nil)
    }

    @Test func outOfRangePartsGiveNil() {
        #expect(LSN(container: 1, blockOffset: 513, slot: 0) == nil)
        #expect(LSN(container: 1, blockOffset: 1, slot: 0) == nil)
        #expect(LSN(container: 1, blockOffset: LSN.maxBlockOffset + 512, slot: 0) == nil)
        #expect(LSN(container: 1, blockOffset: 1 << 32, slot: 0) == nil)
        #expect(LSN(container: 1, blockOffset: .max - 511, slot: 0) == nil)
        #expect(LSN(container: 1, blockOffset: 0, slot: 512) == nil)
        #expect(LSN(container: 1, blockOffset: 0, slot: .max) == nil)
    }

    @Test func sentinelsAreReachableThroughTheCheckedInitializer() {
        // The checked initializer does not reject the two sentinel encodings.
        #expect(LSN(container: 0, blockOffset: 0, slot: 0) == .null)
        #expect(LSN(container: 0xFFFF_FFFF, blockOffset: LSN.maxBlockOffset, slot: 511) == .invalid)
    }

    @Test func uncheckedInitializerTruncatesAnUnalignedOffset() {
        #expect(LSN(uncheckedContainer: 2, blockOffset: 8192 + 100, slot: 3) == LSN(container: 2, blockOffset: 8192, slot: 3))
    }

    /// Out-of-range parts are masked to their own field; they never spill into a neighbour.
    @Test func uncheckedInitializerOutOfRangeParts() {
        let slotTooBig = LSN(uncheckedContainer: 1, blockOffset: 0, slot: 512)
        #expect(slotTooBig.blockOffset == 0 && slotTooBig.slot == 0 && slotTooBig.container == 1)
        let offsetTooBig = LSN(uncheckedContainer: 2, blockOffset: 1 << 32, slot: 0)
        #expect(offsetTooBig.container == 2)
    }

    @Test func ordering() {
        let a = LSN(container: 1, blockOffset: 4096, slot: 511)!
        let b = LSN(container: 1, blockOffset: 4608, slot: 0)!
        let c = LSN(container: 2, blockOffset: 4096, slot: 0)!
        #expect(a < b && b < c)
        #expect(LSN.null < a && c < LSN.invalid)
        #expect(!LSN.null.isValid && !LSN.invalid.isValid && a.isValid)
        var g = SplitMix64(seed: 2)
        for _ in 0..<2000 {
            // Half the pairs share a container, so offsets and slots decide too.
            let x = LSN(rawValue: g.next())
            let y = LSN(rawValue: g.next() & 1 == 0 ? g.next() : x.rawValue & ~0xFFFF_FFFF | g.next() & 0xFFFF_FFFF)
            // Ordering by raw value is ordering by (container, offset, slot).
            let tx = (x.container, x.blockOffset, x.slot)
            let ty = (y.container, y.blockOffset, y.slot)
            if (x < y) != (x.rawValue < y.rawValue) || (x < y) != (tx < ty) || !(LSN.null <= x && x <= LSN.invalid) {
                Issue.record("ordering of \(x) and \(y)")
            }
        }
    }

    @Test func printedForms() {
        #expect(LSN.null.description == "null")
        #expect(LSN.invalid.description == "invalid")
        #expect(LSN(rawValue: 1).description == "0:0:1")
        #expect(LSN(container: 3, blockOffset: 8192, slot: 17)!.description == "3:8192:17")
        #expect(LSN(rawValue: .max - 1).description == "4294967295:4294966784:510")
    }

    @Test func parsedForms() {
        #expect(LSN("null") == .null)
        #expect(LSN("invalid") == .invalid)
        #expect(LSN("3:8192:17") == LSN(container: 3, blockOffset: 8192, slot: 17))
        #expect(LSN(" \t3:8192:17\t ") == LSN(container: 3, blockOffset: 8192, slot: 17))
        #expect(LSN("0x0000000300002011") == LSN(container: 3, blockOffset: 8192, slot: 17))
        #expect(LSN("0X300002011") == LSN(container: 3, blockOffset: 8192, slot: 17))
        #expect(LSN("0xffffffffffffffff") == .invalid)
        #expect(LSN("0x0") == .null)
        // The sentinels' numeric forms parse to the sentinels.
        #expect(LSN("0:0:0") == .null)
        #expect(LSN("4294967295:4294966784:511") == .invalid)
        // Each part is decimal digits only: no sign, no spaces inside.
        #expect(LSN("+3:8192:17") == nil)
        #expect(LSN("-0:0:1") == nil)
        #expect(LSN("0x") == nil)
        #expect(LSN("0x+1") == nil)
    }

    @Test(arguments: [
        "", " ", "NULL", "Invalid", "3", "3:8192", "3:8192:17:0", "3::17", ":8192:17", "3:8192:", "a:b:c", "3:8192:1x",
        "3:8193:17", "3:8192:512", "3:8192:65536", "4294967296:0:0", "3:4294967296:0", "3:4294967040:0", "-1:0:0",
        "3 :8192:17", "3:8192:17\n", "0x", "0xZZ", "0x1FFFFFFFFFFFFFFFF", "0x 1", "x10", "0b101",
    ])
    func badInputsGiveNil(_ text: String) {
        #expect(LSN(text) == nil, "\(text.debugDescription) should not parse")
    }

    @Test func printedAndHexFormsRoundTrip() {
        var g = SplitMix64(seed: 3)
        for _ in 0..<1000 {
            let l = LSN(rawValue: g.next())
            if LSN(l.description) != l || LSN("0x" + String(l.rawValue, radix: 16)) != l {
                Issue.record("\(l) (0x\(String(l.rawValue, radix: 16))) does not round-trip through text")
            }
        }
        for l in [LSN.null, .invalid, LSN(rawValue: 1), LSN(rawValue: .max - 1)] {
            #expect(LSN(l.description) == l)
        }
    }
}
