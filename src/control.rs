// SPDX-License-Identifier: GPL-2.0
//! Parser for the control file syntax, a subset of kprobe_events:
//!
//! ```text
//! p[:NAME] SYMBOL[+OFFS]     add a probe
//! p[:NAME] 0xADDR            add a probe at an absolute address
//! -:NAME                     remove a probe
//! o SYMBOL[+OFFS] | o 0xADDR     optimize the kprobes at that address,
//!                                whoever owns them (src/foreign.rs)
//! -o SYMBOL[+OFFS] | -o 0xADDR   stop doing so
//! # comment                  ignored, as are blank lines
//! ```
//!
//! One write may carry many lines, like kprobe_events; they must all add,
//! all remove probes, or all be `o`/`-o` requests; adds and removes are
//! applied all or nothing.
//!
//! Kernel-free and `no_std`; the host crate tests it directly.

/// Longest accepted command line, newline excluded.
pub const MAX_LINE: usize = 256;
/// Longest probe name: kprobe_events' `MAX_EVENT_NAME_LEN` (64).
pub const MAX_NAME: usize = 64;
/// Longest symbol name (kernel symbols are shorter than `KSYM_NAME_LEN`).
pub const MAX_SYMBOL: usize = 128;

/// Where a probe goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target<'a> {
    /// `SYMBOL+OFFS`.
    Symbol {
        /// Kernel symbol name.
        symbol: &'a str,
        /// Byte offset into the symbol (4-byte aligned).
        offset: u64,
    },
    /// `0xADDR`.
    Address(u64),
}

/// One parsed command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command<'a> {
    /// Add a probe. `name` is `None` when the user gave none.
    Add {
        /// The probe's name.
        name: Option<&'a str>,
        /// Where it goes.
        target: Target<'a>,
    },
    /// Remove the probe called `name`.
    Remove {
        /// The probe's name.
        name: &'a str,
    },
    /// `o` (`on`) or `-o`: optimize others' kprobes at `target`, or stop.
    Request {
        /// Where.
        target: Target<'a>,
        /// `o` rather than `-o`.
        on: bool,
    },
}

/// Why a command was refused; each maps to one errno and one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Nothing but white space.
    Empty,
    /// Longer than [`MAX_LINE`].
    TooLong,
    /// Additions and removals in one write.
    MixedCommands,
    /// Neither `p`, `-:`, `o` nor `-o`.
    UnknownCommand,
    /// Name not of `[A-Za-z_][A-Za-z0-9_]{0,31}`.
    BadName,
    /// `p` without a target.
    MissingTarget,
    /// Words after the target.
    TrailingGarbage,
    /// Symbol not of `[A-Za-z_.][A-Za-z0-9_.]*`.
    BadSymbol,
    /// Offset not a number.
    BadOffset,
    /// Address not `0x` and hex digits.
    BadAddress,
    /// Offset or address not 4-byte aligned.
    Misaligned,
}

impl ParseError {
    /// The errno to return (positive; the caller negates).
    pub const fn errno(self) -> i32 {
        match self {
            ParseError::TooLong => 7, // E2BIG
            _ => 22,                  // EINVAL
        }
    }

    /// A one-line reason for `pr_warn`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ParseError::Empty => "empty command",
            ParseError::TooLong => "command longer than 256 bytes",
            ParseError::MixedCommands => "one write may add probes, remove probes or make 'o'/'-o' requests, not a mix",
            ParseError::UnknownCommand => "command must start with 'p', '-:', 'o' or '-o'",
            ParseError::BadName => "name must be 1-64 characters of [A-Za-z0-9_], not starting with a digit",
            ParseError::MissingTarget => "missing SYMBOL[+OFFS] or 0xADDR",
            ParseError::TrailingGarbage => "unexpected text after the target",
            ParseError::BadSymbol => "symbol must be 1-128 characters of [A-Za-z0-9_.]",
            ParseError::BadOffset => "offset must be a decimal or 0x-prefixed number",
            ParseError::BadAddress => "address must be 0x followed by hex digits",
            ParseError::Misaligned => "offset or address is not 4-byte aligned",
        }
    }
}

fn is_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_NAME
        && !b[0].is_ascii_digit()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

fn is_symbol(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_SYMBOL
        && !b[0].is_ascii_digit()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'.')
}

/// Parse an unsigned number: decimal, or hex with a `0x` prefix. No sign.
fn parse_number(s: &str) -> Option<u64> {
    let (digits, radix) = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => (hex, 16),
        None => (s, 10),
    };
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

fn parse_target(s: &str) -> Result<Target<'_>, ParseError> {
    if s.starts_with("0x") || s.starts_with("0X") {
        let addr = parse_number(s).ok_or(ParseError::BadAddress)?;
        if addr % 4 != 0 {
            return Err(ParseError::Misaligned);
        }
        return Ok(Target::Address(addr));
    }
    let (symbol, offset) = match s.split_once('+') {
        Some((sym, off)) => (sym, parse_number(off).ok_or(ParseError::BadOffset)?),
        None => (s, 0),
    };
    if !is_symbol(symbol) {
        return Err(ParseError::BadSymbol);
    }
    if offset % 4 != 0 {
        return Err(ParseError::Misaligned);
    }
    Ok(Target::Symbol { symbol, offset })
}

