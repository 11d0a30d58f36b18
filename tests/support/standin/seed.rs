//! Data every Odoo has (company, admin user, units, warehouse `WH` with its locations and
//! operation types, `ir.model` rows describing the schema), and the demo data the transcripts
//! saw, with the same ids.

use serde_json::{Value, json};

use super::errors::Fail;
use super::orm::fields::Field;
use super::orm::{ADMIN_UID, Env};
use super::state::StandinState;
use super::{Demo, Vals};

/// Creates `vals` in `model` with exactly `id` (seeding only).
fn at(env: &mut Env, model: &str, id: i64, vals: Value) -> Result<i64, Fail> {
    env.seq.insert(model.to_string(), id);
    let got = env.create(model, vals.as_object().expect("vals object"))?;
    assert_eq!(got, id, "seeding {model}: wanted id {id}");
    Ok(got)
}

pub(crate) fn seed_base(st: &mut StandinState) {
    let v19 = st.opts.version >= 19;
    let login = st.opts.login.clone();
    let mut env = Env {
        db: &mut st.db,
        seq: &mut st.seq,
        fails: &st.fails,
        opts: &st.opts,
        ctx: Vals::new(),
        rollback: false,
    };
    let env = &mut env;
    // ir.model / ir.model.fields describe the schema itself; stock.picking has the id the
    // recorded servers gave it (transcripts 18/59, 19/68, 17/112).
    let names: Vec<String> = env.db.models.keys().cloned().collect();
    let mut next_model = 300;
    let mut next_field = 1000;
    for name in &names {
        let model_id = if name == "stock.picking" {
            match env.v() {
                17 => 403,
                18 => 420,
                _ => 438,
            }
        } else {
            next_model += 1;
            next_model
        };
        let description = env.db.models[name].description.clone();
        env.insert_record(
            "ir.model",
            model_id,
            json!({"model": name, "name": description, "state": "base", "transient": false})
                .as_object()
                .cloned()
                .expect("object"),
        );
        let fields: Vec<Field> = env.db.models[name].fields.values().cloned().collect();
        for f in fields {
            next_field += 1;
            // stock.picking's state and its value "Ready" have the recorded ids: automations
            // name them (17/119, 18/177–178, 19/181–182).
            let field_id = if name == "stock.picking" && f.name == "state" {
                match env.v() {
                    17 => 3945,
                    18 => 4146,
                    _ => 4492,
                }
            } else {
                next_field
            };
            if field_id != next_field {
                let ready = match env.v() {
                    17 => 678,
                    18 => 1260,
                    _ => 1300,
                };
                env.insert_record(
                    "ir.model.fields.selection",
                    ready,
                    json!({"field_id": field_id, "value": "assigned", "name": "Ready"})
                        .as_object()
                        .cloned()
                        .expect("object"),
                );
            }
            env.insert_record(
                "ir.model.fields",
                field_id,
                json!({
                    "name": f.name, "model": name, "model_id": model_id,
                    "field_description": f.string, "ttype": f.ty.odoo_name(), "state": "base",
                    "relation": f.relation.clone().map(Value::String).unwrap_or(json!(false)),
                    "required": f.required, "readonly": f.readonly, "store": f.store,
                    "copied": true, "index": false,
                })
                .as_object()
                .cloned()
                .expect("object"),
            );
        }
    }
    let seeded = (|| -> Result<(), Fail> {
        at(
            env,
            "res.country",
            21,
            json!({"name": "Belgium", "code": "BE"}),
        )?;
        at(
            env,
            "res.country",
            233,
            json!({"name": "United States", "code": "US"}),
        )?;
        at(
            env,
            "res.country.state",
            13,
            json!({"name": "California", "code": "CA", "country_id": 233}),
        )?;
        at(
            env,
            "res.partner",
            1,
            json!({"name": "My Company (San Francisco)", "is_company": true}),
        )?;
        at(
            env,
            "res.company",
            1,
            json!({"name": "My Company (San Francisco)", "partner_id": 1}),
        )?;
        // Mitchell Admin belongs to the demo company partner "YourCompany": messages he
        // writes show "YourCompany, Mitchell Admin" (17/111, 18/176, 19/180). The parent's
        // id is not in any recording.
        at(
            env,
            "res.partner",
            3,
            json!({"name": "Mitchell Admin", "email": "admin@yourcompany.example.com"}),
        )?;
        at(
            env,
            "res.partner",
            7,
            json!({"name": "YourCompany", "is_company": true}),
        )?;
        env.set("res.partner", 3, "parent_id", json!(7));
        at(
            env,
            "res.users",
            ADMIN_UID,
            json!({
                "login": login, "name": "Mitchell Admin", "company_id": 1, "partner_id": 3,
                "lang": "en_US", "tz": "Europe/Brussels",
            }),
        )?;
        // kg as numbered on the recorded servers (transcripts 18/78, 19/85).
        let kg = if v19 { 16 } else { 12 };
        for (id, name, factor) in [
            (1, "Units", 1.0),
            (2, "Dozens", 1.0 / 12.0),
            (4, "g", 1000.0),
            (5, "L", 1.0),
            (6, "m", 1.0),
            (kg, "kg", 1.0),
        ] {
            at(env, "uom.uom", id, json!({"name": name, "factor": factor}))?;
        }
        at(env, "product.category", 1, json!({"name": "All"}))?;
        at(
            env,
            "mail.message.subtype",
            1,
            json!({"name": "Discussions"}),
        )?;
        at(env, "mail.message.subtype", 2, json!({"name": "Note"}))?;
        // Location ids as on the recorded servers: WH/Stock is 8 on 18 and 5 on 19; 19 no
        // longer has the "Partners/" prefix.
        let loc = |env: &mut Env, id, full: &str, usage: &str, parent: i64| {
            let name = full.rsplit('/').next().unwrap_or(full);
            at(
                env,
                "stock.location",
                id,
                json!({
                    "name": name, "complete_name": full, "usage": usage,
                    "location_id": parent, "company_id": if usage == "internal" || usage == "view" { json!(1) } else { json!(false) },
                }),
            )
        };
        let (stock, view) = if v19 {
            loc(env, 1, "Vendors", "supplier", 0)?;
            loc(env, 2, "Customers", "customer", 0)?;
            loc(env, 3, "Virtual Locations", "view", 0)?;
            loc(env, 4, "WH", "view", 0)?;
            loc(env, 5, "WH/Stock", "internal", 4)?;
            loc(
                env,
                14,
                "Virtual Locations/Inventory adjustment",
                "inventory",
                3,
            )?;
            (5, 4)
        } else {
            loc(env, 1, "Physical Locations", "view", 0)?;
            loc(env, 2, "Partners", "view", 0)?;
            loc(env, 3, "Virtual Locations", "view", 0)?;
            loc(env, 4, "Partners/Vendors", "supplier", 2)?;
            loc(env, 5, "Partners/Customers", "customer", 2)?;
            loc(env, 7, "WH", "view", 1)?;
            loc(env, 8, "WH/Stock", "internal", 7)?;
            loc(
                env,
                14,
                "Virtual Locations/Inventory adjustment",
                "inventory",
                3,
            )?;
            (8, 7)
        };
        env.set("stock.location", stock, "barcode", json!("WH-STOCK"));
        let vendors = env.location_by_usage("supplier");
        let customers = env.location_by_usage("customer");
        at(
            env,
            "stock.warehouse",
            1,
            json!({
                "name": "YourCompany", "code": "WH", "lot_stock_id": stock,
                "view_location_id": view, "company_id": 1,
            }),
        )?;
        at(
            env,
            "stock.picking.type",
            1,
            json!({
                "name": "Receipts", "code": "incoming", "sequence_code": "IN", "warehouse_id": 1,
                "default_location_src_id": vendors, "default_location_dest_id": stock,
            }),
        )?;
        at(
            env,
            "stock.picking.type",
            2,
            json!({
                "name": "Delivery Orders", "code": "outgoing", "sequence_code": "OUT",
                "warehouse_id": 1, "default_location_src_id": stock,
                "default_location_dest_id": customers,
            }),
        )?;
        Ok(())
    })();
    if let Err(fail) = seeded {
        panic!("stand-in base data: {}: {}", fail.name, fail.message);
    }
}

