//! Rendering untrusted bytes (directory names, state values) into one-line `key=value` logs.
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

#[cfg(test)]
mod tests {
    use super::log_value;
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
