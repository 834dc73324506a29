// The time limit of a test that guards against a hang (a call that never returns), not against slowness.

import Testing

extension Trait where Self == TimeLimitTrait {
    /// A limit for tests whose time limit only catches a hang. Ten minutes: longer than a whole test run
    /// on a heavily loaded 2-core machine, so a test that merely waits for a CPU never hits it (limits of
    /// one or two minutes did, with other builds running), while a real hang still ends its test.
    /// Swift Testing counts time limits in whole minutes.
    public static var hangGuard: Self { .timeLimit(.minutes(10)) }
}
