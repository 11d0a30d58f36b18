//! The schema as a tree of elements: xsd-parser's interpreted types, read for what a mapping
//! needs — element and attribute names with their namespaces, how often each may occur, and the
//! type of every value.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use xsd_parser::models::meta::{
    AttributeMetaVariant, BuildInMeta, ComplexMeta, ElementMetaVariant, ElementMode, GroupMeta,
    MetaType, MetaTypeVariant, MetaTypes,
};
use xsd_parser::models::schema::xs::{FormChoiceType, Use};
use xsd_parser::models::schema::{MaxOccurs, NamespaceId, SchemaId};
use xsd_parser::models::{IdentType, TypeIdent};
use xsd_parser::{Interpreter, Parser};

use super::ScaffoldError;

/// Levels of elements listed under the record unless `--depth` says otherwise.
pub const DEFAULT_DEPTH: usize = 4;

/// Optional attributes of a text element listed one per line up to this many; more (UBL's
/// `schemeID`, `schemeAgencyID`, … on every identifier) are named in its comment instead.
const LISTED_OPTIONAL_ATTRIBUTES: usize = 1;

/// A read schema: its interpreted types and the namespaces its names use.
pub struct Schema {
    types: MetaTypes,
    /// Schema files read (the given one and every import and include).
    pub files: usize,
    /// Namespace URI by xsd-parser's id; `None` for "no namespace".
    uris: BTreeMap<NamespaceId, Option<String>>,
    /// A prefix the schema files declare for a namespace, where they declare one.
    declared: BTreeMap<NamespaceId, String>,
    xs: Option<NamespaceId>,
    /// The global elements of the given file, roots of a document first.
    pub roots: Vec<Element>,
}

/// An element as it may appear at one place in a document.
#[derive(Debug, Clone)]
pub struct Element {
    /// Its namespace, `None` when unqualified or the schema has none.
    pub ns: Option<NamespaceId>,
    pub local: String,
    pub min: usize,
    /// `None`: unbounded.
    pub max: Option<usize>,
    /// One of a choice: optional whatever its own `minOccurs`.
    pub in_choice: bool,
    ty: TypeIdent,
}

impl Element {
    pub fn repeats(&self) -> bool {
        self.max != Some(1)
    }

    pub fn required(&self) -> bool {
        self.min > 0 && !self.in_choice
    }
}

/// An attribute of an element.
#[derive(Debug, Clone)]
pub struct Attribute {
    pub ns: Option<NamespaceId>,
    pub local: String,
    pub required: bool,
    ty: TypeIdent,
}

/// What an element may contain.
#[derive(Default)]
pub struct Content {
    pub elements: Vec<Element>,
    pub attributes: Vec<Attribute>,
    /// The type of its text, when it has text content.
    pub text: Option<TypeIdent>,
    /// It allows any element (`xs:any`) somewhere.
    pub any: bool,
}

/// The type of a value: the schema's own name for it and the built-in XSD type under it.
#[derive(Debug, Clone, PartialEq)]
pub struct ValueKind {
    /// `cbc:IDType`, `p:Sku`; `None` for an anonymous type or a built-in one.
    pub named: Option<String>,
    /// `xs:decimal`, `xs:string`, … where the chain of bases reaches one.
    pub builtin: Option<String>,
}

impl ValueKind {
    pub fn describe(&self) -> String {
        match (&self.named, &self.builtin) {
            (Some(n), Some(b)) => format!("{n} ({b})"),
            (Some(n), None) => n.clone(),
            (None, Some(b)) => b.clone(),
            (None, None) => "text".to_owned(),
        }
    }
}

/// One value under the record.
#[derive(Debug, Clone)]
pub struct Leaf {
    /// The field path, relative to the record, with prefixes (`cac:Item/cbc:Name`, `@sku`).
    pub path: String,
    /// Local names of the steps, for guessing the Odoo field (`["Item", "Name"]`).
    pub steps: Vec<String>,
    /// Elements between the record and the value (`cac:Item/cbc:Name`: 2).
    pub level: usize,
    pub attribute: bool,
    pub kind: ValueKind,
    /// A valid file has it in every record.
    pub required: bool,
    /// It, or an element above it under the record, may occur more than once (the mapping
    /// takes the first).
    pub repeats: bool,
    /// Optional attributes not listed on their own lines.
    pub more_attributes: Vec<String>,
    /// Namespaces its path uses.
    pub namespaces: BTreeSet<NamespaceId>,
}

