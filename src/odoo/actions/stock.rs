//! `set_stock`: on-hand quantities set through `stock.quant` in inventory mode, only where
//! they differ from what Odoo has. The quantity a partner reports for a location is the total
//! under it (child locations and packages included): the location's own quant is set to what
//! makes that total, and a line that would need it negative is refused; a lot is looked up for its product, and a tracked product
//! without a lot is refused here rather than left to Odoo's wizard. A full snapshot then sets
//! the quants its files leave out to 0.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Value, json};

use super::batch::{At, Counts, Guard, Outcome, Sent, merge, send_split, tally};
use super::compare::{display, is_set, many2one_id, number, record_id, same_float, text};
use super::lookup::resolved;
use super::{Applier, BatchDone, FileResult, Refusal, Tag, Vals, tagged};
use crate::error::Consequence;
use crate::odoo::client::{Args, SearchOptions};
use crate::odoo::error::OdooError;
use crate::operation::Operation;

impl<'a> Applier<'a> {
    /// Applies one batch of `set_stock` operations.
    pub(super) async fn set_stock(
        &self,
        files: &[&[Operation]],
        batch: &[At],
        g: &mut Guard,
    ) -> Result<Outcome, OdooError> {
        let client = self.client;
        let mut out = Outcome::default();
        let ops = g.keep(tagged(files, batch), &mut out);
        // Products and locations first: a lot is looked up for its product.
        self.resolve(
            ops.iter()
                .flat_map(|(_, op)| op.lookups.iter())
                .filter(|(field, _)| *field != "lot_id")
                .map(|(_, r)| r),
            true,
        )
        .await?;
        let mut targets = Vec::new();
        for (tag, op) in ops {
            let target = ["product_id", "location_id"].map(|field| match op.lookups.get(field) {
                Some(r) => self.looked_up(field, r),
                None => match op.key.get(field).and_then(Value::as_i64) {
                    Some(id) => Ok(id),
                    None => Err(Refusal::ours(
                        format!("no {field} to set the stock of"),
                        field,
                    )),
                },
            });
            match target {
                [Ok(product), Ok(location)] => targets.push((tag, op, product, location)),
                [Err(r), _] | [_, Err(r)] => {
                    out.unresolved.push(tag.file);
                    g.fail(tag, r, &mut out);
                }
            }
        }
        self.resolve_lots(&targets).await?;
        self.resolve_tracking(&targets).await?;

        let mut items: Vec<(Tag, (QuantKey, f64))> = Vec::new();
        for (mut tag, op, product, location) in targets {
            let lot = match op.lookups.get("lot_id") {
                // Odoo answers a quant of a tracked product without a lot with a wizard and
                // applies nothing, while the create itself succeeds: refuse the line here.
                None if matches!(
                    self.tracking.borrow().get(&product).map(String::as_str),
                    Some("lot" | "serial")
                ) =>
                {
                    let name = op.key.get("product_id").map(text).unwrap_or_default();
                    let refusal = Refusal::ours(
                        format!(
                            "product '{name}' is tracked by lot or serial number: the line needs a lot"
                        ),
                        "lot_id",
                    );
                    out.seen.push((tag.file, (product, location)));
                    g.fail(tag, refusal, &mut out);
                    continue;
                }
                None => None,
                Some(r) => {
                    let lots = self.lots.borrow();
                    let cached =
                        lots.get(&(r.model.clone(), r.field.clone(), product, text(&r.value)));
                    let of_product = match op.key.get("product_id") {
                        Some(p) => format!(" for product '{}'", text(p)),
                        None => String::new(),
                    };
                    let lot = resolved(cached, "lot_id", r, &of_product);
                    drop(lots);
                    match lot {
                        Ok(id) => Some(id),
                        Err(refusal) => {
                            // The product is in the file even though this line failed.
                            out.seen.push((tag.file, (product, location)));
                            g.fail(tag, refusal, &mut out);
                            continue;
                        }
                    }
                }
            };
            out.seen.push((tag.file, (product, location)));
            let Some(quantity) = op.values.get("inventory_quantity").and_then(number) else {
                let shown = op.values.get("inventory_quantity").map(text);
                g.fail(
                    tag,
                    Refusal {
                        message: format!(
                            "the quantity {} is not a number",
                            shown.as_deref().unwrap_or("(none)")
                        ),
                        exception: None,
                        field: Some("inventory_quantity".into()),
                        value: shown,
                    },
                    &mut out,
                );
                continue;
            };
            let key = QuantKey {
                product,
                location,
                lot,
            };
            tag.quant = Some((product, location));
            items.push((tag, (key, quantity)));
        }
        let items = g.keep(items, &mut out);
        if items.is_empty() {
            return Ok(out);
        }
        self.describe("stock.quant", &BTreeSet::from(["quantity"]))
            .await?;
        let digits = self.digits("stock.quant", "quantity");

        let products: BTreeSet<i64> = items.iter().map(|(_, (k, _))| k.product).collect();
        let locations: BTreeSet<i64> = items.iter().map(|(_, (k, _))| k.location).collect();
        // A quantity a partner reports for a location is all there is under it: its child
        // locations and packages count too. Two reads: the locations under those of the
        // batch (to know which quant lies under which line; once per location and run), and
        // their quants.
        let fresh: Vec<i64> = {
            let known = self.expanded.borrow();
            locations
                .iter()
                .copied()
                .filter(|l| !known.contains(l))
                .collect()
        };
        let tree = if fresh.is_empty() {
            Ok(Vec::new())
        } else {
            client
                .search_read(
                    "stock.location",
                    json!([["id", "child_of", fresh]]),
                    &["location_id"],
                    SearchOptions::default(),
                )
                .await
        };
        let domain = json!([
            ["product_id", "in", products],
            [
                "location_id",
                "child_of",
                locations.iter().collect::<Vec<_>>()
            ]
        ]);
        let quants = match tree {
            Ok(tree) => client
                .search_read(
                    "stock.quant",
                    domain,
                    QUANT_FIELDS,
                    SearchOptions::default(),
                )
                .await
                .map(|quants| (tree, quants)),
            Err(e) => Err(e),
        };
        let (tree, quants) = match quants {
            Ok(read) => read,
            Err(e) if e.consequence() == Consequence::Reject => {
                g.fail_all(items.into_iter().map(|(tag, _)| tag), &e, &mut out);
                return Ok(out);
            }
            Err(e) => return Err(e),
        };
        self.expanded.borrow_mut().extend(fresh);
        let parents: HashMap<i64, i64> = {
            let mut known = self.parents.borrow_mut();
            known.extend(tree.iter().filter_map(|l| {
                Some((record_id(l)?, l.get("location_id").and_then(many2one_id)?))
            }));
            known.clone()
        };
        let stock = Below::new(&items, &parents, &quants);
        let mut creates: Vec<(Tag, Vals)> = Vec::new();
        for (tag, (key, quantity)) in items {
            let now = stock.plain(&key);
            let elsewhere = stock.elsewhere_under(&key);
            // What the plain quant of the line's own location must hold for the total under it
            // to be the reported quantity.
            let wanted = quantity - elsewhere;
            if wanted < 0.0 && !same_float(wanted, 0.0, digits) {
                let shown = |q: f64| display(&json!(q));
                g.fail(
                    tag,
                    Refusal {
                        message: format!(
                            "{} reported under this location, but {} of it lie in its child \
                             locations or packages: reaching {} would take a negative quantity \
                             (count the child locations in their own lines, or move the stock)",
                            shown(quantity),
                            shown(elsewhere),
                            shown(quantity)
                        ),
                        exception: None,
                        field: Some("inventory_quantity".into()),
                        value: Some(shown(quantity)),
                    },
                    &mut out,
                );
                continue;
            }
            let wanted = wanted.max(0.0);
            if same_float(wanted, now, digits) {
                out.applied.push(tag);
            } else {
                creates.push((tag, quant_vals(key, wanted, None, None)));
            }
        }
        send_split(creates, g, &mut out, async |chunk: &[(Tag, Vals)]| {
            let vals_list = chunk.iter().map(|(_, v)| v.clone()).collect();
            client
                .create("stock.quant", vals_list, Some(inventory_mode()))
                .await?;
            Ok(Sent::Applied)
        })
        .await?;
        Ok(out)
    }

