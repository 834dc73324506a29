import Testing
@testable import LogFormat

@Suite struct LSNTests {
    @Test func roundTrip() {
        let l = LSN(container: 3, blockOffset: 8192, slot: 17)!
        #expect(l.container == 3 && l.blockOffset == 8192 && l.slot == 17)
        #expect(LSN(l.description) == l)
    }
}