/// Marks product values storable as the version spells it (`is_storable` from 18 on,
/// `detailed_type = 'product'` on 17).
fn storable(env: &Env, vals: &mut Value) {
    if env.v() >= 18 {
        vals["type"] = json!("consu");
        vals["is_storable"] = json!(true);
    } else {
        vals["detailed_type"] = json!("product");
    }
}

pub(crate) fn seed_demo(env: &mut Env) -> Result<Demo, Fail> {
    let v19 = env.v() >= 19;
    let partner = at(
        env,
        "res.partner",
        if v19 { 8 } else { 9 },
        json!({
            "name": "Wood Corner", "is_company": true, "street": "1839 Arbor Way", "zip": "95380",
            "city": "Turlock", "state_id": 13, "country_id": 233,
            "email": "wood.corner26@example.com", "phone": "(623)-853-7197", "vat": "US12345672",
        }),
    )?;
    let (desk, cabinet, drawer) = (8, if v19 { 20 } else { 17 }, if v19 { 39 } else { 33 });
    let products = [
        (5, "FURN_7777", "Office Chair", json!(false), 70.0),
        (6, "FURN_8888", "Office Lamp", json!("40164785534112"), 40.0),
        (desk, "FURN_7800", "Desk Combination", json!(false), 450.0),
        (cabinet, "E-COM07", "Large Cabinet", json!(false), 320.0),
        (drawer, "FURN_8855", "Drawer", json!(false), 110.5),
    ];
    // Templates below 36: the first template the transcripts create is 36 on both versions.
    for (n, (id, code, name, barcode, price)) in products.into_iter().enumerate() {
        env.seq.insert("product.template".into(), 10 + n as i64);
        let mut vals = json!({
            "name": name, "default_code": code, "barcode": barcode, "list_price": price,
        });
        storable(env, &mut vals);
        at(env, "product.product", id, vals)?;
    }
    let stock = env.stock_location();
    for (product, qty) in [(drawer, 40.0), (cabinet, 150.0), (desk, 48.0)] {
        env.move_stock(product, stock, qty)?;
    }
    let dates: [&str; 5] = if v19 {
        [
            "2026-11-27 19:28:40",
            "2026-11-12 19:28:40",
            "2026-11-30 19:28:41",
            "2026-11-09 19:28:41",
            "2026-11-20 19:28:41",
        ]
    } else {
        [
            "2026-11-27 19:05:03",
            "2026-11-12 19:05:03",
            "2026-11-30 19:05:03",
            "2026-11-09 19:05:03",
            "2026-11-20 19:05:03",
        ]
    };
    // (picking, move, move line, product, demand, reserved), as transcripts 18/53–54 show.
    let deliveries = [
        (1, 18, 18, drawer, 15.0, 15.0, dates[0]),
        (2, 19, 19, cabinet, 180.0, 100.0, dates[1]),
        (5, 22, 20, desk, 16.0, 16.0, dates[2]),
        (6, 23, 21, desk, 40.0, 32.0, dates[3]),
        (7, 24, 22, cabinet, 50.0, 50.0, dates[4]),
    ];
    let vendors = env.location_by_usage("supplier");
    let mut ids = Vec::new();
    for (picking, mv, line, product, demand, reserved, date) in deliveries {
        if picking == 5 {
            for (receipt, name) in [(3, "WH/IN/00001"), (4, "WH/IN/00002")] {
                at(
                    env,
                    "stock.picking",
                    receipt,
                    json!({
                        "name": name, "picking_type_id": 1, "location_id": vendors,
                        "location_dest_id": stock, "state": "done", "scheduled_date": date,
                        "date_done": date, "partner_id": partner,
                    }),
                )?;
            }
        }
        env.seq.insert("stock.picking".into(), picking);
        let p = env.add_delivery(
            partner,
            &[],
            Some(&format!("WH/OUT/{picking:05}")),
            Some(date),
        )?;
        assert_eq!(p, picking);
        env.seq.insert("stock.move".into(), mv);
        env.seq.insert("stock.move.line".into(), line);
        env.add_move(p, product, demand, reserved)?;
        ids.push(p);
    }
    Ok(Demo {
        stock_location: stock,
        customers_location: env.location_by_usage("customer"),
        partner,
        office_chair: 5,
        office_lamp: 6,
        deliveries: ids,
    })
}

