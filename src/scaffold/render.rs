//! The scaffold as TOML text: a `[flows.<name>.mapping]` block, commented.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use super::Request;
use super::guess::{Record, odoo_field, other_use};
use super::tree::{Leaf, Leaves, Schema};

/// The column comments start at (longer assignments push them right).
const COMMENT_COLUMN: usize = 56;
/// Elements named in the "not expanded" notes; the rest are counted.
const NAMED_CUTS: usize = 8;

pub fn render(request: &Request, schema: &Schema, record: &Record, leaves: &Leaves) -> String {
    let flow = &request.flow;
    let mut out = String::new();
    let xsd = request.xsd.display();
    let _ = writeln!(
        out,
        "# Scaffolded by `edi-bridge scaffold` from {xsd} ({} read, imports and includes followed).",
        plural(schema.files, "schema file")
    );
    out.push_str(
        "# A starting point to complete by hand: keep the fields you need, check model, action and\n\
         # key, add the flow itself above it ([flows.NAME]: partner, direction = \"import\", inbox,\n",
    );
    let _ = writeln!(
        out,
        "# schema = \"{xsd}\", …), then try it on a real file: edi-bridge validate FILE --flow {flow}"
    );
    out.push_str(
        "# Each field says its XSD type and whether a valid file must have it; \"repeats\": it may\n\
         # occur more than once in a record, and the mapping takes the first.\n\n",
    );

    let _ = writeln!(out, "[flows.{flow}.mapping]");
    if let Some(why) = &record.why {
        let _ = writeln!(out, "# The record: {why} (choose another with --record).");
        if !record.others.is_empty() {
            let _ = writeln!(
                out,
                "# Other elements that may repeat: {}",
                record.others.join(", ")
            );
        }
    }
    let _ = writeln!(out, "record = {}", quoted(&record.path));

    let mut used: BTreeSet<_> = record.chain.iter().filter_map(|e| e.ns).collect();
    for leaf in &leaves.leaves {
        used.extend(leaf.namespaces.iter().copied());
    }
    let namespaces: BTreeMap<String, String> = used
        .into_iter()
        .filter_map(|id| Some((schema.prefix(id)?, schema.uri(id)?.to_owned())))
        .collect();
    if !namespaces.is_empty() {
        let entries: Vec<String> = namespaces
            .iter()
            .map(|(p, u)| format!("{p} = {}", quoted(u)))
            .collect();
        let _ = writeln!(out, "namespaces = {{ {} }}", entries.join(", "));
    }

    // The active lines: for each guessed product field, the nearest leaf to the record.
    let mut active: BTreeMap<&'static str, usize> = BTreeMap::new();
    for (i, leaf) in leaves.leaves.iter().enumerate() {
        if let Some(field) = odoo_field(leaf) {
            let entry = active.entry(field).or_insert(i);
            if nearness(leaf) < nearness(&leaves.leaves[*entry]) {
                *entry = i;
            }
        }
    }
    // Listed: the values nearest to the record up to the cap, and every active one.
    let mut order: Vec<usize> = (0..leaves.leaves.len()).collect();
    order.sort_by_key(|&i| (leaves.leaves[i].level, i));
    let mut listed = vec![false; leaves.leaves.len()];
    for &i in order.iter().take(request.max_fields) {
        listed[i] = true;
    }
    for &i in active.values() {
        listed[i] = true;
    }
    let hidden = listed.iter().filter(|l| !**l).count();

    let stock = active.is_empty() || !active.contains_key("name");
    let quantity = leaves
        .leaves
        .iter()
        .position(|l| other_use(l).is_some_and(|u| u.starts_with("set_stock: quantity")));
    let product_leaf = ["default_code", "barcode"]
        .into_iter()
        .find_map(|k| active.get(k).map(|&i| (k, i)));
    if let (true, Some(q), Some((by, p))) = (stock, quantity, product_leaf) {
        render_set_stock(&mut out, leaves, q, by, p);
        render_listing(&mut out, leaves, &listed, None);
    } else {
        render_upsert_head(&mut out, &active);
        let _ = writeln!(out, "\n[flows.{flow}.mapping.fields]");
        render_listing(&mut out, leaves, &listed, Some(&active));
    }
    if hidden > 0 {
        let _ = writeln!(
            out,
            "# {} further from the record not listed (raise --max-fields, or choose a narrower --record).",
            plural(hidden, "value")
        );
    }

    if !leaves.any.is_empty() {
        let _ = writeln!(
            out,
            "# Any element may also appear under: {} (not listed: the schema does not say which).",
            leaves.any.join(", ")
        );
    }
    if !leaves.too_deep.is_empty() {
        let _ = writeln!(
            out,
            "# Not expanded, more than {} below the record (raise --depth to list them): {}",
            plural(request.depth, "level"),
            named(&leaves.too_deep)
        );
    }
    if !leaves.recursive.is_empty() {
        let _ = writeln!(
            out,
            "# Not expanded, their type contains itself (recursive): {}",
            named(&leaves.recursive)
        );
    }
    out
}

