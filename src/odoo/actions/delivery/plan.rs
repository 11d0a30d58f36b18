//! What each confirmation does to its picking: the shipped lines matched to the picking's
//! moves, our rules checked, the values each move gets.

use super::*;

impl<'a> Applier<'a> {
    /// What record `c` writes on its picking, `None` for a replay of a done picking, or why it
    /// fails.
    pub(super) fn plan(
        &self,
        confirm: &ConfirmDeliveryMapping,
        done_field: DoneField,
        c: &Confirmation<'_>,
        candidates: &[PickingRead],
        moves_of: &HashMap<i64, Vec<MoveRead>>,
        lots: &HashMap<(String, i64), Vec<i64>>,
    ) -> Result<Option<(PickingRead, Writes)>, Refusal> {
        let by = confirm.picking.field.as_str();
        let picking_refusal = |message: String| Refusal {
            message,
            exception: None,
            field: Some(by.to_string()),
            value: Some(c.key.clone()),
        };
        // The products shipped, looked up; several lines of a product add up.
        let mut shipped: BTreeMap<i64, Vec<(f64, Option<Value>)>> = BTreeMap::new();
        let mut named: HashMap<i64, String> = HashMap::new();
        for line in &c.lines {
            let r = product_ref(c.op, &line.product);
            let product = self.looked_up("product_id", &r)?;
            named.insert(product, text(&line.product));
            shipped
                .entry(product)
                .or_default()
                .push((line.quantity, line.lot.clone()));
        }
        let total = |product: &i64| -> f64 {
            shipped
                .get(product)
                .map(|l| l.iter().map(|(q, _)| q).sum())
                .unwrap_or(0.0)
        };
        if shipped.keys().all(|p| total(p) <= 0.0) {
            return Err(picking_refusal(format!(
                "the confirmation of {by} '{}' ships nothing (every quantity is 0)",
                c.key
            )));
        }

        if candidates.is_empty() {
            return Err(picking_refusal(format!(
                "no picking with {by} '{}' in Odoo",
                c.key
            )));
        }
        // A replay: a done picking of this key shipped exactly this.
        let empty = Vec::new();
        let moves = |p: &PickingRead| moves_of.get(&p.id).unwrap_or(&empty);
        let same_as_done = |p: &PickingRead| {
            let mut done: BTreeMap<i64, f64> = BTreeMap::new();
            for m in moves(p).iter().filter(|m| m.state == "done") {
                *done.entry(m.product).or_default() += m.done;
            }
            let products: BTreeSet<i64> = done.keys().chain(shipped.keys()).copied().collect();
            products.iter().all(|p| {
                same_float(
                    done.get(p).copied().unwrap_or(0.0),
                    total(p),
                    EPSILON_DIGITS,
                )
            })
        };
        if candidates
            .iter()
            .any(|p| p.state == "done" && same_as_done(p))
        {
            return Ok(None);
        }
        let open: Vec<&PickingRead> = candidates
            .iter()
            .filter(|p| !matches!(p.state.as_str(), "done" | "cancel"))
            .collect();
        let picking = match open.as_slice() {
            [one] => *one,
            [] => {
                let p = &candidates[0];
                if p.state == "cancel" {
                    return Err(picking_refusal(format!(
                        "picking {} is cancelled in Odoo: a cancelled delivery cannot be \
                         shipped",
                        p.name
                    )));
                }
                let mut done: BTreeMap<i64, (String, f64)> = BTreeMap::new();
                for m in moves(p).iter().filter(|m| m.state == "done") {
                    let e = done
                        .entry(m.product)
                        .or_insert((m.product_name.clone(), 0.0));
                    e.1 += m.done;
                }
                let mut differences = Vec::new();
                let products: BTreeSet<i64> = done.keys().chain(shipped.keys()).copied().collect();
                for product in products {
                    let was = done.get(&product).map_or(0.0, |d| d.1);
                    let now = total(&product);
                    if !same_float(was, now, EPSILON_DIGITS) {
                        let name = named
                            .get(&product)
                            .cloned()
                            .or_else(|| done.get(&product).map(|d| d.0.clone()))
                            .unwrap_or_default();
                        differences.push(format!(
                            "{name}: {} shipped, this file says {}",
                            qty(was),
                            qty(now)
                        ));
                    }
                }
                return Err(picking_refusal(format!(
                    "picking {} was already validated with other quantities ({}); nothing \
                     was changed",
                    p.name,
                    differences.join("; ")
                )));
            }
            many => {
                return Err(picking_refusal(format!(
                    "{} open pickings have {by} '{}' ({}): name the picking instead",
                    many.len(),
                    c.key,
                    many.iter()
                        .map(|p| p.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        };
        if picking.state == "draft" {
            return Err(picking_refusal(format!(
                "picking {} is a draft in Odoo (not confirmed yet): confirm it before it \
                 is shipped",
                picking.name
            )));
        }

        let open_moves: Vec<&MoveRead> = moves(picking)
            .iter()
            .filter(|m| !matches!(m.state.as_str(), "done" | "cancel"))
            .collect();
        let in_picking: BTreeSet<i64> = open_moves.iter().map(|m| m.product).collect();
        for (product, name) in &named {
            if !in_picking.contains(product) {
                let holds: BTreeSet<&str> =
                    open_moves.iter().map(|m| m.product_name.as_str()).collect();
                return Err(Refusal {
                    message: format!(
                        "product '{name}' is not in picking {} (it holds {})",
                        picking.name,
                        holds.into_iter().collect::<Vec<_>>().join(", ")
                    ),
                    exception: None,
                    field: Some("product_id".into()),
                    value: Some(name.clone()),
                });
            }
        }
        let mut moves_vals = Vec::new();
        for (product, lines) in &shipped {
            let of_product: Vec<&MoveRead> = open_moves
                .iter()
                .copied()
                .filter(|m| m.product == *product)
                .collect();
            let demand: f64 = of_product.iter().map(|m| m.demand).sum();
            let total = total(product);
            let name = &named[product];
            if total > demand
                && !same_float(total, demand, EPSILON_DIGITS)
                && !confirm.allow_over_delivery
            {
                return Err(Refusal {
                    message: format!(
                        "product '{name}': {} shipped, but picking {} asks for {} (a quantity \
                         above the demand is refused; allow_over_delivery = true ships it)",
                        qty(total),
                        picking.name,
                        qty(demand)
                    ),
                    exception: None,
                    field: Some("quantity".into()),
                    value: Some(qty(total)),
                });
            }
            let tracked = matches!(
                self.tracking.borrow().get(product).map(String::as_str),
                Some("lot" | "serial")
            );
            if tracked && lines.iter().any(|(q, lot)| *q > 0.0 && lot.is_none()) {
                return Err(Refusal {
                    message: format!(
                        "product '{name}' is tracked by lot or serial number: each of its \
                         lines needs a lot"
                    ),
                    exception: None,
                    field: Some("lot_id".into()),
                    value: None,
                });
            }
            // Lots: each named lot must exist for the product.
            let mut chunks: Parts = Vec::new();
            for (q, lot) in lines {
                let lot = match lot {
                    None => None,
                    Some(lot) => match lots.get(&(text(lot), *product)).map(Vec::as_slice) {
                        Some([id]) => Some(*id),
                        Some([_, _, ..]) => {
                            return Err(Refusal {
                                message: format!(
                                    "lot '{}' of product '{name}' is not unique in Odoo",
                                    text(lot)
                                ),
                                exception: None,
                                field: Some("lot_id".into()),
                                value: Some(text(lot)),
                            });
                        }
                        _ => {
                            return Err(Refusal {
                                message: format!(
                                    "lot '{}' of product '{name}' not found in Odoo",
                                    text(lot)
                                ),
                                exception: None,
                                field: Some("lot_id".into()),
                                value: Some(text(lot)),
                            });
                        }
                    },
                };
                if *q > 0.0 {
                    chunks.push((*q, lot));
                }
            }
            for (mv, parts) in allocate(&of_product, chunks) {
                moves_vals.push((mv.id, move_vals(done_field, mv, &parts)));
            }
        }
        // Moves of products the file does not list ship nothing.
        for m in &open_moves {
            if shipped.contains_key(&m.product) {
                continue;
            }
            let vals = match done_field {
                DoneField::QuantityPicked if m.picked => json!({"picked": false}),
                DoneField::QuantityDone if m.done != 0.0 => json!({"quantity_done": 0.0}),
                _ => continue,
            };
            moves_vals.push((m.id, vals));
        }
        Ok(Some((
            picking.clone(),
            Writes {
                moves: moves_vals,
                tracking: c.tracking.clone(),
            },
        )))
    }
}

/// The product lookup of one line of `op`.
pub(super) fn product_ref(op: &Operation, product: &Value) -> LookupRef {
    let (model, field) = op
        .lookups
        .get("product_id")
        .map(|r| (r.model.clone(), r.field.clone()))
        .unwrap_or_else(|| ("product.product".into(), "default_code".into()));
    LookupRef {
        model,
        field,
        value: product.clone(),
    }
}

/// Reads a record's confirmation out of its operation.
pub(super) fn confirmation<'o>(
    tag: Tag,
    op: &'o Operation,
    by: &str,
) -> Result<Confirmation<'o>, Refusal> {
    let bad = |message: &str| Refusal {
        message: message.to_string(),
        exception: None,
        field: None,
        value: None,
    };
    let key = op
        .key
        .get(by)
        .map(text)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| bad(&format!("the confirmation names no picking {by}")))?;
    let lines = op
        .values
        .get("lines")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("the confirmation has no lines"))?
        .iter()
        .map(|l| {
            let product = l.get("product_id").cloned().unwrap_or(Value::Null);
            let quantity = l
                .get("quantity")
                .and_then(number)
                .ok_or_else(|| bad("a line's quantity is not a number"))?;
            Ok(Shipped {
                product,
                quantity,
                lot: l.get("lot_id").cloned(),
            })
        })
        .collect::<Result<Vec<_>, Refusal>>()?;
    Ok(Confirmation {
        tag,
        key,
        lines,
        tracking: op.values.get("carrier_tracking_ref").map(text),
        op,
    })
}

pub(super) fn move_read(m: &Map<String, Value>, done_field: DoneField) -> Option<MoveRead> {
    Some(MoveRead {
        id: record_id(m)?,
        picking: m.get("picking_id").and_then(many2one_id)?,
        product: m.get("product_id").and_then(many2one_id)?,
        product_name: m.get("product_id").map(display).unwrap_or_default(),
        demand: m.get("product_uom_qty").and_then(number).unwrap_or(0.0),
        done: m.get(done_field.quantity()).and_then(number).unwrap_or(0.0),
        picked: m.get("picked").is_some_and(|v| v == &Value::Bool(true)),
        state: m.get("state").map(text).unwrap_or_default(),
        lines: m
            .get("move_line_ids")
            .and_then(Value::as_array)
            .map(|ids| ids.iter().filter_map(Value::as_i64).collect())
            .unwrap_or_default(),
        location: m
            .get("location_id")
            .map(|v| json!(many2one_id(v)))
            .unwrap_or(Value::Null),
        location_dest: m
            .get("location_dest_id")
            .map(|v| json!(many2one_id(v)))
            .unwrap_or(Value::Null),
    })
}

/// Spreads a product's shipped quantities over its moves in order: each move up to its demand,
/// whatever is above the demand on the last one. Every move of the product is listed (a move
/// that gets nothing with no parts).
pub(super) fn allocate<'m>(moves: &[&'m MoveRead], chunks: Parts) -> Vec<(&'m MoveRead, Parts)> {
    let mut result: Vec<(&MoveRead, Parts)> = moves.iter().map(|m| (*m, Vec::new())).collect();
    let Some(last) = result.len().checked_sub(1) else {
        return result;
    };
    let mut i = 0;
    let mut room = moves[0].demand;
    for (mut q, lot) in chunks {
        while q > 0.0 {
            if i < last && room <= 0.0 {
                i += 1;
                room = moves[i].demand;
                continue;
            }
            let take = if i == last { q } else { q.min(room) };
            result[i].1.push((take, lot));
            q -= take;
            room -= take;
        }
    }
    result
}

