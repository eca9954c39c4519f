//! The person's side of a chat process: lines typed at a `>>> ` prompt become events, and lines
//! from others are shown without garbling what is being typed.
//!
//! On a terminal the prompt is a `rustyline` editor, whose `ExternalPrinter` prints an incoming
//! line above the prompt and redraws what the user was typing. With stdin or stdout not a
//! terminal (a pipe, a script) the program reads plain lines and prints no prompt.

use std::io::{self, BufRead, IsTerminal, Write};
use std::sync::mpsc::Sender;
use std::thread;

use nix::sys::termios::{self, SetArg, Termios};
use rustyline::{Config, DefaultEditor, ExternalPrinter};

use crate::event::Event;

const PROMPT: &str = ">>> ";

/// A thread reading lines, and a way to show lines without garbling the prompt.
pub(crate) struct Console {
    /// Prints above the prompt and redraws it; `None` when stdin or stdout is not a terminal.
    printer: Option<Box<dyn ExternalPrinter>>,
    /// The terminal mode to restore on exit, since the prompt may be mid-line in raw mode.
    saved: Option<Termios>,
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
        }
    }

    fn start_editor(tx: &Sender<Event>) -> Option<Console> {
        let saved = termios::tcgetattr(io::stdin()).ok()?;
        let config = Config::builder()
            .auto_add_history(true)
            // Ctrl-C stays SIGINT, handled like SIGTERM; a pasted block is one message per line.
            .enable_signals(true)
            .bracketed_paste(false)
            .build();
        let mut editor = DefaultEditor::with_config(config).ok()?;
        let printer = editor.create_external_printer().ok()?;
        let tx = tx.clone();
        thread::spawn(move || {
            while let Ok(line) = editor.readline(PROMPT) {
                if tx.send(Event::Input(line)).is_err() {
                    return;
                }
            }
            let _ = tx.send(Event::InputEnd);
        });
        Some(Console {
            printer: Some(Box::new(printer)),
            saved: Some(saved),
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
