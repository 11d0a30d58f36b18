//! Publishing a document in the outbox: a deterministic file name from the record (unsafe
//! characters replaced), then the transport's atomic put — `.<name>.part` written, closed
//! (write errors surface there), its size checked, renamed into place
//! (`posix-rename@openssh.com` on SFTP, a remove-and-rename where the server lacks it; fsync
//! then rename on a local folder). Nothing half-written is ever visible under a final name.

use jiff::ZonedDateTime as Zoned;

use super::select::Picking;
use crate::transport::{self, AnyTransport, Transport, TransportError};

/// The file name of `picking` from the flow's `filename` template: `{name}`, `{id}`,
/// `{origin}` and the date parts of `now`, each value with every character other than
/// `A-Z a-z 0-9 . _ -` replaced by `_` (`WH/OUT/00042` → `WH_OUT_00042`).
pub fn file_name(template: &str, picking: &Picking, now: &Zoned) -> String {
    let name = template
        .replace("{name}", &safe(&picking.name))
        .replace("{id}", &picking.id.to_string())
        .replace("{origin}", &safe(picking.origin.as_deref().unwrap_or("")))
        .replace("{yyyy}", &format!("{:04}", now.year()))
        .replace("{mm}", &format!("{:02}", now.month()))
        .replace("{dd}", &format!("{:02}", now.day()))
        .replace("{HH}", &format!("{:02}", now.hour()))
        .replace("{MM}", &format!("{:02}", now.minute()))
        .replace("{SS}", &format!("{:02}", now.second()));
    // A leading dot would hide the file (and look like our own temporary names).
    match name.strip_prefix('.') {
        Some(rest) => format!("_{rest}"),
        None => name,
    }
}

/// `name` made safe for a file name on any server.
fn safe(value: &str) -> String {
    value
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect::<String>()
        .replace("..", "__")
}

/// `name` told apart from another record's file of the same name: `WH_OUT_1.xml` →
/// `WH_OUT_1-42.xml`.
pub fn distinct(name: &str, id: i64) -> String {
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => format!("{stem}-{id}.{ext}"),
        _ => format!("{name}-{id}"),
    }
}

/// Writes `document` to `outbox/file_name` atomically; the folder is created when missing.
pub async fn publish(
    t: &mut AnyTransport,
    outbox: &str,
    file_name: &str,
    document: &[u8],
) -> Result<String, TransportError> {
    let path = transport::join(outbox, file_name);
    t.put(&path, document).await?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::select::sample_picking;

    #[test]
    fn file_names_come_from_the_record_and_are_safe() {
        let now: Zoned = "2026-11-29T21:05:09+01:00[Europe/Brussels]"
            .parse()
            .unwrap();
        let p = sample_picking();
        assert_eq!(file_name("{name}.xml", &p, &now), "WH_OUT_00042.xml");
        assert_eq!(
            file_name("DO_{yyyy}{mm}{dd}_{HH}{MM}{SS}_{id}_{origin}.xml", &p, &now),
            "DO_20261129_210509_42_S00042.xml"
        );
        let mut odd = sample_picking();
        odd.name = "../Ö ut".into();
        assert_eq!(file_name("{name}.xml", &odd, &now), "_____ut.xml");
        odd.name = ".hidden".into();
        assert_eq!(file_name("{name}", &odd, &now), "_hidden");
        assert_eq!(distinct("WH_OUT_1.xml", 42), "WH_OUT_1-42.xml");
    }
}
