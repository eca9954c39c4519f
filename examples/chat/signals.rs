//! Signals as events: SIGINT, SIGTERM and SIGHUP are blocked and taken by a thread with
//! `sigwait`, so there is no handler and no async-signal-safety rule to keep.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::thread;

use nix::sys::signal::{SigSet, Signal};

use crate::event::Event;

/// Blocks SIGINT, SIGTERM and SIGHUP in this thread and every thread it spawns afterwards, so they
/// stay pending until [`wait_for_signals`] takes them. Call it before spawning any thread.
pub(crate) fn block_signals() -> Result<SigSet, String> {
    let mut set = SigSet::empty();
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(signal);
    }
    set.thread_block()
        .map_err(|e| format!("cannot block signals: {e}"))?;
    Ok(set)
}

/// Sends [`Event::Signal`] when one of `set` arrives, after setting `stop` if given: a loop that
/// checks it sees the signal even while events queue before it.
pub(crate) fn wait_for_signals(set: SigSet, tx: Sender<Event>, stop: Option<Arc<AtomicBool>>) {
    thread::spawn(move || {
        if set.wait().is_ok() {
            if let Some(stop) = stop {
                stop.store(true, Ordering::SeqCst);
            }
            let _ = tx.send(Event::Signal);
        }
    });
}
