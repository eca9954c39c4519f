//! Error text for the examples' one-line messages, shared by `demo`, `echo`, `echo_async` and
//! `chat` (each includes this file with `#[path]`; a folder without `main.rs` is no example).

use std::error::Error;

/// An error and its sources on one line, `outer: inner: innermost`, each cause once: msgsock's
/// errors already end with their cause, and a source the text ends with is not repeated.
pub fn chain(err: &dyn Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