    /// `snapshot = "full"`: in each location of the pass, the quants with a quantity that no
    /// file lists are set to 0. A location belongs to the last file that lists it (the
    /// state it reports is the newest); a quant is absent when that file has no line for its
    /// product in that location, whatever the lot. Quants in packages or of other owners are
    /// set to 0 too. A file stopped by `fail_file` zeroes nothing, and what it applied is kept;
    /// nor does a file with a line whose product or location could not be looked up.
    pub(super) async fn zero_absent(
        &self,
        seen: &StockSeen,
        guard: &mut Guard,
        results: &mut [FileResult],
        batch_no: &mut u32,
        progress: &mut dyn FnMut(BatchDone),
    ) -> Result<(), OdooError> {
        let client = self.client;
        let mut owner: BTreeMap<i64, usize> = BTreeMap::new();
        for (file, locations) in seen.locations.iter().enumerate() {
            if !guard.is_stopped(file) {
                for &l in locations {
                    owner.insert(l, file);
                }
            }
        }
        if owner.is_empty() {
            return Ok(());
        }
        let domain = json!([
            ["location_id", "in", owner.keys().collect::<Vec<_>>()],
            ["quantity", "!=", 0]
        ]);
        let quants = match client
            .search_read(
                "stock.quant",
                domain,
                QUANT_FIELDS,
                SearchOptions::default(),
            )
            .await
        {
            Ok(quants) => quants,
            Err(e) if e.consequence() == Consequence::Reject => {
                let files: BTreeSet<usize> = owner.values().copied().collect();
                let mut out = Outcome::default();
                for file in files {
                    let tag = Tag::zero(file, "reading the stock of the snapshot's locations");
                    guard.fail(tag, Refusal::odoo(&e), &mut out);
                }
                merge(out, results);
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let mut zeroes: Vec<(Tag, Vals)> = Vec::new();
        for q in &quants {
            let Some(key) = quant_key(q) else { continue };
            let Some(&file) = owner.get(&key.location) else {
                continue;
            };
            // A file with a line that could not be looked up (an unknown or ambiguous product)
            // may list the very product found here: nothing is set to 0 on its word.
            if seen.incomplete[file] {
                continue;
            }
            let pair = (key.product, key.location);
            // Listed by the owning file, or set by a later file that fail_file stopped.
            if seen.present[file].contains(&pair)
                || (file + 1..seen.present.len()).any(|f| seen.applied[f].contains(&pair))
            {
                continue;
            }
            let what = format!(
                "setting {} in {} to 0 (absent from this full snapshot)",
                q.get("product_id").map(display).unwrap_or_default(),
                q.get("location_id").map(display).unwrap_or_default()
            );
            let package = q.get("package_id").and_then(many2one_id);
            let owner_id = q.get("owner_id").and_then(many2one_id);
            zeroes.push((
                Tag::zero(file, &what),
                quant_vals(key, 0.0, package, owner_id),
            ));
        }
        zeroes.sort_by_key(|(tag, _)| tag.file);
        let mut rest = zeroes.into_iter().peekable();
        while rest.peek().is_some() {
            let chunk: Vec<(Tag, Vals)> = rest.by_ref().take(self.batch_size).collect();
            *batch_no += 1;
            let mut out = Outcome::default();
            let mut g = guard.clone();
            let send = async |chunk: Vec<(Tag, Vals)>, g: &mut Guard, out: &mut Outcome| {
                send_split(chunk, g, out, async |part: &[(Tag, Vals)]| {
                    let vals_list = part.iter().map(|(_, v)| v.clone()).collect();
                    client
                        .create("stock.quant", vals_list, Some(inventory_mode()))
                        .await?;
                    Ok(Sent::Applied)
                })
                .await
            };
            match send(chunk.clone(), &mut g, &mut out).await {
                Ok(()) => {}
                // Absolute quantities: sending the halves again is safe.
                Err(e) if e.is_timeout() => {
                    out = Outcome::default();
                    g = guard.clone();
                    let mut left = chunk;
                    let right = left.split_off(left.len().div_ceil(2));
                    for half in [left, right] {
                        if !half.is_empty() {
                            send(half, &mut g, &mut out).await?;
                        }
                    }
                }
                Err(e) => return Err(e),
            }
            *guard = g;
            let mut counts: BTreeMap<usize, Counts> = BTreeMap::new();
            tally(&out, &mut counts);
            for tag in &out.applied {
                counts.entry(tag.file).or_default().zeroed += 1;
            }
            for (file, c) in counts {
                progress(BatchDone {
                    file,
                    batch_no: *batch_no,
                    records: 0,
                    outcome: c.snapshot_outcome(),
                });
            }
            merge(out, results);
        }
        Ok(())
    }
}

/// The stock under the locations of a batch's lines, as the partner counts it: a line's
/// location with everything below it, where a child location that has a line of its own for the
/// same product and lot counts with that line's quantity instead of what Odoo holds there.
struct Below {
    /// Plain quants (no package, no owner) by product, location and lot.
    plain: HashMap<QuantKey, f64>,
    /// Per (product, lot) and listed location: what lies under it outside its own plain quant.
    elsewhere: HashMap<QuantKey, f64>,
}

impl Below {
    fn new(
        items: &[(Tag, (QuantKey, f64))],
        parents: &HashMap<i64, i64>,
        quants: &[Vals],
    ) -> Below {
        // The line that counts for each (product, lot, location): the last one of the batch.
        let listed: HashMap<QuantKey, f64> = items.iter().map(|(_, (k, q))| (*k, *q)).collect();
        // The nearest location at or above `location` with a line for this product and lot.
        let owner = |key: &QuantKey, from: i64, include_self: bool| -> Option<i64> {
            let mut at = if include_self {
                Some(from)
            } else {
                parents.get(&from).copied()
            };
            let mut steps = 0;
            while let Some(location) = at {
                if listed.contains_key(&QuantKey { location, ..*key }) {
                    return Some(location);
                }
                // A parent loop in the data must not hang the pass.
                steps += 1;
                if steps > 1000 {
                    return None;
                }
                at = parents.get(&location).copied();
            }
            None
        };
        let mut plain: HashMap<QuantKey, f64> = HashMap::new();
        let mut elsewhere: HashMap<QuantKey, f64> = HashMap::new();
        for q in quants {
            let Some(key) = quant_key(q) else { continue };
            let quantity = q.get("quantity").and_then(number).unwrap_or(0.0);
            let loose = !is_set(q.get("package_id")) && !is_set(q.get("owner_id"));
            if loose {
                *plain.entry(key).or_default() += quantity;
            }
            let Some(line) = owner(&key, key.location, true) else {
                continue;
            };
            // The line's own plain quant is the one set; everything else under it adds up.
            if !(loose && line == key.location) {
                *elsewhere
                    .entry(QuantKey {
                        location: line,
                        ..key
                    })
                    .or_default() += quantity;
            }
        }
        // A child location with a line of its own counts with the quantity of that line.
        for (key, quantity) in &listed {
            if let Some(line) = owner(key, key.location, false) {
                *elsewhere
                    .entry(QuantKey {
                        location: line,
                        ..*key
                    })
                    .or_default() += quantity;
            }
        }
        Below { plain, elsewhere }
    }

    /// The plain quant of the line's own location.
    fn plain(&self, key: &QuantKey) -> f64 {
        self.plain.get(key).copied().unwrap_or(0.0)
    }

    /// What lies under the line's location besides its own plain quant.
    fn elsewhere_under(&self, key: &QuantKey) -> f64 {
        self.elsewhere.get(key).copied().unwrap_or(0.0)
    }
}

/// A quant as edi-bridge sets it: product, location, lot (no package, no owner).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct QuantKey {
    product: i64,
    location: i64,
    lot: Option<i64>,
}

/// set_stock across the batches of one call: what each file listed and applied.
pub(super) struct StockSeen {
    /// Per file: (product, location) of its lines.
    present: Vec<BTreeSet<(i64, i64)>>,
    /// Per file: the locations of its lines.
    locations: Vec<BTreeSet<i64>>,
    /// Per file: (product, location) it applied.
    applied: Vec<BTreeSet<(i64, i64)>>,
    /// Per file: a line could not be looked up, so the file's snapshot is not known whole.
    incomplete: Vec<bool>,
}

impl StockSeen {
    /// Nothing seen yet, for `files` files.
    pub(super) fn new(files: usize) -> StockSeen {
        StockSeen {
            present: vec![BTreeSet::new(); files],
            locations: vec![BTreeSet::new(); files],
            applied: vec![BTreeSet::new(); files],
            incomplete: vec![false; files],
        }
    }

