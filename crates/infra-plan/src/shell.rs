//! Quoting for the POSIX shell: every value `infra` puts in a remote command goes through here.

/// Quotes `text` as one shell word: single quotes, with each `'` written as `'\''`.
pub fn quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('\'');
    for c in text.chars() {
        if c == '\'' {
            quoted.push_str("'\\''");
        } else {
            quoted.push(c);
        }
    }
    quoted.push('\'');
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// The shell gives back exactly what was quoted, whatever it holds.
    fn round_trip(text: &str) {
        let output = Command::new("sh")
            .arg("-c")
            .arg(format!("printf '%s' {}", quote(text)))
            .output()
            .expect("sh runs");
        assert_eq!(String::from_utf8_lossy(&output.stdout), text);
    }

    #[test]
    fn hostile_strings_arrive_verbatim() {
        for text in [
            "plain",
            "it's",
            "a b",
            "$(id)",
            "`id`",
            "; rm -rf /",
            "'",
            "''",
            "\"",
            "\\",
            "line\nbreak",
            "*",
            "$HOME",
            "-n",
        ] {
            round_trip(text);
        }
    }

    proptest::proptest! {
        #[test]
        fn any_text_arrives_verbatim(text in "[^\u{0}]{0,40}") {
            round_trip(&text);
        }
    }
}
