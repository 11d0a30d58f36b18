//! Errors, as Odoo serialises them: an exception's Python name and message, the JSON-2
//! error body with its HTTP status and the JSON-RPC `error.data`, and the Python reprs Odoo's
//! messages quote values with.

use serde_json::{Value, json};

/// An exception as Odoo reports it: its Python name and message. `status` is set for
/// werkzeug HTTP exceptions, whose `arguments` carry the status too.
#[derive(Debug, Clone)]
pub(crate) struct Fail {
    pub(crate) name: String,
    pub(crate) message: String,
    status: Option<u16>,
}

impl Fail {
    pub(crate) fn new(name: &str, message: impl Into<String>) -> Fail {
        Fail {
            name: name.into(),
            message: message.into(),
            status: None,
        }
    }
    pub(crate) fn validation(message: impl Into<String>) -> Fail {
        Fail::new("odoo.exceptions.ValidationError", message)
    }
    pub(crate) fn user(message: impl Into<String>) -> Fail {
        Fail::new("odoo.exceptions.UserError", message)
    }
    pub(crate) fn value(message: impl Into<String>) -> Fail {
        Fail::new("builtins.ValueError", message)
    }
    pub(crate) fn type_error(message: impl Into<String>) -> Fail {
        Fail::new("builtins.TypeError", message)
    }
    pub(crate) fn missing(message: impl Into<String>) -> Fail {
        Fail::new("odoo.exceptions.MissingError", message)
    }
    pub(crate) fn http(name: &str, message: impl Into<String>, status: u16) -> Fail {
        Fail {
            name: format!("werkzeug.exceptions.{name}"),
            message: message.into(),
            status: Some(status),
        }
    }

    /// The HTTP status JSON-2 answers this exception with (Odoo 19 maps UserError and its
    /// subclasses to 422, AccessError to 403, MissingError to 404, anything else to 500).
    pub(crate) fn json2_status(&self) -> u16 {
        if let Some(s) = self.status {
            return s;
        }
        match self.name.as_str() {
            "odoo.exceptions.ValidationError" | "odoo.exceptions.UserError" => 422,
            "odoo.exceptions.AccessError" | "odoo.exceptions.AccessDenied" => 403,
            "odoo.exceptions.MissingError" => 404,
            _ => 500,
        }
    }

    fn arguments(&self) -> Value {
        match self.status {
            Some(s) => json!([self.message, s]),
            None => json!([self.message]),
        }
    }

    fn debug(&self) -> String {
        let short = self.name.rsplit('.').next().unwrap_or(&self.name);
        format!(
            "Traceback (most recent call last):\n  File \"/opt/odoo/odoo/http.py\", line 1, in _serve_db\n    (Odoo stand-in)\n{}: {}\n",
            if self.name.starts_with("builtins.") {
                short
            } else {
                &self.name
            },
            self.message
        )
    }

    /// The JSON-2 error body.
    pub(crate) fn json2_body(&self) -> Value {
        json!({
            "name": self.name,
            "message": self.message,
            "arguments": self.arguments(),
            "context": {},
            "debug": self.debug(),
        })
    }

    /// The JSON-RPC `error.data`.
    pub(crate) fn jsonrpc_data(&self) -> Value {
        json!({
            "name": self.name,
            "debug": self.debug(),
            "message": self.message,
            "arguments": self.arguments(),
            "context": {},
        })
    }
}

/// Python's `repr()` of a JSON value, for messages that quote values as Odoo does.
pub(crate) fn py_repr(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => {
            if s.contains('\'') && !s.contains('"') {
                format!("\"{s}\"")
            } else {
                format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
            }
        }
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(py_repr).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("'{k}': {}", py_repr(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Python's repr of a tuple of ids: `(5,)`, `(1, 2)`.
pub(crate) fn py_ids(ids: &[i64]) -> String {
    match ids {
        [one] => format!("({one},)"),
        _ => format!(
            "({})",
            ids.iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// English list as Odoo's `format_list` writes it: "A", "A and B", "A, B, and C".
pub(crate) fn format_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [a] => a.clone(),
        [a, b] => format!("{a} and {b}"),
        [rest @ .., last] => format!("{}, and {last}", rest.join(", ")),
    }
}

pub(crate) fn serialization_failure() -> Fail {
    Fail::new(
        "psycopg2.errors.SerializationFailure",
        "could not serialize access due to concurrent update\n",
    )
}

/// An exception name edi-bridge does not know ([`super::Fault::UnknownException`]).
pub(crate) fn unknown_exception() -> Fail {
    Fail::new(
        "odoo.addons.acme_sync.models.MysteryError",
        "The ACME sync is rebuilding its cache.",
    )
}

/// The limited user's refusal of a create or write (transcripts 18/115–119, 19/122–126):
/// reads pass, writes name the groups allowed.
pub(crate) fn access_refused(version: u32, model: &str, method: &str) -> Option<Fail> {
    let verb = match method {
        "create" | "load" => "create",
        "write"
        | "action_apply_inventory"
        | "button_validate"
        | "action_confirm"
        | "action_assign"
        | "action_cancel"
        | "message_post" => "modify",
        "unlink" => "delete",
        _ => return None,
    };
    let (label, groups) = match model {
        "product.product" | "product.template" => (
            if model == "product.product" {
                "Product Variant"
            } else {
                "Product"
            },
            if version >= 19 {
                "\t- Products/Create"
            } else {
                "\t- Extra Rights/Product Creation\n\t- Inventory/Administrator"
            },
        ),
        "stock.quant" => ("Quants", "\t- Inventory/User"),
        "stock.lot" => ("Lot/Serial", "\t- Inventory/User"),
        "stock.picking" => ("Transfer", "\t- Inventory/User"),
        "stock.move" => ("Stock Move", "\t- Inventory/User"),
        _ => ("Record", "\t- Administration/Settings"),
    };
    Some(Fail::new(
        "odoo.exceptions.AccessError",
        format!(
            "You are not allowed to {verb} '{label}' ({model}) records.\n\nThis operation is \
             allowed for the following groups:\n{groups}\n\nContact your administrator to \
             request access if necessary."
        ),
    ))
}

/// 17 names the method alone (17/38); 18 and 19 with its model.
pub(crate) fn private_method(version: u32, model: &str, method: &str) -> Fail {
    Fail::new(
        "odoo.exceptions.AccessError",
        if version == 17 {
            format!("Private methods (such as {method}) cannot be called remotely.")
        } else {
            format!("Private methods (such as '{model}.{method}') cannot be called remotely.")
        },
    )
}

/// A method the model does not have: 17 words it its own way (17/37).
pub(crate) fn unknown_method(version: u32, model: &str, method: &str) -> Fail {
    Fail::new(
        "builtins.AttributeError",
        if version == 17 {
            format!("The method '{method}' does not exist on the model '{model}'")
        } else {
            format!("The method '{model}.{method}' does not exist")
        },
    )
}
