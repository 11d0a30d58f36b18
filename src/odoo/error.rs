//! What can go wrong when talking to Odoo, decided once, where the answer is parsed.
//!
//! Odoo reports failures in two dialects: JSON-RPC answers HTTP 200 with
//! `error.data.name` (e.g. `odoo.exceptions.ValidationError`), JSON-2 answers a 4xx/5xx status
//! with a bare `{name, message, …}` body. `classify` turns either into an [`OdooError`] whose
//! [`OdooError::consequence`] says whether the file waits (outage), goes to `error/` (bad data)
//! or the flow stops (configuration).

use std::time::Duration;

use crate::error::Consequence;

/// A failed Odoo call, already classified.
#[derive(Debug, thiserror::Error)]
pub enum OdooError {
    /// The server could not be reached or dropped the connection (refused, reset, DNS).
    #[error("cannot reach Odoo at {url}: {detail}")]
    Unreachable { url: String, detail: String },

    /// No answer within the configured `timeout`.
    #[error("Odoo did not answer {call} within {}", humantime::format_duration(*.after))]
    Timeout { call: String, after: Duration },

    /// A proxy or the server said it cannot serve now (HTTP 502/503/504, 409, 429, or a 5xx
    /// without an Odoo error body).
    #[error("Odoo is unavailable (HTTP {status}) for {call}")]
    Unavailable { call: String, status: u16 },

    /// Odoo answered with an error that goes away by itself: a database serialization
    /// failure, lock or deadlock, a database outage, or the login cool-down after too many
    /// failed logins.
    #[error("Odoo could not complete {call} for now ({name}: {message})")]
    Busy {
        call: String,
        name: String,
        message: String,
    },

    /// Odoo refused the data or the request: ValidationError, UserError, AccessError,
    /// MissingError, ValueError, … The message is Odoo's own.
    #[error("Odoo refused {call}: {message} ({name})")]
    Rejected {
        call: String,
        /// Odoo's exception name, e.g. `odoo.exceptions.ValidationError`.
        name: String,
        /// Odoo's message, as a person reads it in Odoo.
        message: String,
        /// The HTTP status on JSON-2 (JSON-RPC errors come with 200).
        status: Option<u16>,
    },

    /// Odoo refused the call because of how edi-bridge is set up, not because of a record's
    /// data: a field, model or method Odoo does not have (`ValueError: Invalid field`,
    /// `AttributeError`, "Object x doesn't exist", a JSON-2 404), a user without the rights
    /// to create or modify a model (`AccessError` naming the groups allowed), or an error name
    /// edi-bridge does not know. The same call fails for every record, and an Odoo upgrade
    /// that renames a field must not send a day of files to `error/`: the flow stops.
    #[error("Odoo refused {call} because of the setup, not the data: {message} ({name}){hint}")]
    Setup {
        call: String,
        name: String,
        message: String,
        /// The HTTP status on JSON-2 (JSON-RPC errors come with 200).
        status: Option<u16>,
        /// What to fix, when known (starts with "; ").
        hint: String,
    },

    /// The login, password or API key was refused.
    #[error("{message}")]
    Credentials { message: String },

    /// The configured database does not exist on the server.
    #[error("Odoo has no database \"{database}\": {detail}")]
    Database { database: String, detail: String },

    /// The server answered something that is not Odoo's API (a web page, a redirect, an
    /// unparsable body): most likely a wrong `url`.
    #[error("unexpected answer from Odoo to {call}: {detail}")]
    Protocol { call: String, detail: String },

    /// The `[odoo]` configuration cannot work as written.
    #[error("Odoo configuration: {message}")]
    Config { message: String },
}

impl OdooError {
    /// Retry for outages, Reject for bad data, Stop for configuration problems.
    pub fn consequence(&self) -> Consequence {
        match self {
            OdooError::Unreachable { .. }
            | OdooError::Timeout { .. }
            | OdooError::Unavailable { .. }
            | OdooError::Busy { .. } => Consequence::Retry,
            OdooError::Rejected { .. } => Consequence::Reject,
            OdooError::Setup { .. }
            | OdooError::Credentials { .. }
            | OdooError::Database { .. }
            | OdooError::Protocol { .. }
            | OdooError::Config { .. } => Consequence::Stop,
        }
    }

    /// Odoo's exception name (`odoo.exceptions.ValidationError`, `builtins.ValueError`, …)
    /// when Odoo sent one.
    pub fn exception_name(&self) -> Option<&str> {
        match self {
            OdooError::Rejected { name, .. }
            | OdooError::Setup { name, .. }
            | OdooError::Busy { name, .. } => Some(name),
            _ => None,
        }
    }

