//! The Odoo client against the stand-in: both versions, both protocols, auto-detection, and
//! every class of failure with the consequence it must carry.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use edi_bridge::config::{Credential, OdooConfig, OdooConnection, Protocol};
use edi_bridge::error::Consequence;
use edi_bridge::odoo::client::{Args, OdooClient, OdooError, RetryPolicy, SearchOptions};
use serde_json::{Value, json};
use support::standin::{Fault, OdooStandin, StandinOptions};

fn standin(version: u32) -> OdooStandin {
    OdooStandin::start(if version == 18 {
        StandinOptions::v18()
    } else {
        StandinOptions::v19()
    })
}

fn config(odoo: &OdooStandin, protocol: Protocol, credential: Credential) -> OdooConfig {
    let opts = odoo.options();
    OdooConfig {
        connection: Some(OdooConnection {
            url: odoo.url(),
            database: opts.database,
            login: opts.login,
            credential,
            protocol,
        }),
        dry_run: false,
        batch_size: 200,
        timeout: Duration::from_secs(10),
        max_concurrency: 4,
    }
}

fn api_key(odoo: &OdooStandin) -> Credential {
    Credential::ApiKey(odoo.options().api_key)
}

fn password(odoo: &OdooStandin) -> Credential {
    Credential::Password(odoo.options().password)
}

/// Fast retries so outage tests do not wait.
fn quick_retry() -> RetryPolicy {
    RetryPolicy {
        attempts: 3,
        first_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
    }
}

async fn connect(odoo: &OdooStandin, protocol: Protocol) -> OdooClient {
    OdooClient::connect(&config(odoo, protocol, api_key(odoo)))
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"))
        .with_retry(quick_retry())
}

/// The three ways edi-bridge talks to Odoo: 18 over JSON-RPC, 19 over JSON-2, and 19 over
/// its deprecated JSON-RPC.
async fn each_server() -> Vec<(String, OdooStandin, OdooClient)> {
    let mut all = Vec::new();
    for (version, protocol) in [
        (18, Protocol::JsonRpc),
        (19, Protocol::Json2),
        (19, Protocol::JsonRpc),
    ] {
        let odoo = standin(version);
        let client = connect(&odoo, protocol).await;
        all.push((format!("{version}/{protocol:?}"), odoo, client));
    }
    all
}

fn vals(v: Value) -> Args {
    v.as_object().unwrap().clone()
}

fn rejected(e: &OdooError) -> (&str, &str) {
    assert_eq!(e.consequence(), Consequence::Reject, "{e}");
    (e.exception_name().unwrap(), e.message().unwrap())
}

/// Refused for the setup (an unknown field, model or method, a private method): the same
/// for every record, so the flow stops instead of blaming the data.
fn stopped(e: &OdooError) -> (&str, &str) {
    assert_eq!(e.consequence(), Consequence::Stop, "{e}");
    (e.exception_name().unwrap(), e.message().unwrap())
}

// -- protocol choice -----------------------------------------------------------------------------

#[tokio::test]
async fn auto_picks_json2_on_odoo_19_with_an_api_key() {
    let odoo = standin(19);
    let client = connect(&odoo, Protocol::Auto).await;
    assert_eq!(client.protocol(), Protocol::Json2);
    assert_eq!(client.server_major(), Some(19));
    // The key was checked once at connect time, over JSON-2.
    assert_eq!(odoo.call_count("res.users", "context_get"), 1);
    assert_eq!(odoo.call_count("common", "authenticate"), 0);
}

#[tokio::test]
async fn auto_falls_back_to_jsonrpc_on_odoo_18() {
    // Odoo 18 answers /json/… with a 303 to its login page.
    let odoo = standin(18);
    let client = connect(&odoo, Protocol::Auto).await;
    assert_eq!(client.protocol(), Protocol::JsonRpc);
    assert_eq!(client.server_version(), Some("18.0"));
    assert_eq!(client.uid(), Some(2));
    assert_eq!(odoo.call_count("common", "authenticate"), 1);
}

