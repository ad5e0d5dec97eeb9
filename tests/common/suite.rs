//! Runs a list of test functions, each taking a backend name, on a list of backends:
//! `backend_tests!([memory, sqlite], [test_a, test_b]);` makes `memory::test_a`, ...

#[macro_export]
macro_rules! backend_tests {
    ([$($backend:ident),* $(,)?], $tests:tt) => {
        $( $crate::backend_module!($backend, $tests); )*
    };
}

#[macro_export]
macro_rules! backend_module {
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