    /// Adds what one batch listed and applied.
    pub(super) fn note(&mut self, out: &Outcome) {
        for &(file, (product, location)) in &out.seen {
            self.present[file].insert((product, location));
            self.locations[file].insert(location);
        }
        for &file in &out.unresolved {
            self.incomplete[file] = true;
        }
        for tag in &out.applied {
            if let Some(pair) = tag.quant {
                self.applied[tag.file].insert(pair);
            }
        }
    }
}

const QUANT_FIELDS: &[&str] = &[
    "product_id",
    "location_id",
    "lot_id",
    "package_id",
    "owner_id",
    "quantity",
];

fn quant_key(q: &Vals) -> Option<QuantKey> {
    Some(QuantKey {
        product: q.get("product_id").and_then(many2one_id)?,
        location: q.get("location_id").and_then(many2one_id)?,
        lot: q.get("lot_id").and_then(many2one_id),
    })
}

/// `stock.quant` `create` values that set the on-hand quantity in the same call (with
/// [`inventory_mode`]): Odoo reuses the quant of that product, location and lot.
fn quant_vals(key: QuantKey, quantity: f64, package: Option<i64>, owner: Option<i64>) -> Vals {
    let mut vals = Vals::new();
    vals.insert("product_id".into(), json!(key.product));
    vals.insert("location_id".into(), json!(key.location));
    if let Some(lot) = key.lot {
        vals.insert("lot_id".into(), json!(lot));
    }
    if let Some(package) = package {
        vals.insert("package_id".into(), json!(package));
    }
    if let Some(owner) = owner {
        vals.insert("owner_id".into(), json!(owner));
    }
    vals.insert("inventory_quantity_auto_apply".into(), json!(quantity));
    vals
}

fn inventory_mode() -> Args {
    let mut context = Args::new();
    context.insert("inventory_mode".into(), json!(true));
    context
}