    /// Odoo's own message when Odoo sent one (for the error report).
    pub fn message(&self) -> Option<&str> {
        match self {
            OdooError::Rejected { message, .. }
            | OdooError::Setup { message, .. }
            | OdooError::Busy { message, .. } => Some(message),
            OdooError::Credentials { message } => Some(message),
            _ => None,
        }
    }

    /// The HTTP status of a JSON-2 error or of an unavailable server.
    pub fn status(&self) -> Option<u16> {
        match self {
            OdooError::Rejected { status, .. } | OdooError::Setup { status, .. } => *status,
            OdooError::Unavailable { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether Odoo refused the call as a limited user's: an `AccessError` (a record rule
    /// refusing one record, or rights refusing every record).
    pub fn is_access_error(&self) -> bool {
        self.exception_name() == Some("odoo.exceptions.AccessError")
    }

    /// The same refusal, now known to be about the setup (e.g. an `AccessError` that
    /// refused every record of a batch): the flow stops.
    pub fn into_setup(self, hint: &str) -> OdooError {
        match self {
            OdooError::Rejected {
                call,
                name,
                message,
                status,
            } => OdooError::Setup {
                call,
                name,
                message,
                status,
                hint: format!("; {hint}"),
            },
            other => other,
        }
    }

    /// Whether a timeout caused it (a batch is halved after a timeout).
    pub fn is_timeout(&self) -> bool {
        matches!(self, OdooError::Timeout { .. })
    }
}

/// Odoo exception names that mean "try again later". The PostgreSQL ones surface when Odoo's
/// own retries of a concurrent update are exhausted.
const TRANSIENT_NAMES: &[&str] = &[
    "psycopg2.errors.SerializationFailure",
    "psycopg2.errors.LockNotAvailable",
    "psycopg2.errors.DeadlockDetected",
    "psycopg2.extensions.TransactionRollbackError",
    "odoo.exceptions.ConcurrencyError",
    "werkzeug.exceptions.ServiceUnavailable",
    "werkzeug.exceptions.TooManyRequests",
];

/// PostgreSQL errors about the data itself, not about the server.
fn is_integrity_error(name: &str) -> bool {
    name == "psycopg2.IntegrityError"
        || name == "psycopg2.DataError"
        || [
            "UniqueViolation",
            "ForeignKeyViolation",
            "NotNullViolation",
            "CheckViolation",
            "ExclusionViolation",
            "InvalidTextRepresentation",
            "NumericValueOutOfRange",
            "StringDataRightTruncation",
        ]
        .iter()
        .any(|kind| name == format!("psycopg2.errors.{kind}"))
}

/// HTTP statuses that mean "the server cannot serve now".
pub(crate) fn is_unavailable_status(status: u16) -> bool {
    matches!(status, 409 | 429 | 502 | 503 | 504)
}

/// Who is logging in, for the message when credentials are refused.
#[derive(Debug, Clone)]
pub(crate) struct LoginInfo {
    pub database: String,
    pub login: String,
    /// "API key" or "password".
    pub credential_kind: &'static str,
}

impl LoginInfo {
    /// The message shown when Odoo refuses the login. API keys silently expire, which is the
    /// usual cause on a setup that used to work, so the message says how to renew one.
    pub fn refused(&self, detail: &str) -> OdooError {
        OdooError::Credentials {
            message: format!(
                "Odoo refused the login \"{}\" on database \"{}\" with the configured {} ({}). \
                 API keys expire after 90 days on Odoo 18 and later: create a new one under \
                 Preferences → Account Security → New API Key and put it in the configuration.",
                self.login, self.database, self.credential_kind, detail
            ),
        }
    }
}

/// Classifies an error Odoo reported with an exception `name` and `message` (the JSON-RPC
/// `error.data` or the JSON-2 body). `status` is the JSON-2 HTTP status.
pub(crate) fn classify(
    call: &str,
    name: &str,
    message: &str,
    status: Option<u16>,
    login: &LoginInfo,
) -> OdooError {
    let busy = || OdooError::Busy {
        call: call.to_string(),
        name: name.to_string(),
        message: message.to_string(),
    };
    if let Some(status) = status {
        if is_unavailable_status(status) {
            return OdooError::Unavailable {
                call: call.to_string(),
                status,
            };
        }
        if status == 401 {
            return login.refused(message);
        }
    }
    if TRANSIENT_NAMES.contains(&name) {
        return busy();
    }
    match name {
        // Raised by PostgreSQL's connection when the database name is unknown; any other
        // OperationalError (database restarting, serialization, locks) passes.
        "psycopg2.OperationalError" => {
            if message.contains("database") && message.contains("does not exist") {
                OdooError::Database {
                    database: login.database.clone(),
                    detail: message.trim().to_string(),
                }
            } else {
                busy()
            }
        }
        "odoo.exceptions.AccessDenied" => {
            if message.contains("Too many login failures") {
                busy()
            } else {
                login.refused(message)
            }
        }
        "werkzeug.exceptions.Unauthorized" => login.refused(message),
        // The database side failing (pool full, connection lost, query cancelled, shutdown):
        // an outage. Broken constraints are data problems (Odoo usually reports them as
        // ValidationError already).
        _ if name.starts_with("psycopg2.") && !is_integrity_error(name) => busy(),
        _ => match setup_problem(name, message, status) {
            Some(hint) => OdooError::Setup {
                call: call.to_string(),
                name: name.to_string(),
                message: message.to_string(),
                status,
                hint: format!("; {hint}"),
            },
            None => OdooError::Rejected {
                call: call.to_string(),
                name: name.to_string(),
                message: message.to_string(),
                status,
            },
        },
    }
}

/// Odoo exception names that refuse a record for its own data (the message says which
/// value). HTTP 500 on JSON-2 comes with some of them too (an invalid selection value is a
/// `ValueError` 500 on Odoo 19): the name decides, not the status.
const DATA_NAMES: &[&str] = &[
    "odoo.exceptions.ValidationError",
    "odoo.exceptions.UserError",
    "odoo.exceptions.MissingError",
    "odoo.exceptions.RedirectWarning",
    "odoo.exceptions.AccessError",
    "builtins.ValueError",
    "builtins.TypeError",
    "werkzeug.exceptions.UnprocessableEntity",
];

/// When Odoo's refusal is about the setup rather than the record, what to fix.
fn setup_problem(name: &str, message: &str, status: Option<u16>) -> Option<&'static str> {
    if is_integrity_error(name) {
        return None;
    }
    // JSON-2 answers 404 for an unknown model or method.
    if status == Some(404) && !DATA_NAMES.contains(&name) {
        return Some("check the model and method names against this Odoo's modules");
    }
    match name {
        // "Invalid field 'x' on model 'y'" (18) / "on 'y'" / "in 'y'" (19): also a field
        // an upgrade renamed. Any other ValueError ("Wrong value for …", "could not convert
        // string to float") is about the value.
        "builtins.ValueError" if message.contains("Invalid field") => {
            Some("fix the field name in the flow's mapping (`edi-bridge check` lists them)")
        }
        // An unknown method (or a method renamed by an upgrade).
        "builtins.AttributeError" => Some("the method does not exist on this Odoo version"),
        // Odoo 17's `load` names an unknown column with a bare KeyError.
        "builtins.KeyError" => {
            Some("a field name Odoo does not know: check the flow's mapping against this Odoo")
        }
        "odoo.exceptions.UserError"
            if message.starts_with("Object ") && message.contains("doesn't exist") =>
        {
            Some("fix the model name in the flow's mapping (is its module installed?)")
        }
        // Rights on a whole model ("You are not allowed to create 'Product Variant' …
        // This operation is allowed for the following groups: …"), or a private method.
        // A record rule refusing one record says "Due to security restrictions…" instead.
        "odoo.exceptions.AccessError"
            if message.starts_with("You are not allowed to")
                || message.contains("Private methods") =>
        {
            Some("give the Odoo user edi-bridge logs in as the groups Odoo names")
        }
        "werkzeug.exceptions.NotFound" | "werkzeug.exceptions.BadRequest" => {
            Some("check the model and method names against this Odoo's modules")
        }
        _ if DATA_NAMES.contains(&name) => None,
        // An error name edi-bridge does not know: it cannot tell bad data from bad setup, and
        // sending files to error/ on a guess loses them for good.
        _ => {
            Some("edi-bridge does not know this Odoo error; the files wait until it is understood")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login() -> LoginInfo {
        LoginInfo {
            database: "edi".into(),
            login: "admin".into(),
            credential_kind: "API key",
        }
    }

    #[test]
    fn database_outages_wait_and_broken_constraints_are_data_problems() {
        assert_eq!(
            kind(
                "psycopg2.pool.PoolError",
                "The Connection Pool Is Full",
                None
            ),
            Consequence::Retry
        );
        assert_eq!(
            kind("psycopg2.InterfaceError", "connection already closed", None),
            Consequence::Retry
        );
        assert_eq!(
            kind("psycopg2.errors.QueryCanceled", "canceling statement", None),
            Consequence::Retry
        );
        assert_eq!(
            kind("psycopg2.errors.UniqueViolation", "duplicate key", None),
            Consequence::Reject
        );
        assert_eq!(
            kind("psycopg2.errors.NotNullViolation", "null value", None),
            Consequence::Reject
        );
    }

    fn kind(name: &str, message: &str, status: Option<u16>) -> Consequence {
        classify("product.product.create", name, message, status, &login()).consequence()
    }

    #[test]
    fn data_errors_reject_the_file() {
        for name in [
            "odoo.exceptions.ValidationError",
            "odoo.exceptions.UserError",
            "odoo.exceptions.AccessError",
            "odoo.exceptions.MissingError",
            "builtins.ValueError",
            "builtins.TypeError",
        ] {
            assert_eq!(kind(name, "x", None), Consequence::Reject, "{name}");
        }
        // Odoo 19 answers an invalid selection value with HTTP 500: a data error.
        assert_eq!(
            kind(
                "builtins.ValueError",
                "Wrong value for product.template.type: 'bogus'",
                Some(500)
            ),
            Consequence::Reject
        );
        // A record rule refusing one record.
        assert_eq!(
            kind(
                "odoo.exceptions.AccessError",
                "Due to security restrictions, you are not allowed to modify 'Quants' (stock.quant) records.",
                None
            ),
            Consequence::Reject
        );
        assert_eq!(
            kind("werkzeug.exceptions.UnprocessableEntity", "x", Some(422)),
            Consequence::Reject
        );
        assert_eq!(
            kind("builtins.TypeError", "x", Some(500)),
            Consequence::Reject
        );
    }

    #[test]
    fn database_contention_and_cool_down_are_retried() {
        for name in [
            "psycopg2.errors.SerializationFailure",
            "psycopg2.errors.LockNotAvailable",
            "psycopg2.errors.DeadlockDetected",
        ] {
            assert_eq!(kind(name, "x", None), Consequence::Retry, "{name}");
            assert_eq!(kind(name, "x", Some(500)), Consequence::Retry, "{name}");
        }
        assert_eq!(
            kind(
                "psycopg2.OperationalError",
                "could not serialize access due to concurrent update",
                None
            ),
            Consequence::Retry
        );
        assert_eq!(
            kind(
                "odoo.exceptions.AccessDenied",
                "Too many login failures, please wait a bit before trying again.",
                None
            ),
            Consequence::Retry
        );
        assert_eq!(kind("whatever", "x", Some(503)), Consequence::Retry);
    }

    #[test]
    fn unknown_fields_models_methods_rights_and_names_stop_the_flow() {
        for (name, message, status) in [
            (
                "builtins.ValueError",
                "Invalid field 'x_price' on model 'product.product'",
                None,
            ),
            (
                "builtins.ValueError",
                "Invalid field 'x_price' in 'product.product'",
                Some(500),
            ),
            (
                "builtins.AttributeError",
                "The method 'product.product.frobnicate' does not exist",
                None,
            ),
            ("builtins.KeyError", "'is_storable'", None),
            (
                "odoo.exceptions.UserError",
                "Object uom.nonexistent doesn't exist",
                None,
            ),
            (
                "werkzeug.exceptions.NotFound",
                "the model 'uom.nonexistent' does not exist",
                Some(404),
            ),
            (
                "odoo.exceptions.AccessError",
                "You are not allowed to create 'Product Variant' (product.product) records.\n\nThis operation is allowed for the following groups:\n\t- Inventory/Administrator",
                None,
            ),
            (
                "odoo.exceptions.AccessError",
                "You are not allowed to create 'Product Variant' (product.product) records.",
                Some(403),
            ),
            ("odoo.addons.acme.exceptions.MysteryError", "?", None),
            ("unknown", "", Some(500)),
        ] {
            let e = classify("product.product.create", name, message, status, &login());
            assert_eq!(e.consequence(), Consequence::Stop, "{name}: {message}");
            assert!(e.to_string().contains(message), "{e}");
        }
    }

    #[test]
    fn configuration_problems_stop_the_flow() {
        let wrong_db = "connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  \
                        database \"no_such_db\" does not exist\n";
        assert_eq!(
            kind("psycopg2.OperationalError", wrong_db, None),
            Consequence::Stop
        );
        assert_eq!(
            kind("odoo.exceptions.AccessDenied", "Access Denied", None),
            Consequence::Stop
        );
        let e = classify(
            "search_count",
            "werkzeug.exceptions.Unauthorized",
            "Invalid apikey",
            Some(401),
            &login(),
        );
        assert_eq!(e.consequence(), Consequence::Stop);
        assert!(e.to_string().contains("90 days"), "{e}");
    }
}
