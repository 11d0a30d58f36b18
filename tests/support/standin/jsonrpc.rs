//! JSON-RPC (`/jsonrpc`, Odoo 18 and the deprecated one of 19): the envelope (error `code`
//! 200 on 18 and 0 on 19, no `result` key for `None`) and the `common`, `db` and `object`
//! services, with login by password or API key.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::calls::{bind_jsonrpc, execute, signature};
use super::errors::{
    Fail, access_refused, private_method, serialization_failure, unknown_exception, unknown_method,
};
use super::http::json_response;
use super::orm::{ADMIN_UID, BASIC_UID};
use super::state::{Shared, StandinState, bump, take_fault};
use super::{Fault, StandinOptions, Vals};

pub(crate) fn jsonrpc(shared: &Shared, body: &[u8]) -> Response {
    let mut st = shared.lock();
    let version = st.opts.version;
    let request: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    let params = request.get("params").cloned().unwrap_or(Value::Null);
    let service = params.get("service").and_then(Value::as_str).unwrap_or("");
    let method = params.get("method").and_then(Value::as_str).unwrap_or("");
    let args = params
        .get("args")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let result = if request.is_null() {
        Err(Fail::http("BadRequest", "Invalid JSON data", 400))
    } else {
        match service {
            "common" => {
                bump(&mut st, "common", method);
                common_service(&st, method, &args)
            }
            "db" => {
                bump(&mut st, "db", method);
                match method {
                    "list" => Ok(json!([st.opts.database])),
                    "server_version" => Ok(json!(format!("{version}.0"))),
                    _ => Err(Fail::new("builtins.KeyError", format!("'exp_{method}'"))),
                }
            }
            "object" => object_service(&mut st, method, args),
            _ => Err(Fail::new(
                "builtins.Exception",
                format!("No such service: {service}"),
            )),
        }
    };
    // Odoo 18 sends error code 200, Odoo 19 sends 0 (transcripts 18/05 and 19/79).
    let code = if version >= 19 { 0 } else { 200 };
    let answer = match result {
        // A None result leaves the `result` key out entirely (transcript 18/39).
        Ok(Value::Null) => json!({"jsonrpc": "2.0", "id": id}),
        Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
        Err(fail) => json!({
            "jsonrpc": "2.0",
            "id": id,
            "error": {"code": code, "message": "Odoo Server Error", "data": fail.jsonrpc_data()},
        }),
    };
    json_response(StatusCode::OK, &answer)
}

fn unknown_database(db: &str) -> Fail {
    Fail::new(
        "psycopg2.OperationalError",
        format!(
            "connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  database \"{db}\" does not exist\n"
        ),
    )
}

fn secret_ok(opts: &StandinOptions, secret: &Value) -> bool {
    secret
        .as_str()
        .is_some_and(|s| s == opts.password || s == opts.api_key)
}

fn common_service(st: &StandinState, method: &str, args: &[Value]) -> Result<Value, Fail> {
    let v = st.opts.version;
    match method {
        "version" => Ok(json!({
            // The recorded 17 is a dated build (transcript 17/01).
            "server_version": if v == 17 { "17.0-20240709".to_string() } else { format!("{v}.0") },
            "server_version_info": [v, 0, 0, "final", 0, ""],
            "server_serie": format!("{v}.0"),
            "protocol_version": 1,
        })),
        "authenticate" | "login" => {
            let wanted = if method == "authenticate" { 4 } else { 3 };
            if args.len() < wanted {
                return Err(Fail::type_error(format!(
                    "exp_{method}() missing {} required positional argument{}",
                    wanted - args.len(),
                    if wanted - args.len() == 1 { "" } else { "s" }
                )));
            }
            let db = args[0].as_str().unwrap_or_default();
            if db != st.opts.database {
                return Err(unknown_database(db));
            }
            // A refused login is `false`, not an error (transcript 18/03).
            if args[1].as_str() == Some(st.opts.login.as_str()) && secret_ok(&st.opts, &args[2]) {
                Ok(json!(ADMIN_UID))
            } else if args[1].as_str() == Some(st.opts.basic_login.as_str())
                && args[2].as_str() == Some(st.opts.basic_api_key.as_str())
            {
                Ok(json!(BASIC_UID))
            } else {
                Ok(json!(false))
            }
        }
        _ => Err(Fail::new("builtins.KeyError", format!("'exp_{method}'"))),
    }
}

fn object_service(st: &mut StandinState, method: &str, args: Vec<Value>) -> Result<Value, Fail> {
    let positional_style = match method {
        "execute_kw" => false,
        "execute" => true,
        _ => {
            return Err(Fail::new("builtins.KeyError", format!("'exp_{method}'")));
        }
    };
    if args.len() < 5 {
        return Err(Fail::type_error(format!(
            "execute_kw() missing {} required positional arguments",
            5 - args.len()
        )));
    }
    let db = args[0].as_str().unwrap_or_default();
    if db != st.opts.database {
        return Err(unknown_database(db));
    }
    let basic = args[1].as_i64() == Some(BASIC_UID)
        && args[2].as_str() == Some(st.opts.basic_api_key.as_str());
    if !basic && (args[1].as_i64() != Some(ADMIN_UID) || !secret_ok(&st.opts, &args[2])) {
        return Err(Fail::new("odoo.exceptions.AccessDenied", "Access Denied"));
    }
    let model = args[3].as_str().unwrap_or_default().to_string();
    let meth = args[4].as_str().unwrap_or_default().to_string();
    if take_fault(st, |f| f == Fault::LoginCooldown).is_some() {
        return Err(Fail::new(
            "odoo.exceptions.AccessDenied",
            "Too many login failures, please wait a bit before trying again.",
        ));
    }
    if take_fault(st, |f| f == Fault::SerializationFailure).is_some() {
        bump(st, &model, &meth);
        return Err(serialization_failure());
    }
    if take_fault(st, |f| f == Fault::UnknownException).is_some() {
        bump(st, &model, &meth);
        return Err(unknown_exception());
    }
    bump(st, &model, &meth);
    let (call_args, kwargs) = if positional_style {
        (args[5..].to_vec(), Vals::new())
    } else {
        let call_args = match args.get(5) {
            Some(Value::Array(a)) => a.clone(),
            Some(Value::Null) | None => Vec::new(),
            Some(other) => vec![other.clone()],
        };
        let kwargs = args
            .get(6)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        (call_args, kwargs)
    };
    if !st.db.models.contains_key(&model) {
        return Err(Fail::user(format!("Object {model} doesn't exist")));
    }
    if meth.starts_with('_') {
        return Err(private_method(st.opts.version, &model, &meth));
    }
    let Some(sig) = signature(&model, &meth) else {
        return Err(unknown_method(st.opts.version, &model, &meth));
    };
    let call = bind_jsonrpc(&model, &meth, &sig, call_args, kwargs)?;
    if basic && let Some(fail) = access_refused(st.opts.version, &model, &meth) {
        return Err(fail);
    }
    execute(st, call)
}
