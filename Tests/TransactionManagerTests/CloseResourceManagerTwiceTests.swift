// Closing a resource manager object that is already closed does nothing, also once the RM has been
// opened again (a new object of the same id) on the same TM.

import Foundation
import LogStore
import Testing
@testable import TransactionManager

@Suite struct CloseResourceManagerTwiceTests {
    /// Before the fix the second close of the old object removed the RM's id from the TM's table,
    /// whichever object the table held: the reopened RM stayed open outside it, a third open of the id
    /// succeeded (two open RM objects of one id), and the TM's close left the reopened RM open.
    @Test func closingAClosedRMAgainLeavesItsReopenedSuccessorOpenInTheTM() throws {
        let scratch = TMScratch("rm-close-twice")
        defer { scratch.remove() }
        let (log, tm) = try scratch.createOnline()
        defer { try? log.close() }
        let first = try tm.createResourceManager(description: "closed twice")
        first.close()
        let second = try tm.openResourceManager(id: first.id)
        try second.recover()
        first.close()  // again: nothing to do
        #expect(second.currentState == .online)
        expectLogError(.alreadyExists) { _ = try tm.openResourceManager(id: first.id) }
        try tm.close()
        #expect(second.currentState == .closed)
    }
}
