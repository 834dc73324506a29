// How the TM handles a resource manager's answers: every rule of which answer is allowed when.

import LogStore

extension TransactionManager {
    func answer(_ e: Enlistment, _ a: Answer) throws {
        let fx: Effects = try lock.withLock {
            let txn = e.txn
            if txn.detached { throw txn.closedError }
            var fx = Effects()
            func mismatch() -> LogError {
                LogError(.invalidState, "\(e): \(a.rawValue) was not requested (state \(e.state), expecting \(e.expecting?.rawValue ?? "nothing"))")
            }
            func phaseAnswered() {
                e.expecting = nil
                txn.pending -= 1
                if txn.pending == 0, let w = txn.phaseWaiter {
                    txn.phaseWaiter = nil
                    fx.resume.append(w)
                }
            }
            func acknowledged(_ final: EnlistmentState) {
                e.expecting = nil
                e.state = final
                e.acknowledged = true
                txn.unacknowledged -= 1
                if txn.unacknowledged == 0 { finishLocked(txn, into: &fx) }
            }
            // A late vote after a rollback overtook it is harmless: the rollback notification is out.
            if txn.cutShort, e.expecting == .rollback || e.state == .aborted,
                [.prePrepareComplete, .prepareComplete, .readOnly, .veto].contains(a)
            {
                return fx
            }
            switch a {
            case .prePrepareComplete:
                guard e.expecting == .prePrepare else { throw mismatch() }
                e.state = .prePrepared
                phaseAnswered()
            case .prepareComplete:
                guard e.expecting == .prepare else { throw mismatch() }
                e.state = .prepared
                phaseAnswered()
            case .singlePhaseReject:
                guard e.expecting == .singlePhaseCommit else { throw mismatch() }
                e.state = .active
                phaseAnswered()
            case .commitComplete:
                if e.expecting == .singlePhaseCommit {
                    e.state = .committed
                    e.acknowledged = true
                    phaseAnswered()
                } else {
                    guard e.expecting == .commit else { throw mismatch() }
                    acknowledged(.committed)
                }
            case .rollbackComplete:
                guard e.expecting == .rollback else { throw mismatch() }
                acknowledged(.aborted)
            case .readOnly:
                switch e.state {
                case .active, .prePreparing, .prePrepared, .preparing:
                    if e.expecting != nil { phaseAnswered() }
                    e.state = .readOnly
                default: throw mismatch()
                }
            case .veto:
                switch e.state {
                case .active, .prePreparing, .prePrepared, .preparing, .singlePhase:
                    guard txn.mayVeto(e) else { throw mismatch() }
                    e.state = .aborted
                    e.expecting = nil
                    e.acknowledged = true
                    fx = outcomeLocked(txn, .aborted)
                default: throw mismatch()
                }
            case .recover:
                guard e.expecting == .recover else { throw mismatch() }
                e.expecting = nil
                switch txn.outcome {
                case .committed:
                    e.state = .committing
                    e.expecting = .commit
                    fx.notify.append((e, .commit))
                case .aborted:
                    e.state = .aborting
                    e.expecting = .rollback
                    fx.notify.append((e, .rollback))
                case .undetermined:
                    e.state = .inDoubt
                    fx.notify.append((e, .inDoubt))
                }
            }
            return fx
        }
        perform(fx)
    }

    func closeEnlistment(_ e: Enlistment) {
        let fx: Effects = lock.withLock {
            if e.txn.detached { return Effects() }
            switch e.state {
            case .active, .prePreparing, .prePrepared, .preparing:
                guard e.txn.canAbort else {
                    // Takes only the outcome (no prepare), of a transaction that can no longer roll back:
                    // never logged, so owed nothing; it leaves as a read-only one does, as when its RM
                    // closes (before, it still got the commit, and the commit waited for its answer).
                    if e.state == .active, !e.acknowledged { e.leaveLocked() }
                    return Effects()
                }
                e.leaveLocked()
                return outcomeLocked(e.txn, .aborted)
            case .singlePhase where e.expecting == .singlePhaseCommit:
                // Closed without answering its single-phase commit: the outcome is the RM's (KTM's
                // RM_DISCONNECTED), as when its RM closes (before, the commit waited for it for ever).
                e.leaveLocked()
                var fx = Effects()
                fx.resume = loseSinglePhaseOutcomeLocked(e.txn)
                return fx
            default:
                // Read-only or finished: nothing to do. Prepared or later: the outcome stands and is sent
                // again when the RM recovers.
                return Effects()
            }
        }
        perform(fx)
    }

    func requestOutcome(_ e: Enlistment) throws -> Outcome {
        let (outcome, fx): (Outcome, Effects) = try lock.withLock {
            let txn = e.txn
            if txn.detached { throw txn.closedError }
            var fx = Effects()
            switch e.state {
            case .prepared, .committing, .aborting, .inDoubt: break
            default: throw LogError(.invalidState, "\(e): request-outcome is allowed only once prepared (state \(e.state))")
            }
            switch txn.outcome {
            case .committed:
                if !e.acknowledged, e.expecting == .commit { fx.notify.append((e, .commit)) }
            case .aborted:
                if !e.acknowledged, e.expecting == .rollback { fx.notify.append((e, .rollback)) }
            case .undetermined:
                if let sup = txn.superior {
                    if let h = sup.onRequestOutcome {
                        let id = txn.id
                        fx.callSuperior.append { h(id) }
                    }
                } else if txn.state == .preparing || txn.state == .prePreparing, txn.pending > 0 {
                    // Not everyone has prepared and nothing is decided: roll back now (presumed abort).
                    // Once every vote is in (the last voter asking right after its own vote, say) the
                    // driver is about to log the decision: it is sent as usual (before, a transaction
                    // every participant had prepared was rolled back here).
                    fx = outcomeLocked(txn, .aborted)
                }
            }
            return (txn.outcome, fx)
        }
        perform(fx)
        return outcome
    }
}