/// The values one move gets: the quantity shipped on it, picked, and its move lines replaced
/// by one per lot when lots are named.
pub(super) fn move_vals(
    done_field: DoneField,
    mv: &MoveRead,
    parts: &[(f64, Option<i64>)],
) -> Value {
    let quantity: f64 = parts.iter().map(|(q, _)| q).sum();
    let mut vals = Map::new();
    vals.insert(done_field.quantity().into(), json!(quantity));
    if done_field == DoneField::QuantityPicked {
        vals.insert("picked".into(), json!(quantity > 0.0));
    }
    if parts.iter().any(|(_, lot)| lot.is_some()) {
        let mut commands: Vec<Value> = mv.lines.iter().map(|l| json!([2, l])).collect();
        for (q, lot) in parts {
            let mut line = Map::new();
            line.insert("product_id".into(), json!(mv.product));
            line.insert("location_id".into(), mv.location.clone());
            line.insert("location_dest_id".into(), mv.location_dest.clone());
            line.insert(done_field.line_quantity().into(), json!(q));
            if let Some(lot) = lot {
                line.insert("lot_id".into(), json!(lot));
            }
            if done_field == DoneField::QuantityPicked {
                line.insert("picked".into(), json!(true));
            }
            commands.push(json!([0, 0, line]));
        }
        vals.insert("move_line_ids".into(), Value::Array(commands));
    }
    Value::Object(vals)
}

/// Odoo's refusal of something done to `picking`, naming it.
pub(super) fn refusal_on(picking: &PickingRead, doing: &str, e: &OdooError) -> Refusal {
    let mut r = Refusal::odoo(e);
    r.message = format!("{doing} on picking {}: {}", picking.name, r.message);
    r
}

/// A quantity as people write it: 5, 2.5.
pub(super) fn qty(q: f64) -> String {
    text(&json!(q))
}
