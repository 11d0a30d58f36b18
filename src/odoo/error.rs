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
            OdooError::Credentials { .. }
            | OdooError::Database { .. }
            | OdooError::Protocol { .. }
            | OdooError::Config { .. } => Consequence::Stop,
        }
    }

    /// Odoo's exception name (`odoo.exceptions.ValidationError`, `builtins.ValueError`, …)
    /// when Odoo sent one.
    pub fn exception_name(&self) -> Option<&str> {
        match self {
            OdooError::Rejected { name, .. } | OdooError::Busy { name, .. } => Some(name),
            _ => None,
        }
    }

    /// Odoo's own message when Odoo sent one (for the error report).
    pub fn message(&self) -> Option<&str> {
        match self {
            OdooError::Rejected { message, .. } | OdooError::Busy { message, .. } => Some(message),
            OdooError::Credentials { message } => Some(message),
            _ => None,
        }
    }

    /// The HTTP status of a JSON-2 error or of an unavailable server.
    pub fn status(&self) -> Option<u16> {
        match self {
            OdooError::Rejected { status, .. } => *status,
            OdooError::Unavailable { status, .. } => Some(*status),
            _ => None,
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
        _ => OdooError::Rejected {
            call: call.to_string(),
            name: name.to_string(),
            message: message.to_string(),
            status,
        },
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
            "builtins.AttributeError",
            "builtins.TypeError",
        ] {
            assert_eq!(kind(name, "x", None), Consequence::Reject, "{name}");
        }
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
