//! Property tests: no input, however broken, makes loading a topology panic. Arbitrary text,
//! YAML-shaped fragments, and random mutations of the example must all end in either a valid
//! topology or diagnostics with positions inside the file.

mod common;

use infra_topology::{LoadError, SourceFile, load_source_resolving};
use proptest::prelude::*;

fn env(name: &str) -> Option<String> {
    common::SECRETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| (*v).to_owned())
}

/// Mutated addresses may read as host names: they are never looked up (no test sends a
/// query to a name server), and every name fails to resolve.
fn resolve(_name: &str) -> Result<Vec<std::net::IpAddr>, String> {
    Err("not looked up in this test".to_owned())
}

fn check(text: String) {
    let lines = u32::try_from(text.lines().count())
        .unwrap_or(u32::MAX)
        .max(1);
    let source = SourceFile::new(common::root().join("examples/scale-up/fuzz.yaml"), text);
    match load_source_resolving(source, &env, &resolve) {
        Ok(_) => {}
        Err(LoadError::Invalid {
            diagnostics,
            source_file,
        }) => {
            assert!(diagnostics.has_errors(), "invalid without an error");
            for diagnostic in diagnostics.sorted() {
                assert!(
                    diagnostic.position.line <= lines + 1,
                    "position past the end: {diagnostic:?}"
                );
            }
            // Rendering must not panic either.
            let _ = diagnostics.render(&source_file);
        }
        Err(LoadError::Read(error)) => panic!("no file is read for text input: {error}"),
    }
}

fn yaml_fragment() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("name: x\n".to_owned()),
        Just("hosts:\n".to_owned()),
        Just("  a: { address: 10.0.0.1 }\n".to_owned()),
        Just("web:\n  hosts: [a]\n".to_owned()),
        Just("load_balancer: { hosts: [a, b], vip: 10.0.0.9/24 }\n".to_owned()),
        Just("database: { primary: a, name: d, app_user: { name: u, password: x } }\n".to_owned()),
        Just("&anchor ".to_owned()),
        Just("*anchor\n".to_owned()),
        Just("<<: *anchor\n".to_owned()),
        Just("- ".to_owned()),
        Just("? ".to_owned()),
        Just(": ".to_owned()),
        Just("!!binary ".to_owned()),
        Just("{[".to_owned()),
        Just("\"unterminated".to_owned()),
        Just("|\n  block\n".to_owned()),
        Just("\t".to_owned()),
        Just("~\n".to_owned()),
        Just("---\n".to_owned()),
        "[ -~]{0,12}".prop_map(|s| s),
        "\\PC{0,6}".prop_map(|s| s),
    ];
    prop::collection::vec(token, 0..24).prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
        check(text);
    }

    #[test]
    fn yaml_shaped_input_never_panics(text in yaml_fragment()) {
        check(text);
    }

    #[test]
    fn mutations_of_the_example_never_panic(
        cut in 0usize..3000,
        length in 0usize..40,
        insert in "[ -~\\n]{0,8}",
    ) {
        let example = std::fs::read_to_string(common::example()).expect("example");
        let mut chars: Vec<char> = example.chars().collect();
        let start = cut.min(chars.len());
        let end = (start + length).min(chars.len());
        chars.splice(start..end, insert.chars());
        check(chars.into_iter().collect());
    }
}

#[test]
fn deeply_nested_input_is_refused_not_overflowed() {
    let depth = 10_000;
    check(format!("{}{}", "[".repeat(depth), "]".repeat(depth)));
    check(format!(
        "name: {}x{}",
        "{a: ".repeat(depth),
        "}".repeat(depth)
    ));
}

#[test]
fn an_alias_bomb_is_refused() {
    let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for level in 0..12 {
        let previous = if level == 0 {
            "a".to_owned()
        } else {
            format!("l{}", level - 1)
        };
        text.push_str(&format!("l{level}: &l{level} [*{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}]\n"));
    }
    check(text);
}
