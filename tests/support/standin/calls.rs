//! Model method calls: each method's signature, how named and positional arguments bind to
//! it as Python would bind them (JSON-2 by name, JSON-RPC by position and keyword), and one call
//! run as one transaction.

use serde_json::Value;

use super::Vals;
use super::errors::{Fail, py_repr};
use super::orm::Env;
use super::state::StandinState;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `@api.model` / `@api.model_create_multi`: no records.
    Model,
    /// A record method: ids first.
    Records,
}

#[derive(Debug, Clone)]
pub(crate) struct Sig {
    kind: Kind,
    /// Parameter names in order and whether each is required.
    params: &'static [(&'static str, bool)],
    /// Accepts `**kwargs`.
    varkw: bool,
    /// All parameters are keyword-only (`message_post(self, *, body=…)`).
    kw_only: bool,
    /// Python class named in TypeErrors.
    class: &'static str,
}

const MAIL_THREADS: &[&str] = &[
    "stock.picking",
    "product.template",
    "product.product",
    "res.partner",
    "stock.lot",
];

pub(crate) fn signature(model: &str, method: &str) -> Option<Sig> {
    let sig = |kind, params, class| Sig {
        kind,
        params,
        varkw: false,
        kw_only: false,
        class,
    };
    Some(match method {
        "search_read" => Sig {
            varkw: true,
            ..sig(
                Kind::Model,
                &[
                    ("domain", false),
                    ("fields", false),
                    ("offset", false),
                    ("limit", false),
                    ("order", false),
                ],
                "BaseModel",
            )
        },
        "search" => sig(
            Kind::Model,
            &[
                ("domain", true),
                ("offset", false),
                ("limit", false),
                ("order", false),
            ],
            "BaseModel",
        ),
        "search_count" => sig(
            Kind::Model,
            &[("domain", true), ("limit", false)],
            "BaseModel",
        ),
        "read" => sig(
            Kind::Records,
            &[("fields", false), ("load", false)],
            "BaseModel",
        ),
        "create" => sig(Kind::Model, &[("vals_list", true)], "BaseModel"),
        "write" => sig(Kind::Records, &[("vals", true)], "BaseModel"),
        "unlink" => sig(Kind::Records, &[], "BaseModel"),
        "fields_get" => sig(
            Kind::Model,
            &[("allfields", false), ("attributes", false)],
            "BaseModel",
        ),
        "load" => sig(
            Kind::Model,
            &[("fields", true), ("data", true)],
            "BaseModel",
        ),
        "export_data" => sig(Kind::Records, &[("fields_to_export", true)], "BaseModel"),
        "name_search" => sig(
            Kind::Model,
            &[
                ("name", false),
                ("domain", false),
                ("operator", false),
                ("limit", false),
            ],
            "BaseModel",
        ),
        "check_access_rights" => sig(
            Kind::Model,
            &[("operation", true), ("raise_exception", false)],
            "BaseModel",
        ),
        "has_access" => sig(Kind::Records, &[("operation", true)], "BaseModel"),
        "message_post" if MAIL_THREADS.contains(&model) => Sig {
            varkw: true,
            kw_only: true,
            ..sig(
                Kind::Records,
                &[
                    ("body", false),
                    ("subject", false),
                    ("message_type", false),
                    ("subtype_xmlid", false),
                    ("subtype_id", false),
                    ("partner_ids", false),
                    ("body_is_html", false),
                ],
                "MailThread",
            )
        },
        "action_apply_inventory" if model == "stock.quant" => sig(Kind::Records, &[], "StockQuant"),
        "button_validate" | "action_confirm" | "action_assign" | "action_cancel"
            if model == "stock.picking" =>
        {
            sig(Kind::Records, &[], "StockPicking")
        }
        "process" | "process_cancel_backorder" if model == "stock.backorder.confirmation" => {
            sig(Kind::Records, &[], "StockBackorderConfirmation")
        }
        "check_object_reference" if model == "ir.model.data" => sig(
            Kind::Model,
            &[
                ("module", true),
                ("xml_id", true),
                ("raise_on_access_error", false),
            ],
            "IrModelData",
        ),
        "context_get" if model == "res.users" => sig(Kind::Model, &[], "ResUsers"),
        _ => return None,
    })
}

/// One model method call, arguments bound by name.
pub(crate) struct Call {
    pub(crate) model: String,
    pub(crate) method: String,
    pub(crate) ids: Option<Vec<i64>>,
    pub(crate) args: Vals,
    ctx: Vals,
    pub(crate) json2: bool,
}

fn parse_ids(v: &Value) -> Result<Vec<i64>, Fail> {
    match v {
        Value::Null | Value::Bool(false) => Ok(Vec::new()),
        Value::Number(n) => n
            .as_i64()
            .map(|id| vec![id])
            .ok_or_else(|| Fail::value(format!("invalid id {n}"))),
        Value::Array(items) => items
            .iter()
            .map(|i| {
                i.as_i64().ok_or_else(|| {
                    Fail::type_error(format!("ids must be integers, not {}", py_repr(i)))
                })
            })
            .collect(),
        other => Err(Fail::type_error(format!(
            "ids must be integers, not {}",
            py_repr(other)
        ))),
    }
}

