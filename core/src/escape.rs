//! Rendering untrusted bytes (directory names, state values) into one-line `key=value` logs,
//! and untrusted text into what a person's terminal shows.
//!
//! Anything outside a conservative set is percent-encoded, so no value can contain a space,
//! `=`, a newline or a control character: a hostile state file or directory name can neither
//! forge another field nor break the line.

/// Percent-encode every byte outside `[A-Za-z0-9_.:+-]`, and cap the output length.
pub fn log_value(bytes: &[u8]) -> String {
    const CAP: usize = 96;
    let mut out = String::with_capacity(bytes.len().min(CAP));
    for &b in bytes {
        if out.len() >= CAP {
            out.push_str("...");
            break;
        }
        if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'+' | b'-') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Whether a character may reach a terminal as it is: not a control character (C0, DEL, C1:
/// a newline forges a row, an escape sequence hides or rewrites the screen) and not an
/// invisible formatting one (bidirectional overrides reorder what is shown).
fn shows_as_itself(c: char) -> bool {
    !c.is_control() && !matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{061C}' | '\u{FEFF}')
}

/// Text from the volume (a state value, a file name in a message) made safe for a person's
/// terminal: every character that would not show as itself is written as an escape (`\n`,
/// `\u{1b}`), so a value stays on its own line and in its own column. JSON output needs no
/// such help (its encoder escapes control characters) and stays exact.
pub fn terminal(s: &str) -> std::borrow::Cow<'_, str> {
    if s.chars().all(shows_as_itself) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if shows_as_itself(c) {
            out.push(c);
        } else {
            out.extend(c.escape_default());
        }
    }
    std::borrow::Cow::Owned(out)
}

/// [`terminal`], for a text made of lines that are ours (a table, a report): each line is
/// escaped on its own, so only the lines' own breaks remain.
pub fn terminal_lines(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for line in s.split_inclusive('\n') {
        let (body, nl) = line.strip_suffix('\n').map_or((line, ""), |b| (b, "\n"));
        out.push_str(&terminal(body));
        out.push_str(nl);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{log_value, terminal};

    #[test]
    fn terminal_text_keeps_to_its_line_and_shows_no_escape_sequence() {
        assert_eq!(terminal("stopped"), "stopped");
        assert_eq!(terminal("caf\u{e9} \u{4e2d}"), "caf\u{e9} \u{4e2d}");
        let forged = terminal("stopped\ndefault running up 4242\x1b[8m\u{202e}x");
        assert!(!forged.contains('\n') && !forged.contains('\x1b') && !forged.contains('\u{202e}'), "{forged}");
        assert_eq!(forged, "stopped\\ndefault running up 4242\\u{1b}[8m\\u{202e}x");
    }
    use proptest::prelude::*;

    #[test]
    fn plain_values_pass_through() {
        assert_eq!(log_value(b"running"), "running");
        assert_eq!(log_value(b"startup_failed"), "startup_failed");
    }

    #[test]
    fn forging_attempts_are_neutralised() {
        assert_eq!(log_value(b"x action=started"), "x%20action%3Dstarted");
        assert_eq!(log_value(b"a\nfake line"), "a%0Afake%20line");
        assert_eq!(log_value(&[0xff, b'a']), "%FFa");
    }

    proptest! {
        #[test]
        fn never_yields_separators(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let v = log_value(&bytes);
            prop_assert!(!v.contains(' ') && !v.contains('=') && !v.contains('\n') && !v.contains('\r'));
            prop_assert!(v.len() <= 96 + 3 + 2);
        }
    }
}
