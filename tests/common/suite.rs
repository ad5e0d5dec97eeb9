//! Runs a list of test functions, each taking a backend name, on one backend:
//! `backend_tests!(sqlite, [test_a, test_b]);` makes `sqlite::test_a`, `sqlite::test_b`.
//! Each test file lists its tests once in a macro of its own and invokes it once per
//! backend, so adding a backend is one line per suite.

#[macro_export]
macro_rules! backend_tests {
    ($backend:ident, [$($test:ident),* $(,)?]) => {
        mod $backend {
            $(
                #[test]
                fn $test() {
                    super::$test(stringify!($backend));
                }
            )*
        }
    };
}