#[tokio::test]
async fn auto_uses_jsonrpc_on_odoo_19_with_a_password() {
    // JSON-2 only takes API keys.
    let odoo = standin(19);
    let client = OdooClient::connect(&config(&odoo, Protocol::Auto, password(&odoo)))
        .await
        .unwrap();
    assert_eq!(client.protocol(), Protocol::JsonRpc);
    assert_eq!(client.server_major(), Some(19));
}

#[tokio::test]
async fn json2_with_a_password_is_a_configuration_error() {
    let odoo = standin(19);
    let err = OdooClient::connect(&config(&odoo, Protocol::Json2, password(&odoo)))
        .await
        .unwrap_err();
    assert_eq!(err.consequence(), Consequence::Stop);
    assert!(err.to_string().contains("api_key"), "{err}");
}

#[tokio::test]
async fn no_connection_configured_is_a_configuration_error() {
    let cfg = OdooConfig {
        connection: None,
        dry_run: true,
        batch_size: 200,
        timeout: Duration::from_secs(1),
        max_concurrency: 1,
    };
    let err = OdooClient::connect(&cfg).await.unwrap_err();
    assert_eq!(err.consequence(), Consequence::Stop);
}

#[tokio::test]
async fn the_secret_never_shows_in_debug_output() {
    let odoo = standin(19);
    let client = connect(&odoo, Protocol::Json2).await;
    let shown = format!("{client:?}");
    assert!(!shown.contains(&odoo.options().api_key), "{shown}");
    assert!(shown.contains("Json2"), "{shown}");
}

// -- calls ---------------------------------------------------------------------------------------

#[tokio::test]
async fn create_always_returns_a_list_of_ids() {
    for (server, odoo, client) in each_server().await {
        let one = client
            .create(
                "product.product",
                vec![vals(
                    json!({"name": "Chair", "default_code": "C-1", "is_storable": true}),
                )],
                None,
            )
            .await
            .unwrap();
        assert_eq!(one.len(), 1, "{server}");
        let three = client
            .create(
                "product.product",
                (1..=3)
                    .map(|i| {
                        vals(json!({"name": format!("Item {i}"), "default_code": format!("I-{i}")}))
                    })
                    .collect(),
                None,
            )
            .await
            .unwrap();
        assert_eq!(three.len(), 3, "{server}");
        let codes: Vec<Value> = three
            .iter()
            .map(|&id| odoo.record("product.product", id).unwrap()["default_code"].clone())
            .collect();
        assert_eq!(
            codes,
            vec![json!("I-1"), json!("I-2"), json!("I-3")],
            "{server}: same order"
        );
        // Over JSON-RPC a single dict answers a bare id; the helper still gives a list.
        let raw = client
            .call(
                "product.product",
                "create",
                None,
                vals(json!({"vals_list": {"name": "Lamp"}})),
                None,
            )
            .await
            .unwrap();
        if client.protocol() == Protocol::JsonRpc {
            assert!(raw.is_i64(), "{server}: {raw}");
        } else {
            assert!(raw.is_array(), "{server}: {raw}");
        }
    }
}

#[tokio::test]
async fn search_read_write_read_and_fields_get_round_trip() {
    for (server, odoo, client) in each_server().await {
        let id = odoo.add_product_with(
            json!({"default_code": "RT-1", "name": "Round trip", "list_price": 5.0}),
        );
        let archived =
            odoo.add_product_with(json!({"default_code": "RT-2", "name": "Old", "active": false}));
        let found = client
            .search_read(
                "product.product",
                json!([["default_code", "in", ["RT-1", "RT-2"]]]),
                &["default_code", "list_price", "uom_id"],
                SearchOptions {
                    order: Some("default_code".into()),
                    context: Some(vals(json!({"active_test": false}))),
                    ..SearchOptions::default()
                },
            )
            .await
            .unwrap();
        let ids: Vec<Value> = found.iter().map(|r| r["id"].clone()).collect();
        assert_eq!(
            ids,
            vec![json!(id), json!(archived)],
            "{server}: archived found too"
        );
        assert_eq!(found[0]["uom_id"], json!([1, "Units"]), "{server}");

        client
            .write(
                "product.product",
                &[id],
                vals(json!({"list_price": 7.5})),
                None,
            )
            .await
            .unwrap();
        let read = client
            .read("product.product", &[id, 999_999], &["list_price"], None)
            .await
            .unwrap();
        assert_eq!(read.len(), 1, "{server}: a missing id is left out");
        assert_eq!(read[0]["list_price"], json!(7.5), "{server}");

        let count = client
            .search_count(
                "product.product",
                json!([["default_code", "=like", "RT-%"]]),
                None,
            )
            .await
            .unwrap();
        assert_eq!(
            count, 1,
            "{server}: archived ones are not counted by default"
        );

        let fields = client
            .fields_get(
                "product.product",
                Some(&["default_code", "uom_id"]),
                &["type", "relation"],
            )
            .await
            .unwrap();
        assert_eq!(
            fields["uom_id"],
            json!({"type": "many2one", "relation": "uom.uom"}),
            "{server}"
        );
        assert_eq!(fields["default_code"], json!({"type": "char"}), "{server}");
    }
}

