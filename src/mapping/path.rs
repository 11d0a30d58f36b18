//! The path language of a mapping: `/p:Products/p:Product` for the record, and relative to it
//! `a/b`, `@x`, `a/@x`, `.` and `a[@type='gtin']`. Prefixes come from the mapping's
//! `namespaces`; an unprefixed name matches an element in no namespace (as in XPath), so a
//! document's default namespace is matched through a declared prefix.

use std::collections::BTreeMap;

/// An element or attribute name resolved against the mapping's namespaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QName {
    /// Namespace URI; `None` = no namespace.
    pub ns: Option<String>,
    pub local: String,
}

/// `[@attr='value']` on a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Predicate {
    pub attr: QName,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub name: QName,
    pub predicate: Option<Predicate>,
}

/// Absolute path of the repeating record element, from the document root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordPath {
    pub steps: Vec<Step>,
    /// As written in the config, for messages.
    pub text: String,
}

/// A path relative to the record: child steps, then optionally an attribute; no steps and
/// no attribute is `.` (the record's own text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath {
    pub steps: Vec<Step>,
    pub attr: Option<QName>,
    /// As written in the config, for messages.
    pub text: String,
}

/// The namespace the `xml` prefix is bound to in every document (`xml:lang`), usable in paths
/// without declaring it.
pub const XML_NAMESPACE: &str = "http://www.w3.org/XML/1998/namespace";

/// What the path language offers, appended to syntax errors so the fix is at hand.
const SUPPORTED: &str = "supported are child steps `a/b`, attributes `@x` and `a/@x`, the \
                         record itself `.`, prefixed names `p:a`, and predicates \
                         `a[@attr='value']`";

/// Parses the record path (`/a/b`, absolute). The error says what is wrong, for the config
/// error message.
pub fn parse_record_path(
    text: &str,
    namespaces: &BTreeMap<String, String>,
) -> Result<RecordPath, String> {
    let mut parser = Parser::new(text, namespaces);
    if text.is_empty() {
        return Err(
            "the record path is empty; expected an absolute path such as `/p:Products/p:Product`"
                .to_string(),
        );
    }
    if !parser.eat('/') {
        return Err(format!(
            "the record path must be absolute, starting at the document root with `/` \
             (for example `/{text}`)"
        ));
    }
    let mut steps = Vec::new();
    loop {
        match parser.step_or_attribute()? {
            Parsed::Step(step) => steps.push(step),
            Parsed::Attribute(_) => {
                return Err("the record path must end at an element, not an attribute".to_string());
            }
        }
        if parser.at_end() {
            break;
        }
        parser.expect_separator()?;
    }
    Ok(RecordPath {
        steps,
        text: text.to_string(),
    })
}

/// Parses a field path relative to the record (for CSV flows, a bare column name is a one-step
/// path).
pub fn parse_field_path(
    text: &str,
    namespaces: &BTreeMap<String, String>,
) -> Result<FieldPath, String> {
    let whole = |steps, attr| FieldPath {
        steps,
        attr,
        text: text.to_string(),
    };
    if text.is_empty() {
        return Err(format!("the path is empty; {SUPPORTED}"));
    }
    if text == "." {
        return Ok(whole(Vec::new(), None));
    }
    if text.starts_with('/') {
        return Err(format!(
            "a field path is relative to the record and cannot start with `/` (write `{}`)",
            text.trim_start_matches('/')
        ));
    }
    let mut parser = Parser::new(text, namespaces);
    // `./a` is a common way of writing `a`.
    if parser.rest().starts_with("./") {
        parser.pos += 2;
    }
    let mut steps = Vec::new();
    loop {
        match parser.step_or_attribute()? {
            Parsed::Step(step) => steps.push(step),
            Parsed::Attribute(attr) => {
                if !parser.at_end() {
                    return Err(format!(
                        "an attribute (`@{}`) can only be the last step of a path; {SUPPORTED}",
                        attr.local
                    ));
                }
                return Ok(whole(steps, Some(attr)));
            }
        }
        if parser.at_end() {
            return Ok(whole(steps, None));
        }
        parser.expect_separator()?;
    }
}

