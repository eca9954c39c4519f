//! The person's side of a chat process: lines typed at a `>>> ` prompt become events, and lines
//! from others are shown without garbling what is being typed.
//!
//! On a terminal the prompt is a `rustyline` editor, whose `ExternalPrinter` prints an incoming
//! line above the prompt and redraws what the user was typing. With stdin or stdout not a
//! terminal (a pipe, a script) the program reads plain lines and prints no prompt.
//!
//! `readline` sets raw mode each time it starts, and leaves it before it returns a line; the
//! editor thread calls it again for the next line. So that the terminal is given back in its own
//! mode when the process ends, [`Console::finish`] restores it only once no `readline` can set
//! raw mode after it, waiting at most `START_WAIT` for that: see [`Prompt`].

use std::io::{self, BufRead, IsTerminal, Write};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::Duration;

use nix::sys::termios::{self, SetArg, Termios};
use rustyline::completion::Completer;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{Config, Context, Editor, ExternalPrinter, Helper};

use crate::event::Event;

const PROMPT: &str = ">>> ";
/// The longest [`Prompt::finish`] waits out `Starting`: that takes microseconds, so this only
/// bounds exit if a rustyline version stopped calling `Hinter::hint` once in raw mode.
const START_WAIT: Duration = Duration::from_secs(1);

/// A thread reading lines, and a way to show lines without garbling the prompt.
pub(crate) struct Console {
    /// Prints above the prompt and redraws it; `None` when stdin or stdout is not a terminal.
    printer: Option<Box<dyn ExternalPrinter>>,
    /// The terminal mode to restore on exit, since the prompt may be mid-line in raw mode.
    saved: Option<Termios>,
    /// Where the editor thread is, so that restoring the mode is not undone by it.
    prompt: Option<Arc<Prompt>>,
}

impl Console {
    /// Starts reading input: each line is an [`Event::Input`], the end an [`Event::InputEnd`].
    pub(crate) fn start(tx: Sender<Event>) -> Console {
        if io::stdin().is_terminal() && io::stdout().is_terminal() {
            if let Some(console) = Console::start_editor(&tx) {
                return console;
            }
        }
        thread::spawn(move || read_plain_lines(&tx));
        Console {
            printer: None,
            saved: None,
            prompt: None,
        }
    }

    fn start_editor(tx: &Sender<Event>) -> Option<Console> {
        let saved = termios::tcgetattr(io::stdin()).ok()?;
        let config = Config::builder()
            .auto_add_history(true)
            // Ctrl-C stays SIGINT, handled like SIGTERM; a pasted block is one message per line.
            .enable_signals(true)
            .bracketed_paste(false)
            // No read of the terminal before the first `Hinter::hint` (see `InRawMode`).
            .check_cursor_position(false)
            .build();
        let prompt = Arc::new(Prompt::default());
        let mut editor = Editor::<InRawMode, DefaultHistory>::with_config(config).ok()?;
        editor.set_helper(Some(InRawMode(Arc::clone(&prompt))));
        let printer = editor.create_external_printer().ok()?;
        let (tx, shared) = (tx.clone(), Arc::clone(&prompt));
        thread::spawn(move || {
            while shared.start_line() {
                let line = editor.readline(PROMPT);
                shared.end_line();
                let Ok(line) = line else { break };
                if tx.send(Event::Input(line)).is_err() {
                    return;
                }
            }
            let _ = tx.send(Event::InputEnd);
        });
        Some(Console {
            printer: Some(Box::new(printer)),
            saved: Some(saved),
            prompt: Some(prompt),
        })
    }

    /// Shows `line`, above the prompt if there is one.
    pub(crate) fn show(&mut self, line: &str) {
        match &mut self.printer {
            Some(printer) => {
                let _ = printer.print(format!("{line}\n"));
            }
            None => say(line),
        }
    }

    /// Puts the terminal back and prints the last line, if any.
    pub(crate) fn finish(self, last: &str) {
        if let Some(prompt) = &self.prompt {
            prompt.finish();
        }
        if let Some(saved) = &self.saved {
            let _ = termios::tcsetattr(io::stdin(), SetArg::TCSADRAIN, saved);
            // Erase the prompt and whatever was typed after it.
            print!("\r\x1b[K");
        }
        if !last.is_empty() {
            say(last);
        }
        let _ = io::stdout().flush();
    }
}