/// Every leaf under a record, and what was left out.
#[derive(Default)]
pub struct Leaves {
    pub leaves: Vec<Leaf>,
    /// Elements not expanded because they are deeper than the cap.
    pub too_deep: Vec<String>,
    /// Elements not expanded because their type contains itself.
    pub recursive: Vec<String>,
    /// Places where any element may appear (`xs:any`).
    pub any: Vec<String>,
}

impl Schema {
    /// Parses `path` and everything it imports and includes (local files only).
    pub fn read(path: &Path) -> Result<Schema, ScaffoldError> {
        if !path.is_file() {
            return Err(ScaffoldError::Missing {
                path: path.to_path_buf(),
            });
        }
        let parse_err = |message: String| ScaffoldError::Parse {
            path: path.to_path_buf(),
            message,
        };
        let absolute = std::fs::canonicalize(path).map_err(|e| parse_err(e.to_string()))?;
        let schemas = Parser::new()
            .with_default_resolver()
            .resolve_includes(true)
            .generate_prefixes(false)
            .with_default_namespaces()
            .add_schema_from_file(&absolute)
            .map_err(|e| parse_err(e.to_string()))?
            .finish();
        let main: Option<SchemaId> = schemas
            .schemas()
            .find(|(_, info)| {
                info.location
                    .as_ref()
                    .and_then(|u| u.to_file_path().ok())
                    .is_some_and(|p| p == absolute)
            })
            .map(|(id, _)| *id);
        let files = schemas.schemas().count();
        let mut uris = BTreeMap::new();
        let mut declared = BTreeMap::new();
        for (id, info) in schemas.namespaces() {
            uris.insert(*id, info.namespace.as_ref().map(|n| n.to_string()));
            if let Some(prefix) = &info.prefix {
                declared.insert(*id, prefix.to_string());
            }
        }
        let xs = uris
            .iter()
            .find(|(_, u)| u.as_deref() == Some("http://www.w3.org/2001/XMLSchema"))
            .map(|(id, _)| *id);
        let (types, _) = Interpreter::new(&schemas)
            .with_buildin_types()
            .and_then(|i| i.with_default_typedefs())
            .and_then(|i| i.with_xs_any_type())
            .and_then(|i| i.finish())
            .map_err(|e| parse_err(e.to_string()))?;
        let mut schema = Schema {
            types,
            files,
            uris,
            declared,
            xs,
            roots: Vec::new(),
        };
        schema.roots = schema.find_roots(main);
        if schema.roots.is_empty() {
            return Err(ScaffoldError::NoRoot {
                path: path.to_path_buf(),
            });
        }
        Ok(schema)
    }

    /// The global elements of the main file: those no other element refers to first.
    fn find_roots(&self, main: Option<SchemaId>) -> Vec<Element> {
        let mut referenced = BTreeSet::new();
        for ty in self.types.items.values() {
            let group = match &ty.variant {
                MetaTypeVariant::Sequence(g)
                | MetaTypeVariant::Choice(g)
                | MetaTypeVariant::All(g) => g,
                _ => continue,
            };
            for e in group.elements.iter() {
                if let ElementMetaVariant::Type { type_, .. } = &e.variant
                    && type_.type_ == IdentType::Element
                {
                    referenced.insert(type_.clone());
                }
            }
        }
        let mut globals: Vec<(bool, Element)> = self
            .types
            .items
            .keys()
            .filter(|id| id.type_ == IdentType::Element)
            .filter(|id| main.is_none_or(|m| id.schema == m))
            .filter(|id| id.name.is_named())
            .map(|id| {
                (
                    referenced.contains(id),
                    Element {
                        ns: self.namespace(id.ns),
                        local: id.name.as_str().to_owned(),
                        min: 1,
                        max: Some(1),
                        in_choice: false,
                        ty: id.clone(),
                    },
                )
            })
            .collect();
        globals.sort_by_key(|(referenced, _)| *referenced);
        globals.into_iter().map(|(_, e)| e).collect()
    }

