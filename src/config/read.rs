//! Reading the TOML tree with the key of every value at hand: every error names its key.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{ConfigError, EnvLookup};

// ---------------------------------------------------------------------------------------------
// Reading the TOML tree with the key of every value at hand

/// What every error needs: the file, and the folder relative paths start from.
pub(super) struct Ctx {
    pub(super) file: String,
    pub(super) dir: PathBuf,
}

impl Ctx {
    pub(super) fn new(file: &Path) -> Ctx {
        let dir = match file.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Ctx {
            file: file.display().to_string(),
            // Absolute, so the paths stay right whatever the working directory becomes.
            dir: std::path::absolute(&dir).unwrap_or(dir),
        }
    }

    pub(super) fn err(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.clone(),
            key: key.to_string(),
            message: message.into(),
        }
    }

    pub(super) fn syntax_error(&self, text: &str, e: &toml::de::Error) -> ConfigError {
        let message = match e.span() {
            Some(span) => {
                let before = &text[..span.start.min(text.len())];
                let line = before.matches('\n').count() + 1;
                let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
                format!(
                    "TOML syntax error at line {line}, column {column}: {}",
                    e.message().trim_end()
                )
            }
            None => format!("TOML syntax error: {}", e.message().trim_end()),
        };
        self.err("", message)
    }
}

/// `parent.name`, quoting `name` the TOML way when it is not a bare key.
pub(super) fn join_key(parent: &str, name: &str) -> String {
    let bare = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let name = if bare {
        name.to_string()
    } else {
        format!("{name:?}")
    };
    if parent.is_empty() {
        name
    } else {
        format!("{parent}.{name}")
    }
}

pub(super) fn expand_env(
    cx: &Ctx,
    env: EnvLookup,
    key: &str,
    value: &mut toml::Value,
) -> Result<(), ConfigError> {
    match value {
        toml::Value::String(s) if s.contains("${") => {
            *s = expand_str(s, env).map_err(|message| cx.err(key, message))?;
        }
        toml::Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                expand_env(cx, env, &format!("{key}[{i}]"), item)?;
            }
        }
        toml::Value::Table(table) => {
            for (name, item) in table.iter_mut() {
                expand_env(cx, env, &join_key(key, name), item)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Replaces every `${NAME}` in `s`.
fn expand_str(s: &str, env: EnvLookup) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or("`${` without a closing `}`; expected ${NAME}")?;
        let name = &after[..end];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "`${{{name}}}` is not an environment variable reference; expected ${{NAME}} \
                 with letters, digits and _"
            ));
        }
        match env(name) {
            Ok(value) => out.push_str(&value),
            Err(std::env::VarError::NotPresent) => {
                return Err(format!("environment variable {name} is not set"));
            }
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(format!("environment variable {name} is not valid UTF-8"));
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Every key the configuration knows, anywhere: a key missing from a table is only blamed on a
/// neighbouring typo that is none of these.
#[rustfmt::skip]
const KEYS: &[&str] = &[
    "accept_new", "action", "api_key", "archive", "batch_size", "by", "columns",
    "connect_timeout", "cron", "database", "decimal", "delimiter", "direction", "domain",
    "done_marker", "done_marker_replaces_extension", "dry_run", "encoding", "error", "every",
    "field", "fields", "filename", "flows", "format", "host", "host_key", "inbox", "keepalive",
    "key", "key_file", "key_passphrase", "known_hosts", "lease", "ledger", "listen", "location", "login",
    "lookup", "lot", "mapping", "mark", "max_attempts", "max_concurrency", "max_file_size", "max_sessions",
    "min_age", "model", "name", "namespaces", "odoo", "on_record_error", "optional", "outbox",
    "partner", "partners", "password", "path", "pattern", "port", "product", "protocol",
    "quantity", "record", "root", "schema", "server", "settle", "settle_max", "snapshot",
    "spool", "template", "timeout", "timezone", "token", "type", "url", "user", "value",
];

/// A TOML table being read: keys are taken one by one, and whatever is left at the end is an
/// unknown key.
pub(super) struct Node<'c> {
    pub(super) cx: &'c Ctx,
    pub(super) key: String,
    pub(super) table: toml::Table,
    /// Keys this table accepts, as asked for, for the unknown-key message.
    pub(super) accepted: Vec<&'static str>,
}

