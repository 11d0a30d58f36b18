//! Finishing a file: into the archive (under the flow's dated folder template), or into
//! `error/` with its report. A name collision never overwrites: the file gets a `~N` suffix.
//! Each move is announced to the ledger first (with its destination), so a crash between the
//! two steps is repaired on the next pass.

use jiff::ZonedDateTime as Zoned;

use crate::transport::{self, Transport, TransportError};

/// Expands the archive template (`{yyyy}` `{mm}` `{dd}` in the partner's timezone, `{name}`)
/// into the folder and the file name the archived file should get.
pub fn archive_target(template: &str, name: &str, now: &Zoned) -> (String, String) {
    let expanded = template
        .replace("{yyyy}", &format!("{:04}", now.year()))
        .replace("{mm}", &format!("{:02}", now.month()))
        .replace("{dd}", &format!("{:02}", now.day()));
    match expanded.strip_suffix("{name}") {
        Some(dir) => (dir.trim_end_matches('/').to_string(), name.to_string()),
        None => (expanded.trim_end_matches('/').to_string(), name.to_string()),
    }
}

/// `name` with a collision suffix: `products.xml` → `products~2.xml`, `README` → `README~2`.
pub fn with_suffix(name: &str, n: u32) -> String {
    if n <= 1 {
        return name.to_string();
    }
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => format!("{stem}~{n}.{ext}"),
        _ => format!("{name}~{n}"),
    }
}

/// The first name in `dir` not taken yet, starting with `name` itself; `reserved` extra names
/// (like the report beside it) must be free too.
pub async fn free_name<T: Transport>(
    t: &mut T,
    dir: &str,
    name: &str,
    companions: &[&str],
) -> Result<String, TransportError> {
    for n in 1..10_000 {
        let candidate = with_suffix(name, n);
        if t.stat(&transport::join(dir, &candidate)).await?.is_some() {
            continue;
        }
        let mut free = true;
        for companion in companions {
            let other = format!("{candidate}{companion}");
            if t.stat(&transport::join(dir, &other)).await?.is_some() {
                free = false;
                break;
            }
        }
        if free {
            return Ok(candidate);
        }
    }
    Err(TransportError::Other {
        path: transport::join(dir, name),
        detail: "no free name left for this file (10 000 collisions)".into(),
    })
}

/// Moves `from` to `to`, never overwriting (`AlreadyExists` when `to` is taken). A move that a
/// crash left half done (the file under both names) is repaired by the pass, which compares
/// contents first: a new file that merely looks like the old one is never removed here.
pub async fn move_file<T: Transport>(
    t: &mut T,
    from: &str,
    to: &str,
) -> Result<(), TransportError> {
    t.rename_noclobber(from, to).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_template_uses_the_partner_date() {
        let now: Zoned = "2026-03-05T23:30:00+01:00[Europe/Brussels]"
            .parse()
            .unwrap();
        assert_eq!(
            archive_target("/out/archive/{yyyy}/{mm}/{dd}", "a b.xml", &now),
            ("/out/archive/2026/03/05".to_string(), "a b.xml".to_string())
        );
        assert_eq!(
            archive_target("archive/{yyyy}-{mm}/{name}", "x.xml", &now),
            ("archive/2026-03".to_string(), "x.xml".to_string())
        );
    }

    #[test]
    fn collisions_get_a_suffix() {
        assert_eq!(with_suffix("products.xml", 1), "products.xml");
        assert_eq!(with_suffix("products.xml", 2), "products~2.xml");
        assert_eq!(with_suffix("README", 3), "README~3");
        assert_eq!(with_suffix(".env", 2), ".env~2");
    }
}