/// The data the second recording (2026-11-29) made before its first exchange, with the ids
/// the recorded servers gave it: products `TR2-*` (export pair, lot-tracked, consumable,
/// service, archived, the `load` rows, a price row, a plain storable, a busy row and
/// `TR2-B0001`…`TR2-B0500`), Germany and the partner "TR2 Customer GmbH". Call it after
/// [`seed_demo`] and before replaying 18/76 or 19/83.
pub(crate) fn seed_second_recording(env: &mut Env) -> Result<(), Fail> {
    let v19 = env.v() >= 19;
    second_recording_demo_deliveries(env)?;
    // Country ids are fixed by Odoo's data files, below the seeded United States.
    env.insert_record(
        "res.country",
        57,
        json!({"name": "Germany", "code": "DE"})
            .as_object()
            .cloned()
            .expect("object"),
    );
    at(
        env,
        "res.partner",
        44,
        json!({
            "name": "TR2 Customer GmbH", "is_company": true, "street": "Hauptstrasse 12",
            "street2": "Hof 3", "zip": "10115", "city": "Berlin", "country_id": 57,
            "phone": "+49 30 1234567", "email": "orders@tr2-customer.example",
        }),
    )?;
    let first = if v19 { 54 } else { 88 };
    let tag = if v19 { "TR219" } else { "TR218" };
    // (code, name, barcode, kind): in the order the recorded servers numbered them.
    let named: [(&str, &str, Value, &str); 12] = [
        (
            "TR2-P1",
            "TR2 Export Widget",
            json!(format!("{tag}P1000001")),
            "storable",
        ),
        (
            "TR2-P2",
            "TR2 Export Gadget",
            json!(format!("{tag}P2000002")),
            "storable",
        ),
        ("TR2-LOT", "TR2 Lot Tracked", json!(false), "lot"),
        ("TR2-C1", "TR2 Consumable", json!(false), "consu"),
        ("TR2-S1", "TR2 Service", json!(false), "service"),
        ("TR2-ARCH", "TR2 Archived", json!(false), "archived"),
        ("TR2-A1", "TR2 Load One", json!(false), "storable"),
        ("TR2-A2", "TR2 Load Two", json!(false), "storable"),
        ("TR2-A3", "TR2 Load Three", json!(false), "storable"),
        ("TR2-PR", "TR2 Prices", json!(false), "storable"),
        ("TR2-Q1", "TR2 Quant Plain", json!(false), "storable"),
        ("TR2-BUSY", "TR2 Busy", json!(false), "storable"),
    ];
    let bulk = (1..=500).map(|n| {
        (
            format!("TR2-B{n:04}"),
            format!("TR2 Bulk {n:04}"),
            json!(false),
            "storable",
        )
    });
    let all = named
        .into_iter()
        .map(|(c, n, b, k)| (c.to_string(), n.to_string(), b, k))
        .chain(bulk);
    for (n, (code, name, barcode, kind)) in all.enumerate() {
        let mut vals = json!({
            "name": name, "default_code": code, "barcode": barcode,
            "list_price": 10.0, "standard_price": 4.0,
        });
        match kind {
            "consu" | "service" => vals["type"] = json!(kind),
            _ => storable(env, &mut vals),
        }
        if kind == "lot" {
            vals["tracking"] = json!("lot");
        }
        if kind == "archived" {
            vals["active"] = json!(false);
        }
        at(env, "product.product", first + n as i64, vals)?;
    }
    // Stock for the export pair, reserved by the deliveries the recording creates.
    let stock = env.stock_location();
    for product in [first, first + 1] {
        env.move_stock(product, stock, 100.0)?;
    }
    Ok(())
}

