//! `action = "set_stock"`: the product, quantity, location, lot and snapshot keys.

use super::*;

pub(super) fn parse_set_stock(
    m: &mut Node,
    source: Source,
) -> Result<SetStockMapping, ConfigError> {
    let path_mapping = |field: &str, path: ValueSource, ty, optional, lookup| FieldMapping {
        field: field.to_string(),
        source: path,
        ty,
        optional,
        lookup,
    };
    let lookup = |model: &str, field: String| {
        Some(Lookup {
            model: model.to_string(),
            field,
        })
    };

    let product = m.require(
        "product",
        "the product's path, e.g. product = { path = \"Sku\", by = \"default_code\" }",
    )?;
    let (path, by) = if product.value.is_str() {
        (path_source(source, product)?.0, None)
    } else {
        let mut t = product.table_or("a path string or { path = \"…\", by = \"default_code\" }")?;
        let path = t.require("path", "the product's path")?;
        let by = t.take("by").map(|i| i.identifier()).transpose()?;
        t.finish()?;
        (path_source(source, path)?.0, by)
    };
    let by = by.unwrap_or_else(|| "default_code".to_string());
    let product = path_mapping(
        "product_id",
        path,
        ValueType::String,
        false,
        lookup("product.product", by),
    );

    let quantity = m.require(
        "quantity",
        "the on-hand quantity's path, e.g. quantity = \"OnHand\"",
    )?;
    let path = quantity_path(source, quantity)?;
    let quantity = path_mapping("inventory_quantity", path, ValueType::Float, false, None);

    let location = m.require(
        "location",
        "a fixed location such as location = \"WH/Stock\", or { path = \"…\", by = \"barcode\" }",
    )?;
    let location = if location.value.is_str() {
        FieldMapping {
            field: "location_id".to_string(),
            source: ValueSource::Constant(serde_json::Value::String(location.text()?)),
            ty: ValueType::String,
            optional: false,
            lookup: lookup("stock.location", "complete_name".to_string()),
        }
    } else {
        let mut t = location.table_or(
            "a complete location name such as \"WH/Stock\", or { path = \"…\", by = \"barcode\" } \
             (by: complete_name, barcode, name or warehouse)",
        )?;
        let path = t.require("path", "the location's path")?;
        let by = match t.take("by") {
            Some(item) => {
                item.choice(&[
                    ("barcode", "barcode"),
                    ("complete_name", "complete_name"),
                    ("name", "name"),
                    // The stock location of the warehouse with that name or code.
                    ("warehouse", "warehouse"),
                ])?
            }
            None => "complete_name",
        };
        t.finish()?;
        path_mapping(
            "location_id",
            path_source(source, path)?.0,
            ValueType::String,
            false,
            lookup("stock.location", by.to_string()),
        )
    };

    let lot = match m.take("lot") {
        None => None,
        Some(lot) => {
            let (path, optional) = if lot.value.is_str() {
                (path_source(source, lot)?.0, false)
            } else {
                let mut t = lot.table_or("a path string or { path = \"…\", optional = true }")?;
                let path = t.require("path", "the lot's path")?;
                let optional = t.take("optional").map(Item::boolean).transpose()?;
                t.finish()?;
                (path_source(source, path)?.0, optional.unwrap_or(false))
            };
            Some(path_mapping(
                "lot_id",
                path,
                ValueType::String,
                optional,
                lookup("stock.lot", "name".to_string()),
            ))
        }
    };

    let snapshot = match m.take("snapshot") {
        Some(item) => item.choice(&[("partial", Snapshot::Partial), ("full", Snapshot::Full)])?,
        None => Snapshot::Partial,
    };
    Ok(SetStockMapping {
        product,
        quantity,
        location,
        lot,
        snapshot,
    })
}