fn render_upsert_head(out: &mut String, active: &BTreeMap<&'static str, usize>) {
    let key = ["default_code", "barcode"]
        .into_iter()
        .find(|k| active.contains_key(k));
    if active.is_empty() {
        out.push_str(
            "# No value's name says which Odoo field it feeds: set the model and the action.\n\
             # model = \"product.product\"\n\
             # action = \"upsert\"\n\
             # key = [\"default_code\"]\n",
        );
        return;
    }
    let _ = writeln!(
        out,
        "{}",
        aligned(
            "model = \"product.product\"",
            "guessed from the field names below"
        )
    );
    let _ = writeln!(
        out,
        "{}",
        aligned(
            "action = \"upsert\"",
            "upsert | set_stock | confirm_delivery (see README)"
        )
    );
    match key {
        Some(k) => {
            let _ = writeln!(
                out,
                "{}",
                aligned(
                    &format!("key = [\"{k}\"]"),
                    "the fields that find an existing record"
                )
            );
        }
        None => out.push_str("# key = [\"default_code\"]   # no identifier found: choose one\n"),
    }
}

/// A record with a product and a quantity and no name: a stock level.
fn render_set_stock(out: &mut String, leaves: &Leaves, quantity: usize, by: &str, product: usize) {
    let q = &leaves.leaves[quantity];
    let p = &leaves.leaves[product];
    let _ = writeln!(
        out,
        "{}",
        aligned(
            "action = \"set_stock\"",
            "guessed: each record names a product and a quantity"
        )
    );
    let _ = writeln!(
        out,
        "{}",
        aligned(
            &format!("product = {{ path = {}, by = \"{by}\" }}", quoted(&p.path)),
            &format!("{}, {}", p.kind.describe(), required(p))
        )
    );
    let _ = writeln!(
        out,
        "{}",
        aligned(
            &format!("quantity = {}", quoted(&q.path)),
            &format!("{}, {}", q.kind.describe(), required(q))
        )
    );
    let location = leaves
        .leaves
        .iter()
        .find(|l| other_use(l).is_some_and(|u| u.ends_with("location")));
    let _ = writeln!(
        out,
        "{}",
        aligned(
            "location = \"WH/Stock\"",
            "a location's complete name in Odoo"
        )
    );
    if let Some(l) = location {
        let _ = writeln!(
            out,
            "{}",
            aligned(
                &format!(
                    "# location = {{ path = {}, by = \"complete_name\" }}",
                    quoted(&l.path)
                ),
                &format!("or from the file: {}, {}", l.kind.describe(), required(l))
            )
        );
    }
    if let Some(l) = leaves
        .leaves
        .iter()
        .find(|l| other_use(l).is_some_and(|u| u.ends_with(": lot")))
    {
        let value = if l.required {
            quoted(&l.path)
        } else {
            format!("{{ path = {}, optional = true }}", quoted(&l.path))
        };
        let _ = writeln!(
            out,
            "{}",
            aligned(&format!("lot = {value}"), &l.kind.describe())
        );
    }
    let _ = writeln!(
        out,
        "{}",
        aligned(
            "snapshot = \"partial\"",
            "full: products absent from a file are set to 0 there"
        )
    );
    out.push_str("# Every value under the record:\n");
}

/// Which of two leaves a guessed field takes: one directly under the record or under an item
/// or product element, then the one nearest to the record.
fn nearness(leaf: &Leaf) -> (bool, usize) {
    let parent = leaf
        .steps
        .len()
        .checked_sub(if leaf.attribute { 1 } else { 2 })
        .map(|i| leaf.steps[i].to_ascii_lowercase());
    let direct = parent.is_none_or(|p| p == "item" || p == "product" || p == "article");
    (!direct, leaf.level)
}