/// The demo deliveries as the second recording's servers held them (18/134, 19/141): the
/// same pickings and moves as the first recording's, scheduled at other times, and on 18
/// WH/OUT/00003 and WH/OUT/00004 (moves 20 and 21) ready too, where the first recording's
/// database had its receipts. Pickings 1 and 4 of 18 share the second shown; Odoo stores
/// the fraction and lists 1 first.
fn second_recording_demo_deliveries(env: &mut Env) -> Result<(), Fail> {
    let dates: &[(i64, &str)] = if env.v() >= 19 {
        &[
            (1, "2026-11-29 18:36:49"),
            (2, "2026-11-14 18:36:49"),
            (5, "2026-12-02 18:36:49"),
            (6, "2026-11-11 18:36:49"),
            (7, "2026-11-22 18:36:49"),
        ]
    } else {
        &[
            (1, "2026-11-29 18:36:30.1"),
            (2, "2026-11-14 18:36:30"),
            (3, "2026-11-24 18:36:30"),
            (4, "2026-11-29 18:36:30.2"),
            (5, "2026-12-02 18:36:31"),
            (6, "2026-11-11 18:36:31"),
            (7, "2026-11-22 18:36:31"),
        ]
    };
    if env.v() == 18 {
        let stock = env.stock_location();
        let customers = env.location_by_usage("customer");
        let out_type = env
            .where_eq("stock.picking.type", "code", &json!("outgoing"))
            .first()
            .copied()
            .unwrap_or(0);
        for (picking, mv, origin) in [
            (3, 20, "outgoing shipment"),
            (4, 21, "your company warehouse"),
        ] {
            let vals = json!({
                "name": format!("WH/OUT/{picking:05}"), "picking_type_id": out_type,
                "location_id": stock, "location_dest_id": customers, "state": "assigned",
                "origin": origin, "date_done": false,
            });
            env.plain_write(
                "stock.picking",
                &[picking],
                vals.as_object().expect("object"),
            )?;
            // Below moves already taken: put in place, one unit of Office Chair reserved.
            let mv_vals = json!({
                "name": env.display_name("product.product", 5), "picking_id": picking,
                "product_id": 5, "product_uom_qty": 1.0, "quantity": 1.0, "product_uom": 1,
                "location_id": stock, "location_dest_id": customers, "state": "assigned",
                "picked": false, "partner_id": env.raw("stock.picking", picking, "partner_id"),
                "picking_type_id": out_type, "origin": origin,
            });
            env.insert_record(
                "stock.move",
                mv,
                mv_vals.as_object().cloned().expect("object"),
            );
        }
    }
    for &(picking, date) in dates {
        env.set("stock.picking", picking, "scheduled_date", json!(date));
    }
    Ok(())
}

