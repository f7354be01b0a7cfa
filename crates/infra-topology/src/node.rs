//! A position-aware YAML tree, used to report every unknown key at once.
//!
//! serde stops at the first unknown key; a person fixing typos wants all of them. The file is
//! read once more as a generic tree and walked against the topology's own JSON Schema, so the
//! set of known keys has one source of truth: the serde types in [`crate::raw`].

use serde::Deserialize;
use serde_json::Value;

use crate::diagnostic::Diagnostic;
use crate::raw::Sp;

/// A YAML node: a scalar, a sequence or a mapping with positioned keys.
#[derive(Debug)]
pub enum Node {
    /// A null, boolean, number or string; strings keep their text (to check enum values).
    Scalar(Option<String>),
    /// A sequence.
    Sequence(Vec<Sp<Node>>),
    /// A mapping, in file order.
    Mapping(Vec<(Sp<String>, Sp<Node>)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NodeVisitor;
        impl<'de> serde::de::Visitor<'de> for NodeVisitor {
            type Value = Node;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_bool<E>(self, _: bool) -> Result<Node, E> {
                Ok(Node::Scalar(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Node, E> {
                Ok(Node::Scalar(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Node, E> {
                Ok(Node::Scalar(None))
            }
            fn visit_i128<E>(self, _: i128) -> Result<Node, E> {
                Ok(Node::Scalar(None))
            }
            fn visit_u128<E>(self, _: u128) -> Result<Node, E> {
                Ok(Node::Scalar(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Node, E> {
                Ok(Node::Scalar(None))
            }
            fn visit_str<E>(self, text: &str) -> Result<Node, E> {
                Ok(Node::Scalar(Some(text.to_owned())))
            }
            fn visit_bytes<E>(self, _: &[u8]) -> Result<Node, E> {
                Ok(Node::Scalar(None))
            }
            fn visit_unit<E>(self) -> Result<Node, E> {
                Ok(Node::Scalar(None))
            }
            fn visit_none<E>(self) -> Result<Node, E> {
                Ok(Node::Scalar(None))
            }
            fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
                Node::deserialize(d)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Node::Sequence(items))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<Sp<KeyText>>()? {
                    let value = map.next_value()?;
                    entries.push((
                        Sp {
                            value: key.value.0,
                            position: key.position,
                        },
                        value,
                    ));
                }
                Ok(Node::Mapping(entries))
            }
        }
        deserializer.deserialize_any(NodeVisitor)
    }
}

/// A mapping key as text, whatever scalar type YAML gave it.
struct KeyText(String);

impl<'de> Deserialize<'de> for KeyText {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl serde::de::Visitor<'_> for KeyVisitor {
            type Value = KeyText;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a scalar key")
            }
            fn visit_str<E>(self, v: &str) -> Result<KeyText, E> {
                Ok(KeyText(v.to_owned()))
            }
            fn visit_bool<E>(self, v: bool) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_unit<E>(self) -> Result<KeyText, E> {
                Ok(KeyText("~".to_owned()))
            }
        }
        deserializer.deserialize_any(KeyVisitor)
    }
}

/// Walks `node` against `schema` (the topology's JSON Schema) and reports every key that the
/// schema does not allow, with a "did you mean" hint when a known key is close.
pub fn unknown_keys(node: &Sp<Node>, schema: &Value) -> Vec<Diagnostic> {
    let mut found = Vec::new();
    walk(node, schema, schema, &mut Vec::new(), &mut found);
    found
}

fn walk(
    node: &Sp<Node>,
    schema: &Value,
    root: &Value,
    path: &mut Vec<String>,
    found: &mut Vec<Diagnostic>,
) {
    if let (Node::Scalar(Some(text)), Some(allowed)) = (&node.value, allowed_values(schema, root)) {
        if !allowed.iter().any(|a| a == text) {
            found.push(unknown_value(node.position, text, path, &allowed));
        }
        return;
    }
    let Some(schema) = object_schema(schema, root) else {
        return;
    };
    match &node.value {
        Node::Scalar(_) => {}
        Node::Sequence(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (index, item) in items.iter().enumerate() {
                    path.push(format!("[{index}]"));
                    walk(item, item_schema, root, path, found);
                    path.pop();
                }
            }
        }
        Node::Mapping(entries) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties");
            for required in schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let Some(required) = required.as_str() else {
                    continue;
                };
                // A misspelt key is reported once, as unknown with a "did you mean", not
                // also as the missing key it was meant to be.
                let misspelt = entries.iter().any(|(key, _)| {
                    properties.is_some_and(|p| !p.contains_key(&key.value))
                        && closest(&key.value, &[required]).is_some()
                });
                if !misspelt && !entries.iter().any(|(key, _)| key.value == required) {
                    let description = properties
                        .and_then(|p| p.get(required))
                        .and_then(|p| p.get("description"))
                        .and_then(Value::as_str)
                        .unwrap_or("see docs/topology.md");
                    let mut d = Diagnostic::error(
                        node.position,
                        format!("missing key `{required}` {}", place(path)),
                    );
                    d.expected(format!(
                        "`{required}`: {}",
                        description.lines().next().unwrap_or_default()
                    ));
                    found.push(d);
                }
            }
            for (key, value) in entries {
                path.push(key.value.clone());
                if let Some(property) = properties.and_then(|p| p.get(&key.value)) {
                    walk(value, property, root, path, found);
                } else {
                    match additional {
                        Some(Value::Bool(false)) => {
                            let known: Vec<&str> = properties
                                .map(|p| p.keys().map(String::as_str).collect())
                                .unwrap_or_default();
                            found.push(unknown_key(key, &path[..path.len() - 1], &known));
                        }
                        Some(extra) if extra.is_object() => walk(value, extra, root, path, found),
                        _ => {}
                    }
                }
                path.pop();
            }
        }
    }
}

fn place(path: &[String]) -> String {
    if path.is_empty() {
        "at the top level".to_owned()
    } else {
        format!("in `{}`", path.join(".").replace(".[", "["))
    }
}

fn unknown_key(key: &Sp<String>, parent: &[String], known: &[&str]) -> Diagnostic {
    let place = place(parent);
    let mut diagnostic =
        Diagnostic::error(key.position, format!("unknown key `{}` {place}", key.value));
    diagnostic.expected(format!("one of {}", list(known)));
    if let Some(close) = closest(&key.value, known) {
        diagnostic.hint(format!("did you mean `{close}`?"));
    }
    diagnostic
}

fn unknown_value(
    position: crate::source::Position,
    text: &str,
    path: &[String],
    allowed: &[String],
) -> Diagnostic {
    let known: Vec<&str> = allowed.iter().map(String::as_str).collect();
    let mut diagnostic = Diagnostic::error(
        position,
        format!(
            "unknown value `{text}` for `{}`",
            path.join(".").replace(".[", "[")
        ),
    );
    diagnostic.expected(format!("one of {}", list(&known)));
    if let Some(close) = closest(text, &known) {
        diagnostic.hint(format!("did you mean `{close}`?"));
    }
    diagnostic
}

/// The values a string field may take, when its schema lists them (an enum).
fn allowed_values(schema: &Value, root: &Value) -> Option<Vec<String>> {
    let mut current = schema;
    for _ in 0..16 {
        if let Some(reference) = current.get("$ref").and_then(Value::as_str) {
            let name = reference.strip_prefix("#/$defs/")?;
            current = root.get("$defs")?.get(name)?;
            continue;
        }
        if let Some(values) = current.get("enum").and_then(Value::as_array) {
            return values
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect();
        }
        let choices = current
            .get("oneOf")
            .or_else(|| current.get("anyOf"))
            .and_then(Value::as_array)?;
        let consts: Option<Vec<String>> = choices
            .iter()
            .filter(|c| c.get("type").and_then(Value::as_str) != Some("null"))
            .map(|c| c.get("const").and_then(Value::as_str).map(str::to_owned))
            .collect();
        if let Some(consts) = consts.filter(|c| !c.is_empty()) {
            return Some(consts);
        }
        let non_null: Vec<&Value> = choices
            .iter()
            .filter(|c| c.get("type").and_then(Value::as_str) != Some("null"))
            .collect();
        match non_null.as_slice() {
            [only] => current = only,
            _ => return None,
        }
    }
    None
}

/// Quotes and joins names for a message: `` `a`, `b` or `c` ``.
pub fn list(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    match quoted.split_last() {
        None => "nothing".to_owned(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

/// The known name closest to `word` by edit distance, if it is close enough to be a typo.
pub fn closest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (edit_distance(word, k), *k))
        .filter(|(d, k)| *d <= (k.len() / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

/// Resolves `$ref` and `Option` wrappers (`anyOf` with `null`) down to an object, array or map
/// schema.
fn object_schema<'a>(schema: &'a Value, root: &'a Value) -> Option<&'a Value> {
    let mut current = schema;
    for _ in 0..16 {
        if let Some(reference) = current.get("$ref").and_then(Value::as_str) {
            let name = reference.strip_prefix("#/$defs/")?;
            current = root.get("$defs")?.get(name)?;
            continue;
        }
        if let Some(choices) = current
            .get("anyOf")
            .or_else(|| current.get("oneOf"))
            .and_then(Value::as_array)
        {
            current = choices
                .iter()
                .find(|c| c.get("type").and_then(Value::as_str) != Some("null"))?;
            continue;
        }
        return Some(current);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_names_are_suggested_and_far_ones_are_not() {
        assert_eq!(closest("adress", &["address", "ssh"]), Some("address"));
        assert_eq!(closest("zzzzzz", &["address", "ssh"]), None);
    }

    #[test]
    fn list_reads_as_a_sentence() {
        assert_eq!(list(&["a", "b", "c"]), "`a`, `b` or `c`");
        assert_eq!(list(&["a"]), "`a`");
    }
}
