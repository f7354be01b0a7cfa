//! Text from outside (a topology, a host's files, a host's answers) made safe to print.

use std::borrow::Cow;

/// `text` with every control character written visibly (`\x1b`, `\r`, `\t`...), so escape
/// sequences in a topology or on a host cannot move the cursor, recolour or rewrite the
/// terminal. Line breaks are kept (`\n`); use [`visible_line`] where a value must stay on one line.
pub fn visible(text: &str) -> Cow<'_, str> {
    escape(text, |c| c != '\n')
}

/// Like [`visible`], but line breaks are escaped too (`\n`).
pub fn visible_line(text: &str) -> Cow<'_, str> {
    escape(text, |_| true)
}

fn escape(text: &str, escape_this: impl Fn(char) -> bool) -> Cow<'_, str> {
    let needs = |c: char| is_control(c) && escape_this(c);
    if !text.chars().any(needs) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if needs(c) {
            match c {
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if u32::from(c) <= 0xff => out.push_str(&format!("\\x{:02x}", u32::from(c))),
                c => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Control characters, including the C1 range and the Unicode bidirectional overrides that can
/// make a line read differently from what it holds.
fn is_control(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_are_shown_not_obeyed() {
        assert_eq!(visible("a\x1b[2Jb"), "a\\x1b[2Jb");
        assert_eq!(visible("line\nnext\r"), "line\nnext\\r");
        assert_eq!(visible_line("a\nb\tc"), "a\\nb\\tc");
        assert_eq!(visible("\u{202e}txt"), "\\u{202e}txt");
        assert!(matches!(visible("plain"), Cow::Borrowed(_)));
    }
}