#[tokio::test]
async fn load_applies_all_rows_or_none() {
    for (server, odoo, client) in each_server().await {
        let fields = ["id", "name", "default_code", "list_price"];
        let row = |x: &str, code: &str, price: &str| {
            vec![
                format!("edi.{x}"),
                format!("Loaded {x}"),
                code.to_string(),
                price.to_string(),
            ]
        };
        let first = client
            .load(
                "product.product",
                &fields,
                vec![row("a", "L-A", "1.5"), row("b", "L-B", "2")],
                None,
            )
            .await
            .unwrap();
        let ids = first.ids.clone().unwrap();
        assert_eq!(ids.len(), 2, "{server}");
        let again = client
            .load(
                "product.product",
                &fields,
                vec![row("a", "L-A", "3"), row("b", "L-B", "4")],
                None,
            )
            .await
            .unwrap();
        assert_eq!(
            again.ids,
            Some(ids.clone()),
            "{server}: same external ids update"
        );

        let bad = client
            .load(
                "product.product",
                &fields,
                vec![row("c", "L-C", "1"), row("d", "L-D", "abc")],
                None,
            )
            .await
            .unwrap();
        assert_eq!(bad.ids, None, "{server}");
        assert_eq!(bad.messages[0].record, Some(1), "{server}");
        assert_eq!(
            bad.messages[0].field.as_deref(),
            Some("list_price"),
            "{server}"
        );
        assert!(
            odoo.search_records("product.product", json!([["default_code", "=", "L-C"]]))
                .is_empty(),
            "{server}: the good row of a failed load is not applied"
        );
    }
}

#[tokio::test]
async fn a_method_returning_none_gives_null() {
    for (server, odoo, client) in each_server().await {
        let product = odoo.add_product("NULL-1", "Counted");
        let stock = odoo.stock_location();
        let quants = client
            .create(
                "stock.quant",
                vec![vals(
                    json!({"product_id": product, "location_id": stock, "inventory_quantity": 12}),
                )],
                Some(vals(json!({"inventory_mode": true}))),
            )
            .await
            .unwrap();
        let answer = client
            .call(
                "stock.quant",
                "action_apply_inventory",
                Some(quants),
                Args::new(),
                None,
            )
            .await
            .unwrap();
        assert_eq!(answer, Value::Null, "{server}");
        assert_eq!(odoo.qty_available(product), 12.0, "{server}");
    }
}

// -- failures: bad data is rejected with Odoo's own words ----------------------------------------

