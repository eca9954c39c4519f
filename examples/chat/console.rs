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
//!
//! `ExternalPrinter::print` redraws the prompt only when it finds `readline` in raw mode;
//! otherwise it writes the line straight to the terminal. It decides before it writes, and
//! `readline` sets raw mode before it draws its prompt, so a line it found `readline` out of raw
//! mode for could land just after a prompt drawn meanwhile, which was not drawn again: the person
//! saw no `>>> `. So `readline` draws its prompt only once no line is being printed (see
//! [`Prompt::in_raw_mode`]), waiting at most `PRINT_WAIT` for that.

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
use rustyline::{CompletionType, Config, Context, Editor, ExternalPrinter, Helper};

use crate::event::Event;

const PROMPT: &str = ">>> ";
/// The longest [`Prompt::finish`] waits out `Starting`: that takes microseconds, so this only
/// bounds exit if a rustyline version stopped calling `Hinter::hint` once in raw mode.
const START_WAIT: Duration = Duration::from_secs(1);
/// The longest a starting `readline` waits for a line being printed before it draws the prompt:
/// a line is written in microseconds, so this only bounds the wait for a terminal that stopped
/// taking output, or for a print that waits on the editor to take the line before it.
const PRINT_WAIT: Duration = Duration::from_secs(1);

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
            // Tab does nothing, as without a helper (see `InRawMode`'s `Completer`).
            .completion_type(CompletionType::List)
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
        match (&mut self.printer, &self.prompt) {
            (Some(printer), Some(prompt)) => {
                let _ = prompt.printing(|| printer.print(format!("{line}\n")));
            }
            _ => say(line),
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
///
/// It also knows when the console is printing a line, which `readline` waits out before it draws
/// its prompt: see [`Prompt::in_raw_mode`].
#[derive(Default)]
struct Prompt {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    phase: Phase,
    /// The console is in `ExternalPrinter::print`, which may be writing straight to the terminal.
    printing: bool,
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
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Before `readline`: whether to call it, false once the console finished.
    fn start_line(&self) -> bool {
        let mut state = self.state();
        if state.phase == Phase::Finished {
            return false;
        }
        state.phase = Phase::Starting;
        true
    }

    /// Inside `readline`, raw mode set, and about to draw the line; the first time in a `readline`
    /// (`Starting`), the prompt, which is drawn only once no line is being printed.
    ///
    /// `ExternalPrinter::print` writes a line straight to the terminal if it finds `readline` out
    /// of raw mode, and through `readline`, which redraws the prompt below it, if in. A line it
    /// found `readline` out of raw mode for, if still being written here, would land after the
    /// prompt about to be drawn: so that wait. A line printed from here on finds raw mode set
    /// (`readline` set it before it got here) and goes through `readline`. The wait is bounded by
    /// `PRINT_WAIT`, as a print can wait on `readline` itself: one that goes through it waits,
    /// once a line it was given in an earlier `readline` is still untaken, for it to take that.
    fn in_raw_mode(&self) {
        let state = self.state();
        if state.phase != Phase::Starting {
            return;
        }
        let (mut state, _) = self
            .changed
            .wait_timeout_while(state, PRINT_WAIT, |state| state.printing)
            .unwrap_or_else(PoisonError::into_inner);
        if state.phase == Phase::Starting {
            state.phase = Phase::Editing;
            self.changed.notify_all();
        }
    }

    /// After `readline` returned, out of raw mode.
    fn end_line(&self) {
        let mut state = self.state();
        if state.phase != Phase::Finished && state.phase != Phase::Between {
            state.phase = Phase::Between;
            self.changed.notify_all();
        }
    }

    /// Runs `print`, an `ExternalPrinter::print`, saying so to a `readline` about to draw its
    /// prompt (see [`Prompt::in_raw_mode`]).
    fn printing<T>(&self, print: impl FnOnce() -> T) -> T {
        self.state().printing = true;
        let printed = print();
        self.state().printing = false;
        self.changed.notify_all();
        printed
    }

    /// Waits until `readline` is not setting raw mode, and keeps it from being called again: from
    /// here on, no thread sets raw mode. The wait is short: from `Starting`, `readline` reads
    /// nothing before it is in raw mode, or fails and returns. It is bounded all the same, by
    /// `START_WAIT`: past it the caller restores the mode anyway, which is right if `readline` is
    /// in raw mode without having said so (a rustyline that no longer hints there), but a
    /// `readline` that really is still starting could set raw mode after that restore.
    fn finish(&self) {
        let state = self.state();
        let (mut state, _) = self
            .changed
            .wait_timeout_while(state, START_WAIT, |state| state.phase == Phase::Starting)
            .unwrap_or_else(PoisonError::into_inner);
        state.phase = Phase::Finished;
    }
}

/// The editor's helper, for one thing only: `readline` asks it for a hint each time it draws the
/// line, the first time once raw mode is set and before it draws the prompt or reads a key
/// (rustyline 19: `enable_raw_mode`, then `refresh_line`, which calls `Hinter::hint` and then
/// draws), which tells [`Prompt`] that raw mode is set, and waits there for a line being
/// printed. It hints, highlights and validates nothing, and completes nothing.
struct InRawMode(Arc<Prompt>);

impl Hinter for InRawMode {
    type Hint = String;

    fn hint(&self, _line: &str, _pos: usize, _ctx: &Context<'_>) -> Option<String> {
        self.0.in_raw_mode();
        None
    }
}

/// A helper makes Tab complete, and no candidate rings the bell; one empty candidate, listed
/// (`CompletionType::List`), replaces nothing and rings nothing, as Tab did without a helper.
impl Completer for InRawMode {
    type Candidate = String;

    fn complete(
        &self,
        _line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        Ok((pos, vec![String::new()]))
    }
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