    /// `Some(id)` when the namespace has a URI.
    fn namespace(&self, id: NamespaceId) -> Option<NamespaceId> {
        self.uris.get(&id).and_then(|u| u.as_ref()).map(|_| id)
    }

    pub fn uri(&self, id: NamespaceId) -> Option<&str> {
        self.uris.get(&id).and_then(|u| u.as_deref())
    }

    pub fn declared_prefix(&self, id: NamespaceId) -> Option<&str> {
        self.declared.get(&id).map(String::as_str)
    }

    /// The type an identifier finally names, after references.
    fn resolve(&self, ident: &TypeIdent) -> Option<&MetaType> {
        let mut ident = ident;
        for _ in 0..32 {
            let ty = self.types.items.get(ident)?;
            match &ty.variant {
                MetaTypeVariant::Reference(r) => ident = &r.type_,
                _ => return Some(ty),
            }
        }
        None
    }

    /// What an element of type `ident` may contain.
    pub fn content(&self, element: &Element) -> Content {
        let mut content = Content::default();
        match self.resolve(&element.ty).map(|t| &t.variant) {
            Some(MetaTypeVariant::ComplexType(c)) => self.complex(c, &mut content),
            Some(MetaTypeVariant::Sequence(g) | MetaTypeVariant::All(g)) => {
                self.group(g, false, &mut content)
            }
            Some(MetaTypeVariant::Choice(g)) => self.group(g, true, &mut content),
            Some(MetaTypeVariant::Dynamic(_)) => content.any = true,
            _ => content.text = Some(element.ty.clone()),
        }
        content
    }

    fn complex(&self, c: &ComplexMeta, content: &mut Content) {
        for a in c.attributes.iter() {
            let AttributeMetaVariant::Type(ty) = &a.variant else {
                continue;
            };
            if a.use_ == Use::Prohibited {
                continue;
            }
            let qualified = a.form == FormChoiceType::Qualified;
            content.attributes.push(Attribute {
                ns: if qualified {
                    self.namespace(a.ident.ns)
                } else {
                    None
                },
                local: a.ident.name.as_str().to_owned(),
                required: a.use_ == Use::Required,
                ty: ty.clone(),
            });
        }
        let Some(inner) = &c.content else {
            return;
        };
        match self.resolve(inner).map(|t| &t.variant) {
            Some(MetaTypeVariant::Sequence(g) | MetaTypeVariant::All(g)) => {
                self.group(g, false, content)
            }
            Some(MetaTypeVariant::Choice(g)) => self.group(g, true, content),
            Some(MetaTypeVariant::ComplexType(inner)) => self.complex(inner, content),
            Some(MetaTypeVariant::Dynamic(_)) => content.any = true,
            _ => content.text = Some(inner.clone()),
        }
    }

    fn group(&self, g: &GroupMeta, choice: bool, content: &mut Content) {
        for e in g.elements.iter() {
            match &e.variant {
                ElementMetaVariant::Text => {}
                ElementMetaVariant::Any { .. } => content.any = true,
                ElementMetaVariant::Type {
                    type_,
                    mode: ElementMode::Group,
                } => {
                    let optional = choice || e.min_occurs == 0;
                    let mut inner = Content::default();
                    match self.resolve(type_).map(|t| &t.variant) {
                        Some(MetaTypeVariant::Choice(g)) => self.group(g, true, &mut inner),
                        Some(MetaTypeVariant::Sequence(g) | MetaTypeVariant::All(g)) => {
                            self.group(g, false, &mut inner)
                        }
                        _ => {}
                    }
                    let repeats = e.max_occurs != MaxOccurs::Bounded(1);
                    for mut child in inner.elements {
                        child.in_choice |= optional;
                        if repeats {
                            child.max = None;
                        }
                        content.elements.push(child);
                    }
                    content.any |= inner.any;
                }
                ElementMetaVariant::Type {
                    type_,
                    mode: ElementMode::Element,
                } => {
                    let qualified =
                        e.form == FormChoiceType::Qualified || type_.type_ == IdentType::Element;
                    content.elements.push(Element {
                        ns: if qualified {
                            self.namespace(e.ident.ns)
                        } else {
                            None
                        },
                        local: e.ident.name.as_str().to_owned(),
                        min: e.min_occurs,
                        max: match e.max_occurs {
                            MaxOccurs::Bounded(n) => Some(n),
                            MaxOccurs::Unbounded => None,
                        },
                        in_choice: choice,
                        ty: type_.clone(),
                    });
                }
            }
        }
    }

