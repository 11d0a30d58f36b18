//! Guesses: which element is the record, and which Odoo field a leaf feeds.

use super::tree::{Element, Leaf, Schema};

/// How far below the root the record guess looks.
const RECORD_SEARCH_LEVELS: usize = 3;

/// The record element and its absolute path.
pub struct Record {
    pub element: Element,
    /// `/p:Products/p:Product`.
    pub path: String,
    /// The elements from the root down to the record.
    pub chain: Vec<Element>,
    /// Why this one (a comment line), when it was guessed.
    pub why: Option<String>,
    /// Other elements that may repeat, for the comment.
    pub others: Vec<String>,
}

impl Record {
    /// The record `--record` names: `/Root/Child` with or without prefixes; a step's prefix,
    /// when given, must be the one the scaffold prints for that namespace.
    pub fn given(schema: &Schema, text: &str) -> Result<Record, String> {
        let steps: Vec<&str> = text.trim().trim_start_matches('/').split('/').collect();
        if steps.iter().any(|s| s.is_empty()) {
            return Err("expected a path of element names such as /Root/Record".into());
        }
        let mut candidates = schema.roots.clone();
        let mut chain: Vec<Element> = Vec::new();
        for step in &steps {
            let (prefix, local) = match step.split_once(':') {
                Some((p, l)) => (Some(p), l),
                None => (None, *step),
            };
            let found = candidates.iter().find(|e| {
                e.local == local
                    && prefix
                        .is_none_or(|p| e.ns.and_then(|ns| schema.prefix(ns)).as_deref() == Some(p))
            });
            let Some(found) = found.cloned() else {
                let names: Vec<String> = candidates
                    .iter()
                    .map(|e| schema.qualified(e.ns, &e.local))
                    .collect();
                let place = if chain.is_empty() {
                    "the schema's root elements are".to_owned()
                } else {
                    format!("the elements under {} are", absolute(schema, &chain))
                };
                return Err(format!(
                    "no element `{step}` there; {place}: {}",
                    if names.is_empty() {
                        "(none)".to_owned()
                    } else {
                        names.join(", ")
                    }
                ));
            };
            candidates = schema.children(&found);
            chain.push(found);
        }
        let element = chain.last().cloned().expect("at least one step");
        if !schema.has_elements(&element) && chain.len() > 1 {
            return Err(format!(
                "{} holds a single value, not fields: a record is an element with elements \
                 under it",
                absolute(schema, &chain)
            ));
        }
        Ok(Record {
            path: absolute(schema, &chain),
            element,
            chain,
            why: None,
            others: Vec::new(),
        })
    }

    /// The first element under the root that holds elements and may repeat, preferring one a
    /// valid file must have; searched level by level.
    pub fn guessed(schema: &Schema) -> Result<Record, String> {
        let root = schema.roots[0].clone();
        let mut level: Vec<Vec<Element>> = vec![vec![root.clone()]];
        let mut repeating: Vec<(Vec<Element>, bool)> = Vec::new();
        for _ in 0..RECORD_SEARCH_LEVELS {
            let mut next = Vec::new();
            for chain in &level {
                let parent = chain.last().expect("non-empty chain");
                for child in schema.children(parent) {
                    if chain
                        .iter()
                        .any(|e| e.local == child.local && e.ns == child.ns)
                    {
                        continue;
                    }
                    let mut c = chain.clone();
                    c.push(child.clone());
                    if child.repeats() && schema.has_elements(&child) {
                        repeating.push((c.clone(), child.required()));
                    }
                    next.push(c);
                }
            }
            if !repeating.is_empty() {
                break;
            }
            level = next;
        }
        let root_path = absolute(schema, std::slice::from_ref(&root));
        if repeating.is_empty() {
            return Err(format!(
                "give --record {root_path} to take the whole document as one record, or a path \
                 under it"
            ));
        }
        let pick = repeating
            .iter()
            .position(|(_, required)| *required)
            .unwrap_or(0);
        let (chain, required) = repeating[pick].clone();
        let element = chain.last().cloned().expect("non-empty chain");
        let name = schema.qualified(element.ns, &element.local);
        let why = format!(
            "{name} is the first element under {root_path} that {}may repeat",
            if required {
                "a valid file must have and that "
            } else {
                ""
            }
        );
        let others = repeating
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != pick)
            .map(|(_, (c, _))| absolute(schema, c))
            .collect();
        Ok(Record {
            path: absolute(schema, &chain),
            element,
            chain,
            why: Some(why),
            others,
        })
    }
}

fn absolute(schema: &Schema, chain: &[Element]) -> String {
    chain
        .iter()
        .map(|e| format!("/{}", schema.qualified(e.ns, &e.local)))
        .collect()
}

/// An Odoo `product.product` field a leaf likely feeds, from its name.
pub fn odoo_field(leaf: &Leaf) -> Option<&'static str> {
    let names: Vec<String> = leaf.steps.iter().map(|s| s.to_ascii_lowercase()).collect();
    let last = names.last()?.as_str();
    let parent = names.len().checked_sub(2).map(|i| names[i].as_str());
    let product_context =
        parent.is_none_or(|p| p.contains("item") || p.contains("product") || p.contains("article"));
    if leaf.attribute {
        return match last {
            "sku" | "code" | "itemcode" | "productcode" | "articlenumber" | "default_code"
                if parent.is_none() =>
            {
                Some("default_code")
            }
            "ean" | "gtin" | "barcode" if parent.is_none() => Some("barcode"),
            _ => None,
        };
    }
    match (parent, last) {
        (Some("sellersitemidentification"), "id") => Some("default_code"),
        (Some("standarditemidentification"), "id") => Some("barcode"),
        (Some("price"), "priceamount") => Some("list_price"),
        (_, "sku" | "itemcode" | "productcode" | "articlenumber" | "defaultcode") => {
            Some("default_code")
        }
        (_, "ean" | "gtin" | "barcode" | "ean13" | "upc") => Some("barcode"),
        (_, "name") if product_context => Some("name"),
        (_, "productname" | "itemname" | "articlename") => Some("name"),
        (_, "description") if product_context => Some("description_sale"),
        (_, "price" | "listprice" | "unitprice" | "salesprice" | "saleprice") => Some("list_price"),
        (_, "cost" | "standardprice" | "costprice" | "purchaseprice") => Some("standard_price"),
        (_, "weight" | "netweight" | "grossweight") if product_context => Some("weight"),
        _ => None,
    }
}

/// What else a leaf's name suggests, for other actions (a comment only).
pub fn other_use(leaf: &Leaf) -> Option<&'static str> {
    let last = leaf.steps.last()?.to_ascii_lowercase();
    match last.as_str() {
        "onhand" | "quantity" | "qty" | "availablequantity" | "quantityonhand" => {
            Some("set_stock: quantity")
        }
        "deliveredquantity" | "shipped" | "shippedquantity" => {
            Some("confirm_delivery: quantity (under lines)")
        }
        "lot" | "lotnumberid" | "batch" | "batchnumber" => {
            Some("set_stock / confirm_delivery: lot")
        }
        "tracking" | "trackingid" | "trackingnumber" => Some("confirm_delivery: tracking"),
        "unit" | "uom" | "unitofmeasure" => Some("uom_id (lookup uom.uom by name)"),
        "location" | "locationid" | "warehouse" => Some("set_stock: location"),
        _ => None,
    }
}