#[tokio::test]
async fn odoo_data_errors_reject_and_setup_errors_stop_with_the_exception_name_and_message() {
    for (server, odoo, client) in each_server().await {
        odoo.add_product_with(
            json!({"default_code": "BC-1", "name": "First", "barcode": "4006381333931"}),
        );

        let e = client
            .create(
                "product.product",
                vec![vals(json!({"name": "Second", "barcode": "4006381333931"}))],
                None,
            )
            .await
            .unwrap_err();
        let (name, message) = rejected(&e);
        assert_eq!(name, "odoo.exceptions.ValidationError", "{server}");
        assert!(
            message.starts_with("Barcode(s) already assigned"),
            "{server}: {message}"
        );

        let e = client
            .create(
                "product.product",
                vec![vals(json!({"default_code": "NO-NAME"}))],
                None,
            )
            .await
            .unwrap_err();
        assert_eq!(
            rejected(&e).0,
            "odoo.exceptions.ValidationError",
            "{server}: required name"
        );

        let e = client
            .create(
                "product.product",
                vec![vals(json!({"name": "x", "x_nope": 1}))],
                None,
            )
            .await
            .unwrap_err();
        let (name, message) = stopped(&e);
        assert_eq!(name, "builtins.ValueError", "{server}");
        assert!(message.contains("x_nope"), "{server}: {message}");

        let e = client
            .write(
                "product.product",
                &[999_999],
                vals(json!({"name": "x"})),
                None,
            )
            .await
            .unwrap_err();
        assert_eq!(rejected(&e).0, "odoo.exceptions.MissingError", "{server}");

        let e = client
            .call(
                "product.product",
                "_compute_display_name",
                Some(vec![1]),
                Args::new(),
                None,
            )
            .await
            .unwrap_err();
        assert_eq!(stopped(&e).0, "odoo.exceptions.AccessError", "{server}");

        let e = client
            .call("product.product", "frobnicate", None, Args::new(), None)
            .await
            .unwrap_err();
        let expected = if client.protocol() == Protocol::Json2 {
            "werkzeug.exceptions.NotFound"
        } else {
            "builtins.AttributeError"
        };
        assert_eq!(stopped(&e).0, expected, "{server}");

        let e = client
            .search_read(
                "x_no.such.model",
                json!([]),
                &["id"],
                SearchOptions::default(),
            )
            .await
            .unwrap_err();
        assert_eq!(e.consequence(), Consequence::Stop, "{server}: {e}");

        let e = client
            .create(
                "stock.quant",
                vec![vals(json!({"product_id": 1, "location_id": odoo.stock_location(), "inventory_quantity": 1, "quantity": 5}))],
                Some(vals(json!({"inventory_mode": true}))),
            )
            .await
            .unwrap_err();
        let (name, message) = rejected(&e);
        assert_eq!(name, "odoo.exceptions.UserError", "{server}");
        assert!(
            message.starts_with("Quant's creation is restricted"),
            "{server}"
        );
    }
}

