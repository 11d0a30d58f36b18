//! `action = "confirm_delivery"`: the picking, its lines and what each ships, tracking,
//! backorders.

use super::*;

pub(super) fn parse_confirm_delivery(
    m: &mut Node,
    namespaces: &BTreeMap<String, String>,
) -> Result<ConfirmDeliveryMapping, ConfigError> {
    let source = Source::Xml(namespaces);
    let mapping = |field: &str, source: ValueSource, ty, optional, lookup| FieldMapping {
        field: field.to_string(),
        source,
        ty,
        optional,
        lookup,
    };

    let picking = m.require(
        "picking",
        "the picking's path under the record, e.g. picking = { path = \"dc:Order\", by = \"name\" }",
    )?;
    let (path, by) = path_by(
        picking,
        source,
        "picking",
        &[("name", "name"), ("origin", "origin")],
    )?;
    let picking = mapping(by, path, ValueType::String, false, None);

    let lines = m.require(
        "lines",
        "the repeated element under the record, one shipped product each, e.g. lines = \"dc:Line\"",
    )?;
    let lines_key = lines.key.clone();
    let text = lines.text()?;
    let lines = parse_field_path(&text, namespaces)
        .map_err(|e| m.cx.err(&lines_key, format!("invalid path {text:?}: {e}")))?;
    if lines.steps.is_empty() || lines.attr.is_some() {
        return Err(m.cx.err(
            &lines_key,
            format!("{text:?} is not an element path; give the line element, e.g. \"dc:Line\""),
        ));
    }

    let product = m.require(
        "product",
        "the product's path under a line, e.g. product = { path = \"dc:Sku\", by = \"default_code\" }",
    )?;
    let (path, by) = path_by(
        product,
        source,
        "product",
        &[("default_code", "default_code"), ("barcode", "barcode")],
    )?;
    let product = mapping(
        "product_id",
        path,
        ValueType::String,
        false,
        Some(Lookup {
            model: "product.product".into(),
            field: by.into(),
        }),
    );

    let quantity = m.require(
        "quantity",
        "the shipped quantity's path under a line, e.g. quantity = \"dc:Shipped\"",
    )?;
    let path = quantity_path(source, quantity)?;
    let quantity = mapping("quantity", path, ValueType::Float, false, None);

    let lot = match m.take("lot") {
        None => None,
        Some(item) => {
            let (path, optional) = path_optional(item, source, "lot")?;
            Some(mapping(
                "lot_id",
                path,
                ValueType::String,
                optional,
                Some(Lookup {
                    model: "stock.lot".into(),
                    field: "name".into(),
                }),
            ))
        }
    };
    let tracking = match m.take("tracking") {
        None => None,
        Some(item) => {
            let (path, optional) = path_optional(item, source, "tracking number")?;
            Some(mapping(
                "carrier_tracking_ref",
                path,
                ValueType::String,
                optional,
                None,
            ))
        }
    };
    let backorder = match m.take("backorder") {
        Some(item) => item.choice(&[("create", Backorder::Create), ("none", Backorder::None)])?,
        None => Backorder::Create,
    };
    let allow_over_delivery = m
        .take("allow_over_delivery")
        .map(Item::boolean)
        .transpose()?
        .unwrap_or(false);
    Ok(ConfirmDeliveryMapping {
        picking,
        lines,
        product,
        quantity,
        lot,
        tracking,
        backorder,
        allow_over_delivery,
    })
}
