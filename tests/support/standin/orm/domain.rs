//! Domains: parsed from Polish notation with the implicit `&`s, and the comparisons a leaf
//! makes (`=`, `in`, `<`, `like` and the others) with Odoo's notion of an empty value.

use serde_json::{Value, json};

use super::super::errors::{Fail, py_repr};

#[derive(Debug, Clone)]
pub(crate) struct Leaf {
    pub(crate) path: Vec<String>,
    pub(crate) op: String,
    pub(crate) value: Value,
    /// `(1, '=', 1)` / `(0, '=', 1)`.
    pub(crate) constant: Option<bool>,
    /// Python repr, for messages.
    pub(crate) repr: String,
}

#[derive(Debug, Clone)]
pub(crate) enum Tok {
    And,
    Or,
    Not,
    Leaf(Leaf),
}

/// Parses a domain in Polish notation and adds the implicit `&`s.
pub(crate) fn parse_domain(domain: &Value) -> Result<Vec<Tok>, Fail> {
    let items = match domain {
        Value::Null | Value::Bool(false) => return Ok(Vec::new()),
        Value::Array(items) => items,
        other => {
            return Err(Fail::value(format!("Invalid domain: {}", py_repr(other))));
        }
    };
    let mut out: Vec<Tok> = Vec::new();
    let mut expected = 1i64;
    for item in items {
        if expected == 0 {
            out.insert(0, Tok::And);
            expected = 1;
        }
        let tok = match item {
            Value::String(s) if s == "&" => Tok::And,
            Value::String(s) if s == "|" => Tok::Or,
            Value::String(s) if s == "!" => Tok::Not,
            Value::Array(parts) if parts.len() == 3 => {
                let repr = format!(
                    "({}, {}, {})",
                    py_repr(&parts[0]),
                    py_repr(&parts[1]),
                    py_repr(&parts[2])
                );
                let op = parts[1]
                    .as_str()
                    .ok_or_else(|| Fail::value(format!("Invalid leaf {repr}")))?
                    .to_lowercase();
                match &parts[0] {
                    Value::String(path) => Tok::Leaf(Leaf {
                        path: path.split('.').map(str::to_string).collect(),
                        op,
                        value: parts[2].clone(),
                        constant: None,
                        repr,
                    }),
                    Value::Number(n) => Tok::Leaf(Leaf {
                        path: Vec::new(),
                        op,
                        value: parts[2].clone(),
                        constant: Some(json!(n) == parts[2]),
                        repr,
                    }),
                    _ => return Err(Fail::value(format!("Invalid leaf {repr}"))),
                }
            }
            other => return Err(Fail::value(format!("Invalid leaf {}", py_repr(other)))),
        };
        expected += match tok {
            Tok::Leaf(_) => -1,
            Tok::Not => 0,
            Tok::And | Tok::Or => 1,
        };
        out.push(tok);
    }
    if expected != 0 && !out.is_empty() {
        return Err(Fail::value(format!("Invalid domain: {}", py_repr(domain))));
    }
    Ok(out)
}

fn is_empty_value(v: &Value) -> bool {
    matches!(v, Value::Null | Value::Bool(false)) || v.as_str() == Some("")
}

fn values_equal(a: &Value, b: &Value) -> bool {
    if is_empty_value(b) {
        return is_empty_value(a);
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Bool(x), Value::Number(n)) | (Value::Number(n), Value::Bool(x)) => {
            (n.as_f64() != Some(0.0)) == *x
        }
        _ => a == b,
    }
}

/// SQL LIKE: `%` any run, `_` one character, `\` escapes.
fn like(text: &str, pattern: &str, insensitive: bool) -> bool {
    let (t, p): (Vec<char>, Vec<char>) = if insensitive {
        (
            text.to_lowercase().chars().collect(),
            pattern.to_lowercase().chars().collect(),
        )
    } else {
        (text.chars().collect(), pattern.chars().collect())
    };
    fn go(t: &[char], p: &[char]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some('%') => (0..=t.len()).any(|i| go(&t[i..], &p[1..])),
            Some('_') => !t.is_empty() && go(&t[1..], &p[1..]),
            Some('\\') if p.len() > 1 => t.first() == Some(&p[1]) && go(&t[1..], &p[2..]),
            Some(c) => t.first() == Some(c) && go(&t[1..], &p[1..]),
        }
    }
    go(&t, &p)
}

pub(crate) fn compare(a: &Value, op: &str, b: &Value) -> bool {
    use std::cmp::Ordering;
    let order = || -> Option<Ordering> {
        match (a, b) {
            (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
            (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
            _ => None,
        }
    };
    match op {
        "=" => values_equal(a, b),
        "!=" | "<>" => !values_equal(a, b),
        "=?" => is_empty_value(b) || values_equal(a, b),
        "in" => b
            .as_array()
            .is_some_and(|list| list.iter().any(|x| values_equal(a, x))),
        "not in" => !b
            .as_array()
            .is_some_and(|list| list.iter().any(|x| values_equal(a, x))),
        "<" => order() == Some(Ordering::Less),
        ">" => order() == Some(Ordering::Greater),
        "<=" => matches!(order(), Some(Ordering::Less | Ordering::Equal)),
        ">=" => matches!(order(), Some(Ordering::Greater | Ordering::Equal)),
        "like" | "ilike" | "not like" | "not ilike" | "=like" | "=ilike" => {
            let pattern = match b {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => return op.starts_with("not"),
            };
            let pattern = if op.starts_with('=') {
                pattern
            } else {
                format!("%{pattern}%")
            };
            let insensitive = op.contains("ilike");
            let hit = match a {
                Value::String(s) => like(s, &pattern, insensitive),
                _ => false,
            };
            if op.starts_with("not") { !hit } else { hit }
        }
        _ => false,
    }
}