/// What the editor thread is doing, as far as the terminal's mode goes. `readline` sets raw mode
/// first thing, with no way to take a lock around that inside it, and then blocks reading keys;
/// so the editor thread says it is `Starting` before it calls `readline`, [`InRawMode`] says
/// when raw mode is set, and [`Prompt::finish`] waits out `Starting` (for `START_WAIT` at most)
/// before the mode is restored.
#[derive(Default)]
struct Prompt {
    phase: Mutex<Phase>,
    changed: Condvar,
}

#[derive(Clone, Copy, Default, PartialEq)]
enum Phase {
    /// Between two lines (or before the first): not in raw mode.
    #[default]
    Between,
    /// `readline` was called and may be setting raw mode right now.
    Starting,
    /// `readline` is in raw mode, reading keys: it sets no mode until it returns, and then only
    /// the one it found, which is the terminal's own.
    Editing,
    /// [`Console::finish`] restores the mode: `readline` is never called again.
    Finished,
}

impl Prompt {
    fn phase(&self) -> MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Before `readline`: whether to call it, false once the console finished.
    fn start_line(&self) -> bool {
        let mut phase = self.phase();
        if *phase == Phase::Finished {
            return false;
        }
        *phase = Phase::Starting;
        true
    }

    /// Inside `readline`, raw mode set.
    fn in_raw_mode(&self) {
        self.set_unless_finished(Phase::Editing);
    }

    /// After `readline` returned, out of raw mode.
    fn end_line(&self) {
        self.set_unless_finished(Phase::Between);
    }

    fn set_unless_finished(&self, to: Phase) {
        let mut phase = self.phase();
        if *phase != Phase::Finished && *phase != to {
            *phase = to;
            self.changed.notify_all();
        }
    }

    /// Waits until `readline` is not setting raw mode, and keeps it from being called again: from
    /// here on, no thread sets raw mode. The wait is short: from `Starting`, `readline` reads
    /// nothing before it is in raw mode, or fails and returns. It is bounded all the same, by
    /// `START_WAIT`: past it the caller restores the mode anyway, which is right if `readline` is
    /// in raw mode without having said so (a rustyline that no longer hints there), but a
    /// `readline` that really is still starting could set raw mode after that restore.
    fn finish(&self) {
        let phase = self.phase();
        let (mut phase, _) = self
            .changed
            .wait_timeout_while(phase, START_WAIT, |phase| *phase == Phase::Starting)
            .unwrap_or_else(PoisonError::into_inner);
        *phase = Phase::Finished;
    }
}

/// The editor's helper, for one thing only: `readline` asks it for a hint each time it draws the
/// line, the first time once raw mode is set and before it reads a key (rustyline 19:
/// `enable_raw_mode`, then `refresh_line`, which calls `Hinter::hint`), which tells [`Prompt`]
/// that raw mode is set. It hints, highlights and validates nothing, and completes nothing: Tab
/// rings the bell, where an editor without a helper ignored it.
struct InRawMode(Arc<Prompt>);

impl Hinter for InRawMode {
    type Hint = String;

    fn hint(&self, _line: &str, _pos: usize, _ctx: &Context<'_>) -> Option<String> {
        self.0.in_raw_mode();
        None
    }
}

impl Completer for InRawMode {
    type Candidate = String;
}

impl Highlighter for InRawMode {}

impl Validator for InRawMode {}

impl Helper for InRawMode {}

fn read_plain_lines(tx: &Sender<Event>) {
    let mut stdin = io::stdin().lock();
    let mut line = Vec::new();
    while let Ok(1..) = stdin.read_until(b'\n', &mut line) {
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\n', '\r']).to_owned();
        line.clear();
        if tx.send(Event::Input(text)).is_err() {
            return;
        }
    }
    let _ = tx.send(Event::InputEnd);
}

/// Prints a line to stdout and flushes it. A closed stdout is no reason to leave the room.
pub(crate) fn say(line: &str) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}
