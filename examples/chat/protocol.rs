//! The chat protocol on top of msgsock messages: message types, limits, timing, and how text from
//! a peer is made safe to print.
//!
//! Each msgsock message is one byte naming its type, then text (UTF-8 by convention):
//!
//! ```text
//! client -> server                    server -> client
//! J name  join (first message)        W line  joined: show this welcome (once)
//! M text  say a line                  T line  show this line: "ann: hi", "* bob joined"
//! L       leave                       C       the room closed
//! H       heartbeat (datagrams)       P       answer to a heartbeat (datagrams)
//!                                     X       you are not in the room (datagrams)
//!                                     E line  join refused, this is why; a stream server
//!                                             then hangs up
//! ```
//!
//! Text from a peer is untrusted: invalid UTF-8 is shown with U+FFFD, and control characters,
//! bidirectional controls and invisible format characters are escaped (`\u{1b}`, `\u{202e}`),
//! so a peer can neither crash a participant, drive its terminal, nor reorder or hide what is
//! shown. The server ignores unknown types and lines over 4096 bytes; names are cut to 32
//! characters, and a name already in the room (the host's included, in any case) is refused.
//!
//! # Datagram endpoints
//!
//! With no connection to accept or close, the server knows participants by the address their
//! datagrams come from (`msgsock::connect` binds each client an address of its own) and clients
//! send `J` and `L` explicitly. A client resends `J` every second until the server answers (at
//! most 10 times), then sends `H` every 2 seconds, which the server answers with `P`. The server
//! drops a participant it has not heard from for 10 seconds (`* bob left`); a client that has not
//! heard from the server for 10 seconds, or whose datagrams are refused (nothing bound at the
//! server's address any more: `ConnectionRefused` on `unixgram:`, ICMP port unreachable on `udp:`),
//! reports the connection lost. `CHAT_HEARTBEAT_MS` sets the heartbeat interval; the timeouts are
//! 5 times it.

use std::env;
use std::time::Duration;

/// The longest line anyone may say, in bytes: it fits one datagram of every transport, name and
/// all.
pub(crate) const MAX_LINE: usize = 4096;
/// The longest name, in characters.
const MAX_NAME: usize = 32;
/// The largest stream message the server reads, so a rogue peer cannot make it buffer 64 MiB.
pub(crate) const MAX_MESSAGE: u64 = 2 * MAX_LINE as u64;
/// A connection that has not said all of its `J` within this is closed (however it spreads its
/// bytes); a client's send to a server that stopped reading gives up after it.
pub(crate) const PEER_TIMEOUT: Duration = Duration::from_secs(5);
/// The datagram heartbeat interval unless `CHAT_HEARTBEAT_MS` sets it.
const HEARTBEAT: Duration = Duration::from_secs(2);
/// Heartbeat intervals without a word before a datagram peer counts as gone.
pub(crate) const MISSED_BEATS: u32 = 5;
/// A datagram client sends its join this often, this many times, until the server answers.
pub(crate) const JOIN_RETRY: Duration = Duration::from_secs(1);
pub(crate) const JOIN_TRIES: u32 = 10;

/// The datagram heartbeat interval: `CHAT_HEARTBEAT_MS` if set to a positive number.
pub(crate) fn heartbeat() -> Duration {
    env::var("CHAT_HEARTBEAT_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .filter(|&ms| ms > 0)
        .map_or(HEARTBEAT, Duration::from_millis)
}

/// Text from a peer, safe to print: invalid UTF-8 replaced with U+FFFD, and control characters
/// and hidden format characters escaped so they can neither break the line, move the cursor or
/// recolour the terminal, nor reorder or hide text.
pub(crate) fn printable(bytes: &[u8]) -> String {
    escaped(bytes, |c| c.is_control() || is_hidden_format(c))
}

/// `bytes` as text, with the characters `escape` picks escaped (`\u{202e}`).
fn escaped(bytes: &[u8], escape: impl Fn(char) -> bool) -> String {
    let mut text = String::with_capacity(bytes.len());
    for c in String::from_utf8_lossy(bytes).chars() {
        if escape(c) {
            text.extend(c.escape_default());
        } else {
            text.push(c);
        }
    }
    text
}

/// A format character that is not seen itself but changes how the text around it is shown:
/// bidirectional controls reorder what follows (`ann: \u{202e}olleh` reads as `ann: hello`
/// backwards, and can turn the rest of a line into what seems someone else's words), and
/// invisible ones let two names that differ look the same. Zero-width joiners are left to lines,
/// where they build emoji and shape Arabic and Indic script.
fn is_hidden_format(c: char) -> bool {
    matches!(c,
        '\u{AD}' // soft hyphen
        | '\u{61C}' // Arabic letter mark
        | '\u{180E}' // Mongolian vowel separator
        | '\u{200B}' // zero width space
        | '\u{200E}' | '\u{200F}' // left-to-right and right-to-left marks
        | '\u{2028}'..='\u{202E}' // line and paragraph separators, embeddings and overrides
        | '\u{2060}'..='\u{206F}' // word joiner, invisible operators, isolates, deprecated ones
        | '\u{FEFF}' // zero width no-break space
        | '\u{FFF9}'..='\u{FFFB}' // interlinear annotation
        | '\u{E0000}'..='\u{E007F}' // tags
    )
}

/// A character invisible in a name, or blank, which would let a newcomer pass for someone in
/// the room: the zero-width joiners, the combining grapheme joiner, and the Hangul fillers.
fn is_invisible_in_name(c: char) -> bool {
    matches!(
        c,
        '\u{200C}' | '\u{200D}' | '\u{34F}' | '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}'
    )
}

/// The name a `J` message asks for, made printable (invisible characters escaped too) and cut to
/// `MAX_NAME`; `guest` if empty.
pub(crate) fn clean_name(raw: &[u8]) -> String {
    let name = escaped(String::from_utf8_lossy(raw).trim().as_bytes(), |c| {
        c.is_control() || is_hidden_format(c) || is_invisible_in_name(c)
    });
    let name: String = name.chars().take(MAX_NAME).collect();
    if name.is_empty() {
        "guest".into()
    } else {
        name
    }
}

/// Whether two names would pass for each other: the same but for case.
pub(crate) fn same_name(a: &str, b: &str) -> bool {
    a.to_lowercase() == b.to_lowercase()
}

/// What the person is told about a line too long to send.
pub(crate) fn too_long(line: &str) -> String {
    format!(
        "* not sent: {} bytes, over the limit of {MAX_LINE}",
        line.len()
    )
}