    /// The schema's name for a value type and the built-in type under it.
    pub fn value_kind(&self, ident: &TypeIdent) -> ValueKind {
        let mut named = None;
        let mut builtin = None;
        let mut ident = ident.clone();
        for _ in 0..32 {
            if Some(ident.ns) == self.xs {
                builtin = Some(format!("xs:{}", ident.name.as_str()));
                break;
            }
            if named.is_none() && ident.type_ == IdentType::Type && ident.name.is_named() {
                named = Some(self.qualified(Some(ident.ns), ident.name.as_str()));
            }
            let Some(ty) = self.types.items.get(&ident) else {
                break;
            };
            let next = match &ty.variant {
                MetaTypeVariant::Reference(r) => Some(&r.type_),
                MetaTypeVariant::SimpleType(s) => Some(&s.base),
                MetaTypeVariant::Enumeration(e) => e.base.as_ident(),
                MetaTypeVariant::Union(u) => {
                    builtin = u.base.as_ident().is_none().then(|| "a union".to_owned());
                    u.base.as_ident()
                }
                MetaTypeVariant::ComplexType(c) => c.content.as_ref().or(c.base.as_ident()),
                MetaTypeVariant::BuildIn(b) => {
                    // A restriction of a built-in type names the Rust type xsd-parser maps it to.
                    builtin = Some(
                        match b {
                            BuildInMeta::F32 | BuildInMeta::F64 => "a decimal number",
                            BuildInMeta::Bool => "a boolean",
                            BuildInMeta::Str | BuildInMeta::String => "text",
                            _ => "a whole number",
                        }
                        .to_owned(),
                    );
                    None
                }
                _ => None,
            };
            match next {
                Some(n) => ident = n.clone(),
                None => break,
            }
        }
        ValueKind { named, builtin }
    }

    /// `prefix:local` with the namespace's prefix (see [`Schema::prefix`]).
    pub fn qualified(&self, ns: Option<NamespaceId>, local: &str) -> String {
        match ns.and_then(|id| self.prefix(id)) {
            Some(p) => format!("{p}:{local}"),
            None => local.to_owned(),
        }
    }

    /// The prefix a namespace gets in paths: the one its schema declares, else one made from
    /// the root element's name (UBL binds its document namespace as the default namespace).
    pub fn prefix(&self, id: NamespaceId) -> Option<String> {
        self.uri(id)?;
        if let Some(p) = self.declared_prefix(id)
            && !p.is_empty()
        {
            return Some(p.to_owned());
        }
        let taken: BTreeSet<&str> = self.declared.values().map(String::as_str).collect();
        let base = self
            .roots
            .iter()
            .find(|r| r.ns == Some(id))
            .map(|r| r.local.clone())
            .unwrap_or_else(|| "ns".to_owned());
        let short: String = base
            .chars()
            .filter(char::is_ascii_alphabetic)
            .take(3)
            .collect::<String>()
            .to_ascii_lowercase();
        let short = if short.is_empty() {
            "ns".to_owned()
        } else {
            short
        };
        if !taken.contains(short.as_str()) {
            return Some(short);
        }
        (1..)
            .map(|n| format!("{short}{n}"))
            .find(|p| !taken.contains(p.as_str()))
    }