#[tokio::test]
async fn a_json2_python_error_is_rejected_with_its_status() {
    let odoo = standin(19);
    let client = connect(&odoo, Protocol::Json2).await;
    let e = client
        .call(
            "product.product",
            "search_read",
            None,
            vals(json!({"domain": [], "limt": 1})),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(rejected(&e).0, "builtins.TypeError");
    assert_eq!(e.status(), Some(500));
    // Not retried: a TypeError is not an outage.
    assert_eq!(client.calls()["search_read"], 1);
}

#[tokio::test]
async fn a_constraint_configured_on_a_value_rejects_that_record() {
    let odoo = standin(18);
    odoo.fail_on_value(
        "product.product",
        "default_code",
        "BAD-1",
        "Reference BAD-1 is blocked.",
    );
    let client = connect(&odoo, Protocol::JsonRpc).await;
    let e = client
        .create(
            "product.product",
            vec![vals(json!({"name": "x", "default_code": "BAD-1"}))],
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(
        rejected(&e),
        (
            "odoo.exceptions.ValidationError",
            "Reference BAD-1 is blocked."
        )
    );
}

// -- failures: configuration problems stop the flow ----------------------------------------------

#[tokio::test]
async fn refused_credentials_stop_and_mention_the_90_day_key_expiry() {
    for (version, protocol) in [
        (18, Protocol::JsonRpc),
        (19, Protocol::Json2),
        (19, Protocol::Auto),
    ] {
        let odoo = standin(version);
        let mut cfg = config(&odoo, protocol, Credential::ApiKey("expired-key".into()));
        let err = OdooClient::connect(&cfg).await.unwrap_err();
        assert!(
            matches!(err, OdooError::Credentials { .. }),
            "{version}/{protocol:?}: {err}"
        );
        assert_eq!(err.consequence(), Consequence::Stop);
        let text = err.to_string();
        assert!(text.contains("90 days"), "{text}");
        assert!(text.contains("Account Security"), "{text}");
        assert!(
            !text.contains("expired-key"),
            "the secret stays out of messages: {text}"
        );

        cfg.connection.as_mut().unwrap().credential = Credential::Password("wrong".into());
        cfg.connection.as_mut().unwrap().protocol = Protocol::JsonRpc;
        let err = OdooClient::connect(&cfg).await.unwrap_err();
        assert_eq!(err.consequence(), Consequence::Stop, "{err}");
        assert!(err.to_string().contains("password"), "{err}");
    }
}

#[tokio::test]
async fn a_key_revoked_while_running_stops_the_flow() {
    for (server, odoo, client) in each_server().await {
        odoo.set_api_key("a-new-key-the-config-does-not-have");
        let e = client
            .search_count("product.product", json!([]), None)
            .await
            .unwrap_err();
        // JSON-2 answers 401, JSON-RPC an AccessDenied envelope.
        assert!(matches!(e, OdooError::Credentials { .. }), "{server}: {e}");
        assert_eq!(e.consequence(), Consequence::Stop, "{server}");
        assert!(e.to_string().contains("90 days"), "{server}: {e}");
        assert_eq!(client.calls()["search_count"], 1, "{server}: not retried");
    }
}

#[tokio::test]
async fn an_unknown_database_stops_the_flow() {
    for (version, protocol) in [
        (18, Protocol::JsonRpc),
        (19, Protocol::Json2),
        (19, Protocol::JsonRpc),
    ] {
        let odoo = standin(version);
        let mut cfg = config(&odoo, protocol, api_key(&odoo));
        cfg.connection.as_mut().unwrap().database = "no_such_db".into();
        let err = OdooClient::connect(&cfg).await.unwrap_err();
        assert!(
            matches!(err, OdooError::Database { .. }),
            "{version}/{protocol:?}: {err}"
        );
        assert_eq!(err.consequence(), Consequence::Stop);
    }
}

#[tokio::test]
async fn a_url_that_is_not_odoo_stops_the_flow() {
    // An Odoo 18 forced onto JSON-2 answers the JSON-2 probe with its login page redirect.
    let odoo = standin(18);
    let err = OdooClient::connect(&config(&odoo, Protocol::Json2, api_key(&odoo)))
        .await
        .unwrap_err();
    assert_eq!(err.consequence(), Consequence::Stop, "{err}");
    assert!(err.to_string().contains("303"), "{err}");
}

// -- failures: outages are retried, reads by the client itself -----------------------------------

#[tokio::test]
async fn outages_are_classified_retry() {
    for (server, odoo, client) in each_server().await {
        let client = client.with_retry(RetryPolicy {
            attempts: 1,
            ..quick_retry()
        });
        for (fault, what) in [
            (Fault::Http502, "502"),
            (Fault::Http503, "503"),
            (Fault::ConnectionReset, "reset"),
            (Fault::SerializationFailure, "serialization failure"),
        ] {
            odoo.fail_next(1, fault);
            let e = client
                .search_read(
                    "product.product",
                    json!([]),
                    &["id"],
                    SearchOptions::default(),
                )
                .await
                .unwrap_err();
            assert_eq!(e.consequence(), Consequence::Retry, "{server} {what}: {e}");
            assert_eq!(
                odoo.pending_faults(),
                0,
                "{server} {what}: the fault was used"
            );
        }
        let e = {
            odoo.fail_next(1, Fault::SerializationFailure);
            client
                .create("product.product", vec![vals(json!({"name": "x"}))], None)
                .await
                .unwrap_err()
        };
        assert_eq!(
            e.exception_name(),
            Some("psycopg2.errors.SerializationFailure"),
            "{server}"
        );
        assert_eq!(e.consequence(), Consequence::Retry, "{server}");
    }
}

#[tokio::test]
async fn the_login_cool_down_is_an_outage() {
    let odoo = standin(18);
    let client = connect(&odoo, Protocol::JsonRpc)
        .await
        .with_retry(RetryPolicy {
            attempts: 1,
            ..quick_retry()
        });
    odoo.fail_next(1, Fault::LoginCooldown);
    let e = client
        .search_count("product.product", json!([]), None)
        .await
        .unwrap_err();
    assert_eq!(e.consequence(), Consequence::Retry, "{e}");
    assert!(e.message().unwrap().starts_with("Too many login failures"));
}

#[tokio::test]
async fn a_stopped_server_is_an_outage_and_a_restarted_one_works_again() {
    let odoo = standin(19);
    let client = connect(&odoo, Protocol::Json2)
        .await
        .with_retry(RetryPolicy {
            attempts: 1,
            ..quick_retry()
        });
    odoo.stop();
    let e = client
        .search_count("product.product", json!([]), None)
        .await
        .unwrap_err();
    assert!(matches!(e, OdooError::Unreachable { .. }), "{e}");
    assert_eq!(e.consequence(), Consequence::Retry);
    let err = OdooClient::connect(&config(&odoo, Protocol::Auto, api_key(&odoo)))
        .await
        .unwrap_err();
    assert_eq!(
        err.consequence(),
        Consequence::Retry,
        "connect during an outage: {err}"
    );
    odoo.start_again();
    assert_eq!(
        client
            .search_count("product.product", json!([]), None)
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn a_slow_answer_times_out_as_an_outage() {
    let odoo = standin(19);
    let mut cfg = config(&odoo, Protocol::Json2, api_key(&odoo));
    cfg.timeout = Duration::from_millis(300);
    let client = OdooClient::connect(&cfg)
        .await
        .unwrap()
        .with_retry(RetryPolicy {
            attempts: 1,
            ..quick_retry()
        });
    odoo.set_latency(Duration::from_secs(2));
    let started = Instant::now();
    let e = client
        .search_count("product.product", json!([]), None)
        .await
        .unwrap_err();
    assert!(e.is_timeout(), "{e}");
    assert_eq!(e.consequence(), Consequence::Retry);
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn reads_are_retried_after_an_outage_and_writes_are_not() {
    for (server, odoo, client) in each_server().await {
        odoo.add_product("R-1", "Retried");
        odoo.fail_next(2, Fault::Http502);
        let found = client
            .search_read(
                "product.product",
                json!([["default_code", "=", "R-1"]]),
                &["name"],
                SearchOptions::default(),
            )
            .await
            .unwrap();
        assert_eq!(found.len(), 1, "{server}");
        assert_eq!(
            client.calls()["search_read"],
            3,
            "{server}: two failures, one success"
        );

        odoo.fail_next(1, Fault::ConnectionReset);
        let e = client
            .create("product.product", vec![vals(json!({"name": "Once"}))], None)
            .await
            .unwrap_err();
        assert_eq!(e.consequence(), Consequence::Retry, "{server}: {e}");
        assert_eq!(
            client.calls()["create"],
            1,
            "{server}: the caller decides on writes"
        );

        odoo.fail_next(1, Fault::Http502);
        let e = client
            .write("product.product", &[1], vals(json!({"name": "x"})), None)
            .await
            .unwrap_err();
        assert!(
            matches!(e, OdooError::Unavailable { status: 502, .. }),
            "{server}: {e}"
        );
        assert_eq!(client.calls()["write"], 1, "{server}");

        odoo.fail_next(5, Fault::Http503);
        let e = client
            .read("product.product", &[1], &["name"], None)
            .await
            .unwrap_err();
        assert_eq!(
            e.status(),
            Some(503),
            "{server}: gives up after the configured attempts"
        );
        assert_eq!(client.calls()["read"], 3, "{server}");
        odoo.clear_faults();
    }
}

#[tokio::test]
async fn calls_in_flight_never_exceed_max_concurrency() {
    let odoo = standin(19);
    let mut cfg = config(&odoo, Protocol::Json2, api_key(&odoo));
    cfg.max_concurrency = 2;
    let client = Arc::new(OdooClient::connect(&cfg).await.unwrap());
    odoo.set_latency(Duration::from_millis(200));
    odoo.reset_peak_concurrency();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let client = client.clone();
        tasks.spawn(async move {
            client
                .search_count("product.product", json!([]), None)
                .await
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap().unwrap();
    }
    assert_eq!(odoo.peak_concurrency(), 2, "bounded, and actually parallel");
    assert_eq!(client.calls()["search_count"], 6);
}

// -- the stand-in as other tests use it ----------------------------------------------------------

#[test]
fn the_standin_serves_sync_tests_and_survives_a_restart() {
    let odoo = standin(18);
    let chair = odoo.add_product("FURN_7777", "Office Chair");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = rt.block_on(connect(&odoo, Protocol::Auto));
    let search = || {
        rt.block_on(client.search_read(
            "product.product",
            json!([["default_code", "=", "FURN_7777"]]),
            &["name"],
            SearchOptions::default(),
        ))
    };
    assert_eq!(search().unwrap()[0]["id"], json!(chair));
    odoo.stop();
    assert!(!odoo.is_running());
    assert_eq!(search().unwrap_err().consequence(), Consequence::Retry);
    odoo.start_again();
    assert_eq!(
        search().unwrap()[0]["name"],
        json!("Office Chair"),
        "data kept"
    );
}

#[tokio::test]
async fn a_delivery_is_validated_without_wizards_when_the_context_says_so() {
    for version in [18, 19] {
        let mut opts = if version == 18 {
            StandinOptions::v18()
        } else {
            StandinOptions::v19()
        };
        opts.delivery_module = true;
        let odoo = OdooStandin::start(opts);
        let demo = odoo.seed_demo();
        let client = connect(&odoo, Protocol::Auto).await;
        // WH/OUT/00002: 180 Large Cabinets demanded, 100 reserved.
        let picking = demo.deliveries[1];
        let moves = client
            .search_read(
                "stock.move",
                json!([["picking_id", "=", picking]]),
                &["product_id", "product_uom_qty"],
                SearchOptions::default(),
            )
            .await
            .unwrap();
        let (mv, product) = (
            moves[0]["id"].as_i64().unwrap(),
            moves[0]["product_id"][0].as_i64().unwrap(),
        );
        let before = odoo.qty_available(product);
        client
            .write(
                "stock.move",
                &[mv],
                vals(json!({"quantity": 100.0, "picked": true})),
                None,
            )
            .await
            .unwrap();
        client
            .write(
                "stock.picking",
                &[picking],
                vals(json!({"carrier_tracking_ref": "1Z999"})),
                None,
            )
            .await
            .unwrap();

        // Without skip_sms the first validation only returns Odoo's SMS wizard.
        let wizard = client
            .call(
                "stock.picking",
                "button_validate",
                Some(vec![picking]),
                Args::new(),
                None,
            )
            .await
            .unwrap();
        assert_eq!(wizard["res_model"], json!("confirm.stock.sms"), "{version}");
        // A partial quantity asks about a backorder.
        let ctx = vals(json!({"skip_sms": true}));
        let wizard = client
            .call(
                "stock.picking",
                "button_validate",
                Some(vec![picking]),
                Args::new(),
                Some(ctx),
            )
            .await
            .unwrap();
        assert_eq!(
            wizard["res_model"],
            json!("stock.backorder.confirmation"),
            "{version}"
        );

        let ctx = vals(
            json!({"skip_sms": true, "skip_backorder": true, "picking_ids_not_to_backorder": [picking]}),
        );
        let done = client
            .call(
                "stock.picking",
                "button_validate",
                Some(vec![picking]),
                Args::new(),
                Some(ctx),
            )
            .await
            .unwrap();
        assert_eq!(done, json!(true), "{version}");
        let record = odoo.record("stock.picking", picking).unwrap();
        assert_eq!(record["state"], json!("done"), "{version}");
        assert_eq!(record["carrier_tracking_ref"], json!("1Z999"), "{version}");
        assert!(
            odoo.search_records("stock.picking", json!([["backorder_id", "=", picking]]))
                .is_empty(),
            "{version}: no backorder"
        );
        assert_eq!(odoo.qty_available(product), before - 100.0, "{version}");
    }
}

#[tokio::test]
async fn without_the_delivery_module_a_tracking_reference_is_an_unknown_field() {
    let odoo = standin(18);
    let demo = odoo.seed_demo();
    let client = connect(&odoo, Protocol::JsonRpc).await;
    let e = client
        .write(
            "stock.picking",
            &[demo.deliveries[0]],
            vals(json!({"carrier_tracking_ref": "1Z999"})),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(
        stopped(&e),
        (
            "builtins.ValueError",
            "Invalid field 'carrier_tracking_ref' on model 'stock.picking'"
        )
    );
}