/// Parse one command line (no newline inside; one trailing newline allowed).
pub fn parse(input: &[u8]) -> Result<Command<'_>, ParseError> {
    let input = input.strip_suffix(b"\n").unwrap_or(input);
    if input.len() > MAX_LINE {
        return Err(ParseError::TooLong);
    }
    if input.contains(&b'\n') {
        return Err(ParseError::UnknownCommand);
    }
    let line = core::str::from_utf8(input).map_err(|_| ParseError::UnknownCommand)?;
    let line = line.trim_matches(|c: char| c == ' ' || c == '\t');
    if line.is_empty() {
        return Err(ParseError::Empty);
    }
    let mut words = line.split(|c: char| c == ' ' || c == '\t').filter(|w| !w.is_empty());
    let head = words.next().ok_or(ParseError::Empty)?;

    if let Some(name) = head.strip_prefix("-:") {
        if !is_name(name) {
            return Err(ParseError::BadName);
        }
        if words.next().is_some() {
            return Err(ParseError::TrailingGarbage);
        }
        return Ok(Command::Remove { name });
    }

    if head == "o" || head == "-o" {
        let target = parse_target(words.next().ok_or(ParseError::MissingTarget)?)?;
        if words.next().is_some() {
            return Err(ParseError::TrailingGarbage);
        }
        return Ok(Command::Request { target, on: head == "o" });
    }

    let name = match head {
        "p" => None,
        _ => match head.strip_prefix("p:") {
            Some(n) if is_name(n) => Some(n),
            Some(_) => return Err(ParseError::BadName),
            None => return Err(ParseError::UnknownCommand),
        },
    };
    let target = parse_target(words.next().ok_or(ParseError::MissingTarget)?)?;
    if words.next().is_some() {
        return Err(ParseError::TrailingGarbage);
    }
    Ok(Command::Add { name, target })
}

/// What a whole write does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteKind {
    /// Every command adds a probe.
    Add,
    /// Every command removes a probe.
    Remove,
    /// Every command is an `o` or `-o` request.
    Request,
}

/// A line that carries no command: blank, or a `#` comment.
fn is_blank(line: &[u8]) -> bool {
    let mut rest = line.iter().skip_while(|c| **c == b' ' || **c == b'\t');
    matches!(rest.next(), None | Some(b'#'))
}

/// The command lines of one write, in order (blank and comment lines skipped).
pub fn command_lines(input: &[u8]) -> impl Iterator<Item = &[u8]> {
    let input = input.strip_suffix(b"\n").unwrap_or(input);
    input.split(|c| *c == b'\n').filter(|l| !is_blank(l))
}

/// Check a whole write before anything is applied: every line parses, there
/// is at least one command, and all are of one kind. Returns the kind and the
/// number of commands, or the 1-based line number of the first bad line.
pub fn check_write(input: &[u8]) -> Result<(WriteKind, usize), (usize, ParseError)> {
    let input = input.strip_suffix(b"\n").unwrap_or(input);
    let mut kind = None;
    let mut count = 0;
    for (i, line) in input.split(|c| *c == b'\n').enumerate() {
        if line.len() > MAX_LINE {
            return Err((i + 1, ParseError::TooLong));
        }
        if is_blank(line) {
            continue;
        }
        let this = match parse(line).map_err(|e| (i + 1, e))? {
            Command::Add { .. } => WriteKind::Add,
            Command::Remove { .. } => WriteKind::Remove,
            Command::Request { .. } => WriteKind::Request,
        };
        if kind.is_some_and(|k| k != this) {
            return Err((i + 1, ParseError::MixedCommands));
        }
        kind = Some(this);
        count += 1;
    }
    match kind {
        Some(k) => Ok((k, count)),
        None => Err((1, ParseError::Empty)),
    }
}

/// How much of `piece` to run now. A write over a page reaches the control
/// file in pieces of at most a page, cut anywhere; `full` says this piece
/// filled a page, so the write may go on. Then an unfinished last line is
/// left (its bytes are carried into the next piece); otherwise the piece is
/// the end of the write and all of it runs, a last line without a newline
/// too. Fails when the part left over cannot be one line.
pub fn split_piece(piece: &[u8], full: bool) -> Result<usize, ParseError> {
    let run = match piece.iter().rposition(|c| *c == b'\n') {
        _ if !full => piece.len(),
        Some(nl) => nl + 1,
        None => 0,
    };
    if piece.len() - run > MAX_LINE {
        return Err(ParseError::TooLong);
    }
    Ok(run)
}

/// Split the `probes=` module parameter into commands (separated by `;`).
pub fn split_param(param: &[u8]) -> impl Iterator<Item = &[u8]> {
    param
        .split(|c| *c == b';')
        .filter(|c| c.iter().any(|b| !b.is_ascii_whitespace()))
}
