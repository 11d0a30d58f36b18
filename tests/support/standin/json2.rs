//! JSON-2 (`/json/2/<model>/<method>`, Odoo 19): database header, bearer API key, a JSON
//! object of named arguments, and errors as HTTP statuses with a JSON body.

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use serde_json::Value;

use super::calls::{bind_json2, execute, signature};
use super::errors::{
    Fail, access_refused, private_method, serialization_failure, unknown_exception,
};
use super::http::{html, json_response};
use super::state::{Shared, bump, take_fault};
use super::{Fault, Vals};

pub(crate) fn json2(
    shared: &Shared,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let mut st = shared.lock();
    let error = |fail: Fail| {
        let status = StatusCode::from_u16(fail.json2_status()).expect("valid status");
        let mut r = json_response(status, &fail.json2_body());
        if status == StatusCode::UNAUTHORIZED {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        r
    };
    if let Some(db) = headers.get("x-odoo-database")
        && db.to_str().ok() != Some(st.opts.database.as_str())
    {
        // The request has no database, and the db-less routing has no such route
        // (transcript 19/31): a web page, not JSON.
        return html(
                StatusCode::NOT_FOUND,
                "<!DOCTYPE html>\n<title>404 Not Found</title>\n<h1>Not Found</h1>\n<p>No database is selected and the requested URL was not found in the server-wide controllers.</p>\n<p>Please verify the hostname, <a href=/web/login>login</a> and try again.</p>\n\n<!-- Alternatively, use the X-Odoo-Database header. -->\n".into(),
            );
    }
    let rest: Vec<&str> = path["/json/2".len()..]
        .trim_start_matches('/')
        .split('/')
        .collect();
    let (model, meth) = match rest.as_slice() {
        [model, meth] if *method == Method::POST && !model.is_empty() && !meth.is_empty() => {
            (model.to_string(), meth.to_string())
        }
        _ => {
            return error(Fail::http(
                "NotFound",
                "Did you mean POST /json/2/<model>/<method>?",
                404,
            ));
        }
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !body.is_empty() && !content_type.starts_with("application/json") {
        return html(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "<!doctype html>\n<html lang=en>\n<title>415 Unsupported Media Type</title>\n<h1>Unsupported Media Type</h1>\n<p>Request inferred type is compatible with [&#39;http&#39;] but &#39;/json/2/&lt;__model__&gt;/&lt;__method__&gt;&#39; is type=&#39;json2&#39;.<br><br>Please verify the Content-Type request header and try again.</p>\n".into(),
        );
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_string());
    match token {
        None => {
            return error(Fail::http(
                "Unauthorized",
                "User not authenticated, use an API Key with a Bearer Authorization header.",
                401,
            ));
        }
        Some(t) if t != st.opts.api_key && t != st.opts.basic_api_key => {
            return error(Fail::http("Unauthorized", "Invalid apikey", 401));
        }
        Some(_) => {}
    }
    let basic = token.as_deref() == Some(st.opts.basic_api_key.as_str());
    let mut args: Vals = if body.is_empty() {
        Vals::new()
    } else {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => map,
            Ok(_) => {
                return error(Fail::http(
                    "BadRequest",
                    "could not parse the body as json: the body must be a JSON object",
                    400,
                ));
            }
            Err(e) => {
                return error(Fail::http(
                    "BadRequest",
                    format!("could not parse the body as json: {e}"),
                    400,
                ));
            }
        }
    };
    if !st.db.models.contains_key(&model) {
        return error(Fail::http(
            "NotFound",
            format!("the model '{model}' does not exist"),
            404,
        ));
    }
    if meth.starts_with('_') {
        return error(private_method(19, &model, &meth));
    }
    let Some(sig) = signature(&model, &meth) else {
        return error(Fail::http(
            "NotFound",
            format!("The method '{model}.{meth}' does not exist"),
            404,
        ));
    };
    bump(&mut st, &model, &meth);
    if take_fault(&mut st, |f| f == Fault::SerializationFailure).is_some() {
        return error(serialization_failure());
    }
    if take_fault(&mut st, |f| f == Fault::UnknownException).is_some() {
        return error(unknown_exception());
    }
    let ids = args.remove("ids");
    let context = args.remove("context");
    let call = match bind_json2(&model, &meth, &sig, ids, context, args) {
        Ok(call) => call,
        Err(fail) => return error(fail),
    };
    if basic && let Some(fail) = access_refused(st.opts.version, &model, &meth) {
        return error(fail);
    }
    match execute(&mut st, call) {
        Ok(value) => json_response(StatusCode::OK, &value),
        Err(fail) => error(fail),
    }
}
