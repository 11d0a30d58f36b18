//! Converting a value's text to the type its field is configured with.

use serde_json::{Number, Value};

use crate::mapping::config::ValueType;

/// Converts trimmed, non-empty text to a value of type `ty`. `decimal` is the decimal separator
/// of floats (`.` for XML, the flow's `decimal` for CSV). The error says what was expected.
pub fn convert(raw: &str, ty: ValueType, decimal: char) -> Result<Value, String> {
    match ty {
        ValueType::String => Ok(Value::String(raw.to_owned())),
        ValueType::Float => parse_float(raw, decimal)
            .and_then(Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| {
                if decimal == ',' {
                    "a number with a decimal comma such as 12,50 (no thousands separator)".into()
                } else {
                    "a number such as 12.50 (no thousands separator)".into()
                }
            }),
        ValueType::Integer => {
            if !is_integer(raw) {
                return Err("a whole number".into());
            }
            raw.parse::<i64>()
                .map(|n| Value::Number(n.into()))
                .map_err(|_| "a whole number between -2^63 and 2^63-1".into())
        }
        ValueType::Boolean => match raw.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(Value::Bool(true)),
            "false" | "0" | "no" => Ok(Value::Bool(false)),
            _ => Err("a boolean (true/false, yes/no or 1/0)".into()),
        },
        ValueType::Date => {
            if is_date(raw) {
                Ok(Value::String(raw.to_owned()))
            } else {
                Err("a date YYYY-MM-DD".into())
            }
        }
    }
}

fn is_integer(raw: &str) -> bool {
    let digits = raw.strip_prefix(['+', '-']).unwrap_or(raw);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Plain decimal notation (an exponent allowed, as XSD doubles have one); anything with a
/// second separator — a thousands separator — is refused rather than guessed.
fn parse_float(raw: &str, decimal: char) -> Option<f64> {
    let unsigned = raw.strip_prefix(['+', '-']).unwrap_or(raw);
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(i) => (&unsigned[..i], Some(&unsigned[i + 1..])),
        None => (unsigned, None),
    };
    let (whole, fraction) = match mantissa.split_once(decimal) {
        Some((w, f)) => (w, f),
        None => (mantissa, ""),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !digits(whole) || !digits(fraction) {
        return None;
    }
    if exponent.is_some_and(|exp| !is_integer(exp)) {
        return None;
    }
    let text = if decimal == '.' {
        raw.to_owned()
    } else {
        raw.replace(decimal, ".")
    };
    text.parse::<f64>().ok().filter(|f| f.is_finite())
}

fn is_date(raw: &str) -> bool {
    let b = raw.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let number = |s: &str| {
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let (Some(year), Some(month), Some(day)) = (
        number(&raw[..4]).and_then(|y: i64| i16::try_from(y).ok()),
        number(&raw[5..7]).and_then(|m: i64| i8::try_from(m).ok()),
        number(&raw[8..]).and_then(|d: i64| i8::try_from(d).ok()),
    ) else {
        return false;
    };
    jiff::civil::Date::new(year, month, day).is_ok()
}