fn required(leaf: &Leaf) -> &'static str {
    if leaf.required {
        "required"
    } else {
        "optional"
    }
}

/// One line per listed leaf: active (`field = …`) where `active` maps it, commented otherwise.
fn render_listing(
    out: &mut String,
    leaves: &Leaves,
    listed: &[bool],
    active: Option<&BTreeMap<&'static str, usize>>,
) {
    if leaves.leaves.is_empty() {
        out.push_str("# (the record holds no values)\n");
    }
    let key = active.and_then(|a| {
        ["default_code", "barcode"]
            .into_iter()
            .find(|k| a.contains_key(k))
    });
    for (i, leaf) in leaves.leaves.iter().enumerate() {
        if !listed[i] {
            continue;
        }
        let guess = odoo_field(leaf);
        let is_active = active.is_some_and(|a| guess.is_some_and(|g| a.get(g) == Some(&i)));
        let is_key = is_active && guess == key;
        let value = field_value(leaf, is_key);
        let mut notes = vec![leaf.kind.describe(), required(leaf).to_owned()];
        if leaf.repeats {
            notes.push("repeats".to_owned());
        }
        if is_key && !leaf.required {
            notes.push("optional in the schema, but a record without its key is refused".into());
        }
        match guess {
            Some(g) if !is_active => notes.push(format!("likely {g}")),
            _ => {}
        }
        if let Some(other) = other_use(leaf) {
            notes.push(format!("likely {other}"));
        }
        if !leaf.more_attributes.is_empty() {
            notes.push(format!(
                "optional attributes: {}",
                leaf.more_attributes.join(" ")
            ));
        }
        let line = match (guess, active) {
            (Some(g), _) if is_active => format!("{g} = {value}"),
            (_, Some(_)) => format!("# FIELD = {value}"),
            (_, None) => format!("# {}", quoted(&leaf.path)),
        };
        let _ = writeln!(out, "{}", aligned(&line, &notes.join(", ")));
    }
}

/// A field's value: a path string, or an inline table with a type and `optional`.
fn field_value(leaf: &Leaf, is_key: bool) -> String {
    let ty = value_type(leaf.kind.builtin.as_deref());
    let optional = !leaf.required && !is_key;
    if ty.is_none() && !optional {
        return quoted(&leaf.path);
    }
    let mut parts = vec![format!("path = {}", quoted(&leaf.path))];
    if let Some(ty) = ty {
        parts.push(format!("type = \"{ty}\""));
    }
    if optional {
        parts.push("optional = true".to_owned());
    }
    format!("{{ {} }}", parts.join(", "))
}

/// The mapping's value type for a built-in XSD type (strings stay strings).
fn value_type(builtin: Option<&str>) -> Option<&'static str> {
    let builtin = builtin?;
    let name = builtin.strip_prefix("xs:").unwrap_or(builtin);
    match name {
        "a decimal number" => Some("float"),
        "a whole number" => Some("integer"),
        "a boolean" => Some("boolean"),
        "decimal" | "double" | "float" => Some("float"),
        "integer" | "int" | "long" | "short" | "byte" | "nonNegativeInteger"
        | "positiveInteger" | "negativeInteger" | "nonPositiveInteger" | "unsignedLong"
        | "unsignedInt" | "unsignedShort" | "unsignedByte" => Some("integer"),
        "boolean" => Some("boolean"),
        "date" => Some("date"),
        _ => None,
    }
}

fn aligned(assignment: &str, comment: &str) -> String {
    let width = assignment.chars().count();
    let pad = COMMENT_COLUMN.saturating_sub(width).max(1);
    format!("{assignment}{}# {comment}", " ".repeat(pad))
}

/// A TOML basic string.
fn quoted(text: &str) -> String {
    let mut s = String::with_capacity(text.len() + 2);
    s.push('"');
    for c in text.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(s, "\\u{:04X}", c as u32);
            }
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

fn named(paths: &[String]) -> String {
    let mut text = paths
        .iter()
        .take(NAMED_CUTS)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if paths.len() > NAMED_CUTS {
        let _ = write!(text, " and {} more", paths.len() - NAMED_CUTS);
    }
    text
}