    /// Every leaf under `record`, down to `depth` levels of elements.
    pub fn leaves(&self, record: &Element, depth: usize) -> Leaves {
        let mut out = Leaves::default();
        let mut stack = vec![record.ty.clone()];
        self.walk(record, &Prefix::default(), depth, &mut stack, &mut out);
        out
    }

    fn walk(
        &self,
        element: &Element,
        at: &Prefix,
        depth: usize,
        stack: &mut Vec<TypeIdent>,
        out: &mut Leaves,
    ) {
        let content = self.content(element);
        if content.any {
            out.any.push(at.display());
        }
        let optional_attrs = content.attributes.iter().filter(|a| !a.required).count();
        let list_all = content.text.is_none() || optional_attrs <= LISTED_OPTIONAL_ATTRIBUTES;
        let mut more = Vec::new();
        let mut attributes = Vec::new();
        for a in &content.attributes {
            if a.required || list_all {
                attributes.push(a);
            } else {
                more.push(format!("@{}", self.qualified(a.ns, &a.local)));
            }
        }
        if let Some(text) = &content.text {
            out.leaves.push(Leaf {
                path: at.path(),
                steps: at.steps.clone(),
                level: at.level,
                attribute: false,
                kind: self.value_kind(text),
                required: at.required,
                repeats: at.repeats,
                more_attributes: more,
                namespaces: at.namespaces.clone(),
            });
        }
        for a in attributes {
            let step = format!("@{}", self.qualified(a.ns, &a.local));
            let mut namespaces = at.namespaces.clone();
            namespaces.extend(a.ns);
            let mut steps = at.steps.clone();
            steps.push(a.local.clone());
            out.leaves.push(Leaf {
                path: at.join(&step),
                steps,
                level: at.level,
                attribute: true,
                kind: self.value_kind(&a.ty),
                required: at.required && a.required,
                repeats: at.repeats,
                more_attributes: Vec::new(),
                namespaces,
            });
        }
        for child in &content.elements {
            let step = self.qualified(child.ns, &child.local);
            let next = at.child(&step, child);
            if at.level >= depth {
                out.too_deep.push(next.display());
                continue;
            }
            if stack.contains(&child.ty) {
                out.recursive.push(next.display());
                continue;
            }
            stack.push(child.ty.clone());
            self.walk(child, &next, depth, stack, out);
            stack.pop();
        }
    }

    /// The child elements of `element` (for `--record` and the record guess).
    pub fn children(&self, element: &Element) -> Vec<Element> {
        self.content(element).elements
    }

    /// `element` holds other elements (a record is never a plain value).
    pub fn has_elements(&self, element: &Element) -> bool {
        !self.content(element).elements.is_empty()
    }
}

/// Where the walk is: the path so far and what it implies.
#[derive(Clone)]
struct Prefix {
    steps: Vec<String>,
    qualified: Vec<String>,
    level: usize,
    required: bool,
    repeats: bool,
    namespaces: BTreeSet<NamespaceId>,
}

impl Default for Prefix {
    fn default() -> Self {
        Prefix {
            steps: Vec::new(),
            qualified: Vec::new(),
            level: 0,
            required: true,
            repeats: false,
            namespaces: BTreeSet::new(),
        }
    }
}

impl Prefix {
    fn path(&self) -> String {
        if self.qualified.is_empty() {
            ".".to_owned()
        } else {
            self.qualified.join("/")
        }
    }

    fn display(&self) -> String {
        self.path()
    }

    fn join(&self, step: &str) -> String {
        if self.qualified.is_empty() {
            step.to_owned()
        } else {
            format!("{}/{step}", self.path())
        }
    }

    fn child(&self, step: &str, element: &Element) -> Prefix {
        let mut next = self.clone();
        next.steps.push(element.local.clone());
        next.qualified.push(step.to_owned());
        next.level += 1;
        next.required &= element.required();
        next.repeats |= element.repeats();
        next.namespaces.extend(element.ns);
        next
    }
}
