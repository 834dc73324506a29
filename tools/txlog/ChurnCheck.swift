// `txlog workload churn-check`: the exact invariants of the churn workload after recovery. For each client
// the stores say how far it got (n, its `seq`); n must be at least its last acknowledged transaction, and
// both stores must hold exactly what transactions 1...n leave (the model): no acknowledged write missing,
// no write of an unfinished transaction present in either store (atomic across keys and stores), no
// deleted key back. Full scans, per-client scans, scans with a limit, gets of every key a client may
// touch, and counts must all agree with the model.

import Foundation
import TransactionalKV

extension ChurnWorkload {
    struct Verdict {
        var problems: [String] = []
        var acknowledged = 0
        /// Transactions the model replayed (their writes verified), over all clients.
        var transactions = 0
        /// Keys present, and keys of the clients' key sets verified absent, over both stores.
        var present = 0, absent = 0
        var ok: Bool { problems.isEmpty }
    }

    /// Checks both stores against the model and `acknowledgedLines` (`<client> <n>`).
    func check(acknowledgedLines: [String]) -> Verdict {
        var v = Verdict()
        var lastAcked: [Int: Int] = [:]
        for line in acknowledgedLines where !line.isEmpty {
            v.acknowledged += 1
            let parts = line.split(separator: " ")
            guard parts.count == 2, let c = Int(parts[0]), let n = Int(parts[1]), n >= 1 else {
                v.problems.append("unreadable acknowledgement: \(line)")
                continue
            }
            lastAcked[c] = max(lastAcked[c] ?? 0, n)
        }
        guard let seed else {
            // The setup transaction precedes every other: without it nothing may be there.
            if v.acknowledged > 0 { v.problems.append("the workload's setup is missing, yet \(v.acknowledged) transactions were acknowledged") }
            for (s, store) in stores.enumerated() where store.count != 0 || !store.scan(limit: 1).isEmpty {
                v.problems.append("store \(s) holds \(store.count) keys before the workload's setup committed")
            }
            return v
        }
        for c in lastAcked.keys where !(0..<clients).contains(c) { v.problems.append("acknowledgement of client \(c), not one of the \(clients)") }
        var expected: [[String: ChurnValue]] = [[:], [:]]
        for c in 0..<clients {
            let through: Int
            do { through = try committedThrough(c) } catch {
                v.problems.append("\(error)")
                continue
            }
            if through < lastAcked[c] ?? 0 {
                v.problems.append("client \(c): acknowledged transaction \(lastAcked[c] ?? 0) lost (the stores hold its transactions through \(through))")
            }
            let model = ChurnModel.replay(seed: seed, client: c, through: through)
            v.transactions += through
            for s in 0..<2 { expected[s].merge(model.stores[s]) { a, _ in a } }
            compareClient(c, model, &v)
        }
        // The TM is in the same log: recovery decides every transaction, so none may stay in doubt.
        for (s, store) in stores.enumerated() where !store.inDoubtTransactions.isEmpty {
            v.problems.append("store \(s): \(store.inDoubtTransactions.count) transactions in doubt after recovery")
        }
        let meta = stores[0].get(Array(Self.metaKey.utf8)) ?? []
        for s in 0..<2 {
            var want = expected[s].map { (key: $0.key, value: $0.value.bytes) }
            if s == 0 { want.append((Self.metaKey, meta)) }
            want.sort { $0.key < $1.key }
            let all = stores[s].scan()
            compare(all, want, "store \(s): full scan", &v)
            if stores[s].count != want.count { v.problems.append("store \(s): count \(stores[s].count), the model has \(want.count) keys") }
            for limit in [1, 7] {
                compare(stores[s].scan(limit: limit), Array(want.prefix(limit)), "store \(s): scan with limit \(limit)", &v)
            }
        }
        return v
    }

    /// One client: a scan of its prefix and a get of every key it may touch, in both stores.
    private func compareClient(_ c: Int, _ model: ChurnModel, _ v: inout Verdict) {
        let p = ChurnTransaction.prefix(c)
        for s in 0..<2 {
            let want = model.stores[s].sorted { $0.key < $1.key }.map { (key: $0.key, value: $0.value.bytes) }
            compare(stores[s].scan(from: Array(p.utf8), to: Array(p.dropLast().utf8) + [UInt8(ascii: ";")]), want, "store \(s): client \(c)'s scan", &v)
            for key in ChurnTransaction.universe(c) {
                let got = stores[s].get(Array(key.utf8))
                let exp = model.stores[s][key]?.bytes
                if got != exp {
                    v.problems.append("store \(s): get \(key) gives \(describe(got)), the model \(describe(exp))")
                } else if exp == nil {
                    v.absent += 1
                } else {
                    v.present += 1
                }
            }
        }
    }

    private func compare(_ got: [(key: [UInt8], value: [UInt8])], _ want: [(key: String, value: [UInt8])], _ what: String, _ v: inout Verdict) {
        let gotKeys = got.map { String(decoding: $0.key, as: UTF8.self) }
        if gotKeys != want.map(\.key) {
            let extra = Set(gotKeys).subtracting(want.map(\.key)).sorted().prefix(5)
            let missing = Set(want.map(\.key)).subtracting(gotKeys).sorted().prefix(5)
            v.problems.append("\(what): \(got.count) keys, the model \(want.count); not in the model: \(Array(extra)), missing: \(Array(missing))")
            return
        }
        for (g, w) in zip(got, want) where g.value != w.value {
            v.problems.append("\(what): \(w.key) holds \(describe(g.value)), the model \(describe(w.value))")
        }
    }

    private func describe(_ value: [UInt8]?) -> String {
        guard let value else { return "nothing" }
        return "\(value.count) bytes \"\(String(decoding: value.prefix(24), as: UTF8.self))\""
    }
}
