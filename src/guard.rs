//! Panics caught at a boundary: a stage, a file reader, one fuzzed input.
//! A panic that does happen there becomes an error carrying its message,
//! and the rest of the run goes on.

use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs `f`; a panic inside it is `Err` with the panic's message.
pub fn catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "a panic without a message".into())
    })
}

#[cfg(test)]
mod tests {
    use super::catch;

    #[test]
    fn a_panic_is_its_message_and_a_value_passes_through() {
        assert_eq!(catch(|| 7), Ok(7));
        assert_eq!(catch(|| -> u8 { panic!("boom") }), Err("boom".into()));
        let index = 3;
        let caught = catch(|| [1, 2][index]);
        assert!(caught.unwrap_err().contains("index out of bounds"));
    }
}