/// The path of a CSV column: one step named like the column, in no namespace. Column names
/// are taken as written (they may hold spaces or parentheses), so they are not parsed.
pub fn column_path(name: &str) -> FieldPath {
    FieldPath {
        steps: vec![Step {
            name: QName {
                ns: None,
                local: name.to_string(),
            },
            predicate: None,
        }],
        attr: None,
        text: name.to_string(),
    }
}

enum Parsed {
    Step(Step),
    Attribute(QName),
}

/// A small recursive-descent reader over the path text.
struct Parser<'a> {
    text: &'a str,
    pos: usize,
    namespaces: &'a BTreeMap<String, String>,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str, namespaces: &'a BTreeMap<String, String>) -> Self {
        Parser {
            text,
            pos: 0,
            namespaces,
        }
    }

    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.text.len()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn skip_spaces(&mut self) {
        while self.peek().is_some_and(|c| c == ' ' || c == '\t') {
            self.pos += 1;
        }
    }

    /// The error for an unexpected character, naming the unsupported construct it starts when
    /// it is a familiar XPath one.
    fn unexpected(&self) -> String {
        let rest = self.rest();
        let problem = match self.peek() {
            None => "the path ends where a name is expected (empty step)".to_string(),
            Some('/') => "`//` and empty steps are not supported; write every step from the \
                          record, such as `a/b/c`"
                .to_string(),
            Some('.') if rest.starts_with("..") => {
                "`..` (parent steps) is not supported; paths go down from the record".to_string()
            }
            Some('.') => {
                "`.` is only supported as the whole path (the record's own text)".to_string()
            }
            Some('*') => "wildcards (`*`) are not supported; name the element".to_string(),
            Some('[') => "a predicate must follow an element name".to_string(),
            Some(c) => format!("unexpected `{c}` at character {}", self.pos + 1),
        };
        format!("{problem}; {SUPPORTED}")
    }

    fn ncname(&mut self) -> Option<&'a str> {
        let rest = self.rest();
        let mut chars = rest.char_indices();
        match chars.next() {
            Some((_, c)) if c.is_alphabetic() || c == '_' => {}
            _ => return None,
        }
        let end = chars
            .find(|&(_, c)| !(c.is_alphanumeric() || matches!(c, '-' | '.' | '_')))
            .map_or(rest.len(), |(i, _)| i);
        self.pos += end;
        Some(&rest[..end])
    }

    /// `prefix:local` or `local`, resolved; an unprefixed name is in no namespace.
    fn qname(&mut self) -> Result<QName, String> {
        let first = self.ncname().ok_or_else(|| self.unexpected())?;
        if !self.eat(':') {
            return Ok(QName {
                ns: None,
                local: first.to_string(),
            });
        }
        let local = self.ncname().ok_or_else(|| self.unexpected())?;
        let ns = match self.namespaces.get(first) {
            Some(uri) => uri.clone(),
            None if first == "xml" => XML_NAMESPACE.to_string(),
            None => {
                return Err(format!(
                    "unknown namespace prefix `{first}` in `{first}:{local}`; declare it in the \
                     mapping's namespaces, e.g. namespaces = {{ {first} = \"urn:…\" }}"
                ));
            }
        };
        Ok(QName {
            ns: Some(ns),
            local: local.to_string(),
        })
    }

    fn step_or_attribute(&mut self) -> Result<Parsed, String> {
        if self.eat('@') {
            let attr = self.qname()?;
            if self.peek() == Some('[') {
                return Err(format!("an attribute cannot have a predicate; {SUPPORTED}"));
            }
            return Ok(Parsed::Attribute(attr));
        }
        let name = self.qname()?;
        if self.peek() == Some('(') {
            return Err(format!(
                "functions such as `{}()` are not supported (an element's path gives its text); \
                 {SUPPORTED}",
                name.local
            ));
        }
        let predicate = if self.eat('[') {
            Some(self.predicate()?)
        } else {
            None
        };
        Ok(Parsed::Step(Step { name, predicate }))
    }

    /// After `[`: `@attr = 'value']`.
    fn predicate(&mut self) -> Result<Predicate, String> {
        let only = "only predicates of the form [@attr='value'] are supported";
        self.skip_spaces();
        if !self.eat('@') {
            return Err(format!("{only} (found `[{}`)", self.rest()));
        }
        let attr = self.qname()?;
        self.skip_spaces();
        if !self.eat('=') {
            return Err(format!("{only} (expected `=` after `@{}`)", attr.local));
        }
        self.skip_spaces();
        let quote = match self.peek() {
            Some(q @ ('\'' | '"')) => q,
            _ => return Err(format!("{only}: the value must be quoted")),
        };
        self.pos += 1;
        let rest = self.rest();
        let end = rest
            .find(quote)
            .ok_or_else(|| format!("{only}: the value's closing {quote} is missing"))?;
        let value = rest[..end].to_string();
        self.pos += end + 1;
        self.skip_spaces();
        if !self.eat(']') {
            return Err(format!("{only}: expected `]` after the value"));
        }
        Ok(Predicate { attr, value })
    }

    fn expect_separator(&mut self) -> Result<(), String> {
        if self.eat('/') {
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(p, u)| (p.to_string(), u.to_string()))
            .collect()
    }

    fn qn(ns: Option<&str>, local: &str) -> QName {
        QName {
            ns: ns.map(str::to_string),
            local: local.to_string(),
        }
    }

    fn step(ns: Option<&str>, local: &str) -> Step {
        Step {
            name: qn(ns, local),
            predicate: None,
        }
    }

    const P: &str = "urn:example:products:1";

    #[test]
    fn record_path_resolves_prefixes_of_a_default_namespace() {
        // The document says xmlns="urn:example:products:1"; the config reaches it through `p`.
        let path = parse_record_path("/p:Products/p:Product", &ns(&[("p", P)])).unwrap();
        assert_eq!(
            path.steps,
            vec![step(Some(P), "Products"), step(Some(P), "Product")]
        );
        assert_eq!(path.text, "/p:Products/p:Product");
    }

    #[test]
    fn unprefixed_names_are_in_no_namespace() {
        let path = parse_record_path("/StockReport/Line", &ns(&[("p", P)])).unwrap();
        assert_eq!(
            path.steps,
            vec![step(None, "StockReport"), step(None, "Line")]
        );
    }

    #[test]
    fn record_path_with_predicate() {
        let path = parse_record_path(
            "/cat:Catalogue/cac:CatalogueLine[@cbc:kind=\"item\"]",
            &ns(&[("cat", "urn:cat"), ("cac", "urn:cac"), ("cbc", "urn:cbc")]),
        )
        .unwrap();
        assert_eq!(path.steps[0], step(Some("urn:cat"), "Catalogue"));
        assert_eq!(
            path.steps[1],
            Step {
                name: qn(Some("urn:cac"), "CatalogueLine"),
                predicate: Some(Predicate {
                    attr: qn(Some("urn:cbc"), "kind"),
                    value: "item".to_string(),
                }),
            }
        );
    }

    #[test]
    fn record_path_must_be_absolute_and_end_at_an_element() {
        let none = BTreeMap::new();
        assert!(
            parse_record_path("Products/Product", &none)
                .unwrap_err()
                .contains("absolute")
        );
        assert!(
            parse_record_path("/Products/@id", &none)
                .unwrap_err()
                .contains("attribute")
        );
        assert!(parse_record_path("", &none).unwrap_err().contains("empty"));
        assert!(
            parse_record_path("/", &none)
                .unwrap_err()
                .contains("empty step")
        );
        assert!(
            parse_record_path("//Product", &none)
                .unwrap_err()
                .contains("`//`")
        );
    }

    #[test]
    fn field_paths_of_every_supported_form() {
        let map = ns(&[("p", P)]);
        let attr = parse_field_path("@sku", &map).unwrap();
        assert_eq!((attr.steps.len(), attr.attr), (0, Some(qn(None, "sku"))));

        let child = parse_field_path("p:Name", &map).unwrap();
        assert_eq!(child.steps, vec![step(Some(P), "Name")]);
        assert_eq!(child.attr, None);

        let nested = parse_field_path("p:Price/@currency", &map).unwrap();
        assert_eq!(nested.steps, vec![step(Some(P), "Price")]);
        assert_eq!(nested.attr, Some(qn(None, "currency")));

        let deep = parse_field_path("a/b/c", &map).unwrap();
        assert_eq!(
            deep.steps,
            vec![step(None, "a"), step(None, "b"), step(None, "c")]
        );

        let own = parse_field_path(".", &map).unwrap();
        assert!(own.steps.is_empty() && own.attr.is_none());
        assert_eq!(own.text, ".");

        let dotted = parse_field_path("./a", &map).unwrap();
        assert_eq!(dotted.steps, vec![step(None, "a")]);
        assert_eq!(dotted.text, "./a");
    }

    #[test]
    fn field_path_with_predicate_then_child() {
        let path = parse_field_path("a[@type='gtin']/b", &BTreeMap::new()).unwrap();
        assert_eq!(
            path.steps,
            vec![
                Step {
                    name: qn(None, "a"),
                    predicate: Some(Predicate {
                        attr: qn(None, "type"),
                        value: "gtin".to_string(),
                    }),
                },
                step(None, "b"),
            ]
        );
        // Spaces inside the predicate and values with path characters are fine.
        let spaced = parse_field_path("p:Id[ @p:scheme = \"a/b*c\" ]", &ns(&[("p", P)])).unwrap();
        assert_eq!(
            spaced.steps[0].predicate,
            Some(Predicate {
                attr: qn(Some(P), "scheme"),
                value: "a/b*c".to_string(),
            })
        );
    }

    #[test]
    fn xml_prefix_needs_no_declaration() {
        let path = parse_field_path("Name/@xml:lang", &BTreeMap::new()).unwrap();
        assert_eq!(path.attr, Some(qn(Some(XML_NAMESPACE), "lang")));
    }

    #[test]
    fn unknown_prefix_is_named() {
        let err = parse_field_path("q:Name", &ns(&[("p", P)])).unwrap_err();
        assert!(err.contains("unknown namespace prefix `q`"), "{err}");
        let err = parse_record_path("/Products[@x:id='1']", &BTreeMap::new()).unwrap_err();
        assert!(err.contains("`x`"), "{err}");
    }

    #[test]
    fn unsupported_constructs_say_what_is_supported() {
        let none = BTreeMap::new();
        for (text, says) in [
            ("", "empty"),
            ("a//b", "`//`"),
            ("a/", "empty step"),
            ("../a", "`..`"),
            ("a/../b", "`..`"),
            ("*", "wildcards"),
            ("a/*", "wildcards"),
            ("text()", "functions"),
            ("a/text()", "functions"),
            ("a[1]", "[@attr='value']"),
            ("a[@x=1]", "quoted"),
            ("a[@x='1'", "`]`"),
            ("a[@x='1]", "closing"),
            ("@x/a", "last step"),
            ("@x[@y='1']", "predicate"),
            ("/a", "relative"),
            ("a b", "unexpected ` `"),
            ("a/./b", "`.`"),
        ] {
            let err = parse_field_path(text, &none).unwrap_err();
            assert!(err.contains(says), "{text:?}: {err}");
        }
        assert!(
            parse_field_path("a//b", &none)
                .unwrap_err()
                .contains("supported are")
        );
    }

    #[test]
    fn column_path_keeps_the_column_name_as_written() {
        let path = column_path("Unit Price (EUR)");
        assert_eq!(path.steps, vec![step(None, "Unit Price (EUR)")]);
        assert_eq!(path.attr, None);
        assert_eq!(path.text, "Unit Price (EUR)");
    }
}