pub(crate) fn bind_json2(
    model: &str,
    method: &str,
    sig: &Sig,
    ids: Option<Value>,
    context: Option<Value>,
    mut body: Vals,
) -> Result<Call, Fail> {
    if sig.kind == Kind::Model && ids.is_some() {
        return Err(Fail::http(
            "UnprocessableEntity",
            format!("cannot call {model}.{method} with ids"),
            422,
        ));
    }
    let mut args = Vals::new();
    for (name, required) in sig.params {
        match body.remove(*name) {
            Some(v) => {
                args.insert(name.to_string(), v);
            }
            None if *required => {
                return Err(Fail::http(
                    "UnprocessableEntity",
                    format!("missing a required argument: '{name}'"),
                    422,
                ));
            }
            None => {}
        }
    }
    if let Some(extra) = body.keys().next() {
        if !sig.varkw {
            return Err(Fail::http(
                "UnprocessableEntity",
                format!("got an unexpected keyword argument '{extra}'"),
                422,
            ));
        }
        if method == "search_read" {
            // search_read(**read_kwargs) takes any name; the typo fails later, inside
            // _read_format, as a plain TypeError (transcript 19/22).
            return Err(Fail::type_error(format!(
                "BaseModel._read_format() got an unexpected keyword argument '{extra}'"
            )));
        }
    }
    let ids = match (sig.kind, ids) {
        (Kind::Records, Some(v)) => Some(parse_ids(&v)?),
        (Kind::Records, None) => Some(Vec::new()),
        (Kind::Model, _) => None,
    };
    Ok(Call {
        model: model.into(),
        method: method.into(),
        ids,
        args,
        ctx: context
            .and_then(|c| c.as_object().cloned())
            .unwrap_or_default(),
        json2: true,
    })
}

pub(crate) fn bind_jsonrpc(
    model: &str,
    method: &str,
    sig: &Sig,
    args: Vec<Value>,
    mut kwargs: Vals,
) -> Result<Call, Fail> {
    let class = sig.class;
    let mut positional = args.into_iter();
    let ids = match sig.kind {
        Kind::Records => Some(parse_ids(&positional.next().ok_or_else(|| {
            Fail::new("builtins.IndexError", "list index out of range")
        })?)?),
        Kind::Model => None,
    };
    let positional: Vec<Value> = positional.collect();
    let ctx = match kwargs.remove("context") {
        Some(Value::Object(c)) => c,
        _ => Vals::new(),
    };
    let allowed = if sig.kw_only { 0 } else { sig.params.len() };
    if positional.len() > allowed {
        return Err(Fail::type_error(format!(
            "{class}.{method}() takes {} positional argument{} but {} were given",
            allowed + 1,
            if allowed == 0 { "" } else { "s" },
            positional.len() + 1
        )));
    }
    let mut bound = Vals::new();
    for (i, (name, required)) in sig.params.iter().enumerate() {
        let by_position = positional.get(i).cloned();
        let by_name = kwargs.remove(*name);
        match (by_position, by_name) {
            (Some(_), Some(_)) => {
                return Err(Fail::type_error(format!(
                    "{class}.{method}() got multiple values for argument '{name}'"
                )));
            }
            (Some(v), None) | (None, Some(v)) => {
                bound.insert(name.to_string(), v);
            }
            (None, None) if *required => {
                return Err(Fail::type_error(format!(
                    "{class}.{method}() missing 1 required positional argument: '{name}'"
                )));
            }
            (None, None) => {}
        }
    }
    if let Some(extra) = kwargs.keys().next() {
        if method == "search_read" {
            return Err(Fail::type_error(format!(
                "BaseModel._read_format() got an unexpected keyword argument '{extra}'"
            )));
        }
        if !sig.varkw {
            return Err(Fail::type_error(format!(
                "{class}.{method}() got an unexpected keyword argument '{extra}'"
            )));
        }
    }
    Ok(Call {
        model: model.into(),
        method: method.into(),
        ids,
        args: bound,
        ctx,
        json2: false,
    })
}

/// Runs one call as one transaction: on an error (or a `load` with bad rows) the data goes
/// back to what it was; id sequences do not.
pub(crate) fn execute(st: &mut StandinState, call: Call) -> Result<Value, Fail> {
    let read_only = matches!(
        call.method.as_str(),
        "search_read"
            | "search"
            | "search_count"
            | "read"
            | "fields_get"
            | "name_search"
            | "check_access_rights"
            | "has_access"
            | "context_get"
            | "check_object_reference"
    );
    if !read_only {
        st.db.begin();
    }
    let mut env = Env {
        db: &mut st.db,
        seq: &mut st.seq,
        fails: &st.fails,
        opts: &st.opts,
        ctx: call.ctx.clone(),
        rollback: false,
    };
    let result = env.dispatch(&call);
    let rollback = result.is_err() || env.rollback;
    st.db.end(rollback);
    result
}