impl<'c> Node<'c> {
    pub(super) fn new(cx: &'c Ctx, key: String, table: toml::Table) -> Node<'c> {
        Node {
            cx,
            key,
            table,
            accepted: Vec::new(),
        }
    }

    pub(super) fn child_key(&self, name: &str) -> String {
        join_key(&self.key, name)
    }

    pub(super) fn has(&self, name: &str) -> bool {
        self.table.contains_key(name)
    }

    pub(super) fn take(&mut self, name: &'static str) -> Option<Item<'c>> {
        if !self.accepted.contains(&name) {
            self.accepted.push(name);
        }
        self.table.remove(name).map(|value| Item {
            cx: self.cx,
            key: self.child_key(name),
            value,
        })
    }

    pub(super) fn require(
        &mut self,
        name: &'static str,
        expected: &str,
    ) -> Result<Item<'c>, ConfigError> {
        match self.take(name) {
            Some(item) => Ok(item),
            None => Err(self.missing(name, expected)),
        }
    }

    pub(super) fn missing(&self, name: &str, expected: &str) -> ConfigError {
        // A misspelt key is the likelier story than a forgotten one: name the typo.
        if let Some(typo) = self
            .table
            .keys()
            .find(|k| !KEYS.contains(&k.as_str()) && strsim::levenshtein(k, name) <= 2)
        {
            return self.cx.err(
                &self.child_key(typo),
                format!("unknown key (did you mean {name}?)"),
            );
        }
        self.cx.err(
            &self.child_key(name),
            format!("missing; expected {expected}"),
        )
    }

    /// A sub-table such as `[odoo]`; absent means empty.
    pub(super) fn section(&mut self, name: &'static str) -> Result<Node<'c>, ConfigError> {
        match self.take(name) {
            Some(item) => item.table(),
            None => Ok(Node::new(self.cx, self.child_key(name), toml::Table::new())),
        }
    }

    /// Every entry, for tables whose keys are names (partners, flows, fields, namespaces).
    pub(super) fn entries(self) -> Vec<(String, Item<'c>)> {
        let cx = self.cx;
        let key = self.key;
        self.table
            .into_iter()
            .map(|(name, value)| {
                let item = Item {
                    cx,
                    key: join_key(&key, &name),
                    value,
                };
                (name, item)
            })
            .collect()
    }

    /// Refuses whatever key was not taken.
    pub(super) fn finish(self) -> Result<(), ConfigError> {
        let Some(unknown) = self.table.keys().next() else {
            return Ok(());
        };
        let suggestion = self
            .accepted
            .iter()
            .filter(|k| strsim::levenshtein(unknown, k) <= 2)
            .min_by_key(|k| strsim::levenshtein(unknown, k))
            .map(|k| format!(" (did you mean {k}?)"))
            .unwrap_or_default();
        Err(self.cx.err(
            &self.child_key(unknown),
            format!(
                "unknown key{suggestion}; accepted here: {}",
                self.accepted.join(", ")
            ),
        ))
    }
}

/// One value and its dotted key.
pub(super) struct Item<'c> {
    pub(super) cx: &'c Ctx,
    pub(super) key: String,
    pub(super) value: toml::Value,
}

impl<'c> Item<'c> {
    pub(super) fn err(&self, message: String) -> ConfigError {
        self.cx.err(&self.key, message)
    }

    pub(super) fn expected(&self, what: &str) -> ConfigError {
        let found = match &self.value {
            toml::Value::String(s) => format!("{s:?}"),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Datetime(d) => d.to_string(),
            toml::Value::Array(_) => "an array".to_string(),
            toml::Value::Table(_) => "a table".to_string(),
        };
        self.err(format!("expected {what}, found {found}"))
    }

    pub(super) fn string(self) -> Result<String, ConfigError> {
        match self.value {
            toml::Value::String(s) => Ok(s),
            _ => Err(self.expected("a string")),
        }
    }

    /// A non-blank string.
    pub(super) fn text(self) -> Result<String, ConfigError> {
        if self.value.as_str().is_some_and(|s| s.trim().is_empty()) {
            return Err(self.err("is empty".to_string()));
        }
        self.string()
    }

    /// A password, key or token: never echoed in messages.
    pub(super) fn secret(self) -> Result<String, ConfigError> {
        match self.value {
            toml::Value::String(s) if !s.is_empty() => Ok(s),
            toml::Value::String(_) => Err(self.err(
                "is empty (if it comes from ${NAME}, that variable is set but empty)".to_string(),
            )),
            _ => Err(self.err("expected a string".to_string())),
        }
    }

    pub(super) fn table(self) -> Result<Node<'c>, ConfigError> {
        self.table_or("a table")
    }

