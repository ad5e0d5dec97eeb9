//! The panic guard every entry point runs under: no Rust panic crosses the C boundary.

use std::panic::{AssertUnwindSafe, catch_unwind};

use super::result::sessionstore_result::{self, SESSIONSTORE_OK, SESSIONSTORE_PANIC};
use super::result::{Outcome, set_last_error};

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    format!("internal error (Rust panic) inside sessionstore: {text}")
}

/// Runs one entry point: sets the last-error message, turns a panic into SESSIONSTORE_PANIC.
pub(super) fn call(body: impl FnOnce() -> Outcome) -> sessionstore_result {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => {
            set_last_error("");
            SESSIONSTORE_OK
        }
        Ok(Err(failure)) => {
            set_last_error(&failure.message);
            failure.code
        }
        Err(payload) => {
            set_last_error(&panic_message(payload.as_ref()));
            SESSIONSTORE_PANIC
        }
    }
}

/// Runs an entry point that cannot report a result (free functions, accessors): a panic
/// gives `fallback` and is recorded as the last error.
pub(super) fn shielded<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|payload| {
        set_last_error(&panic_message(payload.as_ref()));
        fallback
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::result::last_error_text;

    #[test]
    fn a_panic_becomes_a_result_and_a_message() {
        let result = call(|| panic!("boom"));
        assert_eq!(result, SESSIONSTORE_PANIC);
        assert!(last_error_text().contains("boom"), "{}", last_error_text());
        assert_eq!(shielded(7, || panic!("again")), 7);
        assert!(last_error_text().contains("again"));
        assert_eq!(call(|| Ok(())), SESSIONSTORE_OK);
        assert_eq!(last_error_text(), "");
    }
}