/// Deliveries made on the recorded servers between exchanges, as the recorded requests made
/// theirs (18/129, 19/136, 17/67): `(picking id, first move id, origin)` each, two moves (5 ×
/// the export widget, 3 × the export gadget), confirmed and reserved unless `draft`. 18 and
/// 19: WH/OUT/00009–00013 (TR2-SO-002…006) scheduled as 18/134 and 19/141 list them; 17: the
/// TR17-* pickings its later requests name.
pub(crate) fn seed_recorded_deliveries(
    env: &mut Env,
    pickings: &[(i64, i64, &str)],
    draft: bool,
) -> Result<(), Fail> {
    let (product, scheduled) = match env.v() {
        17 => (47, None),
        18 => (88, Some("2026-11-29 18:49:11")),
        _ => (54, Some("2026-11-29 18:49:20")),
    };
    let stock = env.stock_location();
    let customers = env.location_by_usage("customer");
    let out_type = env
        .where_eq("stock.picking.type", "code", &json!("outgoing"))
        .first()
        .copied()
        .unwrap_or(0);
    for &(picking, first_move, origin) in pickings {
        let mut moves = Vec::new();
        for (offset, qty) in [(0, 5), (1, 3)] {
            let mut mv = json!({
                "location_id": stock, "location_dest_id": customers,
                "product_id": product + offset, "product_uom": 1, "product_uom_qty": qty,
            });
            if env.v() < 19 {
                // stock.move has no `name` on 19 (19/136); 17 and 18 require it (17/67, 18/129).
                mv["name"] = json!(env.str_of("product.product", product + offset, "name"));
            }
            moves.push(json!([0, 0, mv]));
        }
        env.seq.insert("stock.move".into(), first_move);
        let mut vals = json!({
            "location_id": stock, "location_dest_id": customers, "move_ids": moves,
            "note": "<p>Leave at the back door</p>", "origin": origin,
            "partner_id": if env.v() == 17 { 43 } else { 44 }, "picking_type_id": out_type,
        });
        if let Some(at) = scheduled {
            vals["scheduled_date"] = json!(at);
        }
        let picking = at(env, "stock.picking", picking, vals)?;
        if !draft {
            env.action_confirm(&[picking])?;
        }
    }
    Ok(())
}

/// What 17's recording made between exchanges for its deliveries (17/66–67): Germany (id
/// fixed by Odoo's data) and the export pair TR17-P1 (47) and TR17-P2 (48) with stock.
pub(crate) fn seed_17_export_products(env: &mut Env) -> Result<(), Fail> {
    if !env.exists("res.country", 57) {
        env.insert_record(
            "res.country",
            57,
            json!({"name": "Germany", "code": "DE"})
                .as_object()
                .cloned()
                .expect("object"),
        );
    }
    for (id, code, name, barcode) in [
        (47, "TR17-P1", "TR17 Export Widget", "TR17P1000001"),
        (48, "TR17-P2", "TR17 Export Gadget", "TR17P2000002"),
    ] {
        let mut vals = json!({
            "name": name, "default_code": code, "barcode": barcode,
            "list_price": 10.0, "standard_price": 4.0,
        });
        storable(env, &mut vals);
        at(env, "product.product", id, vals)?;
        let stock = env.stock_location();
        env.move_stock(id, stock, 100.0)?;
    }
    Ok(())
}