    pub(super) fn table_or(self, expected: &str) -> Result<Node<'c>, ConfigError> {
        match self.value {
            toml::Value::Table(table) => Ok(Node::new(self.cx, self.key, table)),
            _ => Err(self.expected(expected)),
        }
    }

    pub(super) fn array(self) -> Result<Vec<Item<'c>>, ConfigError> {
        match self.value {
            toml::Value::Array(values) => Ok(values
                .into_iter()
                .enumerate()
                .map(|(i, value)| Item {
                    cx: self.cx,
                    key: format!("{}[{i}]", self.key),
                    value,
                })
                .collect()),
            _ => Err(self.expected("an array")),
        }
    }

    /// `true`/`false`; also as a string, so it can come from `${NAME}`.
    pub(super) fn boolean(self) -> Result<bool, ConfigError> {
        match &self.value {
            toml::Value::Boolean(b) => Ok(*b),
            toml::Value::String(s) if s == "true" => Ok(true),
            toml::Value::String(s) if s == "false" => Ok(false),
            _ => Err(self.expected("true or false")),
        }
    }

    /// A whole number in `range`; also as a string, so it can come from `${NAME}`.
    pub(super) fn count(
        self,
        range: std::ops::RangeInclusive<usize>,
    ) -> Result<usize, ConfigError> {
        let n = match &self.value {
            toml::Value::Integer(i) => usize::try_from(*i).ok(),
            toml::Value::String(s) => s.trim().parse::<usize>().ok(),
            _ => None,
        };
        match n {
            Some(n) if range.contains(&n) => Ok(n),
            _ => Err(self.expected(&format!(
                "a whole number from {} to {}",
                range.start(),
                range.end()
            ))),
        }
    }

    pub(super) fn duration(self) -> Result<Duration, ConfigError> {
        let expected = "a duration such as \"500ms\", \"10s\", \"15m\" or \"12h\"";
        match &self.value {
            toml::Value::String(s) => {
                humantime::parse_duration(s.trim()).map_err(|_| self.expected(expected))
            }
            _ => Err(self.expected(expected)),
        }
    }

    pub(super) fn positive_duration(self) -> Result<Duration, ConfigError> {
        let key = self.key.clone();
        let cx = self.cx;
        let duration = self.duration()?;
        if duration.is_zero() {
            return Err(cx.err(&key, "must be longer than zero"));
        }
        Ok(duration)
    }

    /// A path relative to the config file's folder.
    pub(super) fn path(self) -> Result<PathBuf, ConfigError> {
        let dir = &self.cx.dir;
        Ok(dir.join(self.text()?))
    }

    pub(super) fn existing_file(self) -> Result<PathBuf, ConfigError> {
        let key = self.key.clone();
        let cx = self.cx;
        let path = self.path()?;
        if !path.is_file() {
            return Err(cx.err(
                &key,
                format!(
                    "file {} not found (relative paths are relative to the config file's folder)",
                    path.display()
                ),
            ));
        }
        Ok(path)
    }

    pub(super) fn choice<T: Copy>(self, options: &[(&str, T)]) -> Result<T, ConfigError> {
        if let Some(s) = self.value.as_str()
            && let Some((_, value)) = options.iter().find(|(name, _)| *name == s)
        {
            return Ok(*value);
        }
        let names: Vec<String> = options
            .iter()
            .map(|(name, _)| format!("{name:?}"))
            .collect();
        let expected = match names.split_last() {
            Some((last, [])) => last.clone(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::new(),
        };
        Err(self.expected(&expected))
    }

    pub(super) fn identifier(self) -> Result<String, ConfigError> {
        if self.value.as_str().is_some_and(is_identifier) {
            return self.string();
        }
        Err(self.expected("an Odoo field name (letters, digits and _)"))
    }

    pub(super) fn model_name(self) -> Result<String, ConfigError> {
        let valid = self.value.as_str().is_some_and(|s| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        });
        if valid {
            return self.string();
        }
        Err(self.expected("an Odoo model name such as \"product.product\""))
    }

    /// Any TOML value as JSON (constants, export domains). Dates become their text.
    pub(super) fn json(self) -> Result<serde_json::Value, ConfigError> {
        let key = self.key.clone();
        to_json(self.value).map_err(|message| self.cx.err(&key, message))
    }
}

pub(super) fn to_json(value: toml::Value) -> Result<serde_json::Value, String> {
    use serde_json::Value as J;
    Ok(match value {
        toml::Value::String(s) => J::String(s),
        toml::Value::Integer(i) => J::from(i),
        toml::Value::Float(f) => serde_json::Number::from_f64(f)
            .map(J::Number)
            .ok_or_else(|| format!("{f} cannot be sent to Odoo; expected a finite number"))?,
        toml::Value::Boolean(b) => J::Bool(b),
        toml::Value::Datetime(d) => J::String(d.to_string()),
        toml::Value::Array(items) => {
            J::Array(items.into_iter().map(to_json).collect::<Result<_, _>>()?)
        }
        toml::Value::Table(table) => J::Object(
            table
                .into_iter()
                .map(|(k, v)| Ok((k, to_json(v)?)))
                .collect::<Result<_, String>>()?,
        ),
    })
}

pub(super) fn is_identifier(s: &str) -> bool {
    s.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}
