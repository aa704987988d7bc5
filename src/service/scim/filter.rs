//! SCIM filters and attribute paths (RFC 7644 §3.4.2.2 and §3.5.2): a parser, and the
//! evaluation of a filter against a resource in its JSON form, with RFC 7643's case rules.
//!
//! Pure code: no database, no I/O. The parser refuses input over [`MAX_LEN`] characters or
//! nested deeper than [`MAX_DEPTH`], so no filter can exhaust the stack.
use std::fmt;

use chrono::{DateTime, FixedOffset};
use serde_json::Value;

/// The longest filter or path accepted.
pub const MAX_LEN: usize = 4096;
/// The deepest nesting of parentheses and brackets accepted.
pub const MAX_DEPTH: usize = 16;

/// An attribute path: `[urn:...:]attr[.sub]`, optionally with a value filter on a
/// multi-valued attribute (`emails[type eq "work"].value`).
#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    /// The schema URN the path names, as written (`None`: core or any extension).
    pub urn: Option<String>,
    pub attr: String,
    pub filter: Option<Box<Filter>>,
    pub sub: Option<String>,
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

/// A parsed filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    /// `attr pr`
    Present(Path),
    /// `attr op value`
    Compare(Path, Op, Value),
    /// `attr[filter]`: some value of `attr` matches.
    Matches(Path),
}

/// Why a filter or path was refused: `invalidFilter` or `invalidPath` for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses a `filter` query parameter.
pub fn parse(input: &str) -> Result<Filter, ParseError> {
    let mut p = Parser::new(input)?;
    let filter = p.or_expr(0)?;
    p.skip_ws();
    if !p.at_end() {
        return Err(p.error("unexpected text"));
    }
    Ok(filter)
}

/// Parses a PATCH `path`: an attribute path or a value path with an optional sub-attribute.
pub fn parse_path(input: &str) -> Result<Path, ParseError> {
    let mut p = Parser::new(input)?;
    p.skip_ws();
    let path = p.path(0)?;
    p.skip_ws();
    if !p.at_end() {
        return Err(p.error("unexpected text after the path"));
    }
    Ok(path)
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn new(src: &'a str) -> Result<Self, ParseError> {
        if src.chars().count() > MAX_LEN {
            return Err(ParseError(format!(
                "the filter is longer than {MAX_LEN} characters"
            )));
        }
        Ok(Self { src, pos: 0 })
    }

    fn error(&self, what: &str) -> ParseError {
        ParseError(format!("{what} at character {}", self.pos + 1))
    }

    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn at_end(&self) -> bool {
        self.pos >= self.src.len()
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn skip_ws(&mut self) {
        while let Some(c) = self.peek() {
            if c == ' ' || c == '\t' || c == '\n' || c == '\r' {
                self.pos += c.len_utf8();
            } else {
                break;
            }
        }
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    /// A keyword (case-insensitive) followed by a space or by `(` (for `not`).
    fn keyword(&mut self, word: &str) -> bool {
        let rest = self.rest();
        if rest.len() < word.len() || !rest.is_char_boundary(word.len()) {
            return false;
        }
        let (head, tail) = rest.split_at(word.len());
        let ends = tail.is_empty() || tail.starts_with([' ', '\t', '(', '\n', '\r']);
        if head.eq_ignore_ascii_case(word) && ends {
            self.pos += word.len();
            true
        } else {
            false
        }
    }

    fn or_expr(&mut self, depth: usize) -> Result<Filter, ParseError> {
        let mut left = self.and_expr(depth)?;
        loop {
            let save = self.pos;
            self.skip_ws();
            if self.keyword("or") {
                self.skip_ws();
                let right = self.and_expr(depth)?;
                left = Filter::Or(Box::new(left), Box::new(right));
            } else {
                self.pos = save;
                return Ok(left);
            }
        }
    }

    fn and_expr(&mut self, depth: usize) -> Result<Filter, ParseError> {
        let mut left = self.unary(depth)?;
        loop {
            let save = self.pos;
            self.skip_ws();
            if self.keyword("and") {
                self.skip_ws();
                let right = self.unary(depth)?;
                left = Filter::And(Box::new(left), Box::new(right));
            } else {
                self.pos = save;
                return Ok(left);
            }
        }
    }

    fn unary(&mut self, depth: usize) -> Result<Filter, ParseError> {
        if depth >= MAX_DEPTH {
            return Err(self.error("the filter is nested too deeply"));
        }
        self.skip_ws();
        let save = self.pos;
        if self.keyword("not") {
            self.skip_ws();
            if self.eat('(') {
                let inner = self.or_expr(depth + 1)?;
                self.skip_ws();
                if !self.eat(')') {
                    return Err(self.error("expected `)`"));
                }
                return Ok(Filter::Not(Box::new(inner)));
            }
            // An attribute called `not`.
            self.pos = save;
        }
        if self.eat('(') {
            let inner = self.or_expr(depth + 1)?;
            self.skip_ws();
            if !self.eat(')') {
                return Err(self.error("expected `)`"));
            }
            return Ok(inner);
        }
        let path = self.path(depth)?;
        let save = self.pos;
        self.skip_ws();
        let operator = self.word();
        let op = match operator.to_ascii_lowercase().as_str() {
            "pr" => return Ok(Filter::Present(path)),
            "eq" => Op::Eq,
            "ne" => Op::Ne,
            "co" => Op::Co,
            "sw" => Op::Sw,
            "ew" => Op::Ew,
            "gt" => Op::Gt,
            "ge" => Op::Ge,
            "lt" => Op::Lt,
            "le" => Op::Le,
            "" if path.filter.is_some() && path.sub.is_none() => {
                self.pos = save;
                return Ok(Filter::Matches(path));
            }
            "and" | "or" if path.filter.is_some() && path.sub.is_none() => {
                self.pos = save;
                return Ok(Filter::Matches(path));
            }
            "" => {
                return Err(
                    self.error("expected an operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr)")
                );
            }
            other => return Err(ParseError(format!("`{other}` is not a filter operator"))),
        };
        self.skip_ws();
        let value = self.value()?;
        Ok(Filter::Compare(path, op, value))
    }

    /// A run of letters (an operator or keyword).
    fn word(&mut self) -> &'a str {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c.is_ascii_alphabetic() {
                self.pos += 1;
            } else {
                break;
            }
        }
        &self.src[start..self.pos]
    }

    fn name(&mut self) -> &'a str {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '$' | ':' | '.') {
                self.pos += 1;
            } else {
                break;
            }
        }
        &self.src[start..self.pos]
    }

    fn path(&mut self, depth: usize) -> Result<Path, ParseError> {
        let raw = self.name();
        if raw.is_empty() {
            return Err(self.error("expected an attribute name"));
        }
        let mut path = split_path(raw)
            .ok_or_else(|| ParseError(format!("`{raw}` is not an attribute path")))?;
        if self.eat('[') {
            if depth + 1 >= MAX_DEPTH {
                return Err(self.error("the filter is nested too deeply"));
            }
            if path.sub.is_some() {
                return Err(self.error(
                    "a value filter belongs to a multi-valued attribute, not to a sub-attribute",
                ));
            }
            let inner = self.or_expr(depth + 1)?;
            self.skip_ws();
            if !self.eat(']') {
                return Err(self.error("expected `]`"));
            }
            path.filter = Some(Box::new(inner));
            if self.eat('.') {
                let sub = self.name();
                if !is_attr_name(sub) {
                    return Err(self.error("expected a sub-attribute name after `].`"));
                }
                path.sub = Some(sub.to_owned());
            }
        }
        Ok(path)
    }

    fn value(&mut self) -> Result<Value, ParseError> {
        match self.peek() {
            Some('"') => {
                // A JSON string: find its end, honouring escapes, and let serde_json decode it.
                let start = self.pos;
                self.pos += 1;
                let mut escaped = false;
                loop {
                    let Some(c) = self.peek() else {
                        return Err(self.error("unterminated string"));
                    };
                    self.pos += c.len_utf8();
                    match c {
                        '\\' if !escaped => escaped = true,
                        '"' if !escaped => break,
                        _ => escaped = false,
                    }
                }
                serde_json::from_str::<String>(&self.src[start..self.pos])
                    .map(Value::String)
                    .map_err(|_| self.error("invalid string escape"))
            }
            Some(c) if c == '-' || c.is_ascii_digit() => {
                let start = self.pos;
                while let Some(c) = self.peek() {
                    if c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E') {
                        self.pos += 1;
                    } else {
                        break;
                    }
                }
                serde_json::from_str::<serde_json::Number>(&self.src[start..self.pos])
                    .map(Value::Number)
                    .map_err(|_| self.error("invalid number"))
            }
            _ => {
                let word = self.word();
                match word.to_ascii_lowercase().as_str() {
                    "true" => Ok(Value::Bool(true)),
                    "false" => Ok(Value::Bool(false)),
                    "null" => Ok(Value::Null),
                    _ => Err(self
                        .error("expected a value (a \"string\", a number, true, false or null)")),
                }
            }
        }
    }
}

fn is_attr_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Splits `urn:...:User:name.givenName` into its URN, attribute and sub-attribute.
fn split_path(raw: &str) -> Option<Path> {
    let (urn, rest) = if raw.len() > 4 && raw[..4].eq_ignore_ascii_case("urn:") {
        let at = raw.rfind(':')?;
        (Some(raw[..at].to_owned()), &raw[at + 1..])
    } else {
        (None, raw)
    };
    let (attr, sub) = match rest.split_once('.') {
        Some((a, s)) => (a, Some(s)),
        None => (rest, None),
    };
    if !is_attr_name(attr) || sub.is_some_and(|s| !is_attr_name(s)) {
        return None;
    }
    Some(Path {
        urn,
        attr: attr.to_owned(),
        filter: None,
        sub: sub.map(str::to_owned),
    })
}

/// What the evaluation needs to know about the resource's schema.
pub trait Rules {
    /// Whether values of `attr` (`sub` of it) compare case-exactly.
    fn case_exact(&self, attr: &str, sub: Option<&str>) -> bool;
    /// The object holding the attributes of the schema `urn` within `resource`.
    fn scope<'r>(&self, resource: &'r Value, urn: &str) -> Option<&'r Value>;
}

/// Looks up `key` in an object, ignoring case (attribute names are case-insensitive).
pub fn get_ci<'v>(object: &'v Value, key: &str) -> Option<&'v Value> {
    object
        .as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

/// Evaluates a filter against a resource. `Err` for what RFC 7644 calls a failed filter (an
/// ordering comparison on a boolean).
pub fn matches(filter: &Filter, resource: &Value, rules: &dyn Rules) -> Result<bool, ParseError> {
    Ok(match filter {
        Filter::And(a, b) => matches(a, resource, rules)? && matches(b, resource, rules)?,
        Filter::Or(a, b) => matches(a, resource, rules)? || matches(b, resource, rules)?,
        Filter::Not(a) => !matches(a, resource, rules)?,
        Filter::Present(path) => values(path, resource, rules)?.iter().any(|v| present(v)),
        Filter::Matches(path) => !values(path, resource, rules)?.is_empty(),
        Filter::Compare(path, op, expected) => {
            let exact = rules.case_exact(&path.attr, path.sub.as_deref());
            let found = values(path, resource, rules)?;
            let any =
                |want: &dyn Fn(&Value) -> Result<bool, ParseError>| -> Result<bool, ParseError> {
                    for v in &found {
                        if want(v)? {
                            return Ok(true);
                        }
                    }
                    Ok(false)
                };
            match op {
                Op::Ne => !any(&|v| compare(v, Op::Eq, expected, exact))?,
                Op::Eq if expected.is_null() => found.iter().all(|v| !present(v)),
                _ => any(&|v| compare(v, *op, expected, exact))?,
            }
        }
    })
}

fn present(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => a.iter().any(present),
        Value::Object(o) => o.values().any(present),
        _ => true,
    }
}

/// The values a path names in `resource`, multi-valued attributes flattened; a multi-valued
/// complex attribute without a sub-attribute compares by its `value` (RFC 7644 §3.4.2.2).
fn values<'r>(
    path: &Path,
    resource: &'r Value,
    rules: &dyn Rules,
) -> Result<Vec<&'r Value>, ParseError> {
    let scope = match &path.urn {
        Some(urn) => match rules.scope(resource, urn) {
            Some(scope) => scope,
            None => return Ok(Vec::new()),
        },
        None => resource,
    };
    let Some(top) = get_ci(scope, &path.attr) else {
        return Ok(Vec::new());
    };
    let mut elements: Vec<&Value> = match top {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    if let Some(filter) = &path.filter {
        let mut kept = Vec::new();
        for e in elements {
            if sub_matches(filter, e, rules, &path.attr)? {
                kept.push(e);
            }
        }
        elements = kept;
    }
    Ok(match &path.sub {
        Some(sub) => elements
            .into_iter()
            .filter_map(|e| get_ci(e, sub))
            .flat_map(flatten)
            .collect(),
        None => elements
            .into_iter()
            .map(|e| {
                if e.is_object() {
                    get_ci(e, "value").unwrap_or(e)
                } else {
                    e
                }
            })
            .collect(),
    })
}

fn flatten(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(a) => a.iter().collect(),
        other => vec![other],
    }
}

/// A value filter evaluated on one element of a multi-valued attribute: its attribute names
/// are that element's sub-attributes.
pub fn sub_matches(
    filter: &Filter,
    element: &Value,
    rules: &dyn Rules,
    parent: &str,
) -> Result<bool, ParseError> {
    struct Within<'a> {
        outer: &'a dyn Rules,
        parent: &'a str,
    }
    impl Rules for Within<'_> {
        fn case_exact(&self, attr: &str, _: Option<&str>) -> bool {
            self.outer.case_exact(self.parent, Some(attr))
        }
        fn scope<'r>(&self, resource: &'r Value, _: &str) -> Option<&'r Value> {
            Some(resource)
        }
    }
    let element = if element.is_object() {
        element.clone()
    } else {
        // A multi-valued simple attribute: its one value is `value`.
        serde_json::json!({ "value": element })
    };
    matches(
        filter,
        &element,
        &Within {
            outer: rules,
            parent,
        },
    )
}

fn fold(s: &str, exact: bool) -> String {
    if exact {
        s.to_owned()
    } else {
        s.to_lowercase()
    }
}

fn compare(found: &Value, op: Op, expected: &Value, exact: bool) -> Result<bool, ParseError> {
    match (found, expected) {
        (Value::String(a), Value::String(b)) => {
            if let (Some(x), Some(y)) = (date(a), date(b)) {
                return Ok(ordered(x.cmp(&y), op).unwrap_or_else(|| {
                    let (a, b) = (fold(a, exact), fold(b, exact));
                    text(&a, &b, op)
                }));
            }
            let (a, b) = (fold(a, exact), fold(b, exact));
            Ok(match ordered(a.cmp(&b), op) {
                Some(r) => r,
                None => text(&a, &b, op),
            })
        }
        (Value::Bool(a), Value::Bool(b)) => match op {
            Op::Eq => Ok(a == b),
            Op::Ne => Ok(a != b),
            _ => Err(ParseError(
                "booleans can only be compared with eq and ne".into(),
            )),
        },
        (Value::Number(a), Value::Number(b)) => {
            let (Some(x), Some(y)) = (a.as_f64(), b.as_f64()) else {
                return Ok(false);
            };
            Ok(match x.partial_cmp(&y) {
                Some(ord) => ordered(ord, op).unwrap_or(false),
                None => false,
            })
        }
        (Value::Bool(_), _) | (_, Value::Bool(_)) if !matches!(op, Op::Eq | Op::Ne) => Err(
            ParseError("booleans can only be compared with eq and ne".into()),
        ),
        _ => Ok(false),
    }
}

/// `Some` for the ordering operators and eq/ne, `None` for the text ones.
fn ordered(ord: std::cmp::Ordering, op: Op) -> Option<bool> {
    use std::cmp::Ordering::*;
    Some(match op {
        Op::Eq => ord == Equal,
        Op::Ne => ord != Equal,
        Op::Gt => ord == Greater,
        Op::Ge => ord != Less,
        Op::Lt => ord == Less,
        Op::Le => ord != Greater,
        Op::Co | Op::Sw | Op::Ew => return None,
    })
}

fn text(a: &str, b: &str, op: Op) -> bool {
    match op {
        Op::Co => a.contains(b),
        Op::Sw => a.starts_with(b),
        Op::Ew => a.ends_with(b),
        _ => false,
    }
}

fn date(s: &str) -> Option<DateTime<FixedOffset>> {
    // Only strings that look like a timestamp are read as one.
    if s.len() < 20 || !s.as_bytes()[4].eq(&b'-') {
        return None;
    }
    DateTime::parse_from_rfc3339(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Core;
    impl Rules for Core {
        fn case_exact(&self, attr: &str, sub: Option<&str>) -> bool {
            matches!(
                (attr.to_ascii_lowercase().as_str(), sub),
                ("id", None) | ("externalid", None)
            )
        }
        fn scope<'r>(&self, resource: &'r Value, urn: &str) -> Option<&'r Value> {
            if urn.eq_ignore_ascii_case("urn:ietf:params:scim:schemas:core:2.0:User") {
                Some(resource)
            } else {
                get_ci(resource, urn)
            }
        }
    }

    fn user() -> Value {
        json!({
            "id": "2819c223",
            "externalId": "AbC",
            "userName": "Bjensen@Example.com",
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "active": true,
            "emails": [
                {"value": "bjensen@example.com", "type": "work", "primary": true},
                {"value": "babs@jensen.org", "type": "home"}
            ],
            "meta": {"created": "2026-01-23T04:56:22Z", "lastModified": "2026-05-13T04:42:34Z"},
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "701984"}
        })
    }

    fn check(filter: &str) -> bool {
        let parsed = parse(filter).unwrap_or_else(|e| panic!("{filter}: {e}"));
        matches(&parsed, &user(), &Core).expect("evaluates")
    }

    #[test]
    fn the_rfc_examples_evaluate() {
        assert!(
            check(r#"userName eq "bjensen@example.com""#),
            "userName is case-insensitive"
        );
        assert!(!check(r#"externalId eq "abc""#), "externalId is case-exact");
        assert!(check(r#"externalId eq "AbC""#));
        assert!(check(r#"name.familyName co "ens""#));
        assert!(check(r#"userName sw "B""#));
        assert!(check(r#"userName ew ".COM""#));
        assert!(check("name.givenName pr"));
        assert!(!check("title pr"));
        assert!(check(r#"meta.lastModified gt "2026-05-13T04:42:00Z""#));
        assert!(check(r#"meta.lastModified ge "2026-05-13T04:42:34Z""#));
        assert!(!check(r#"meta.created lt "2026-01-01T00:00:00Z""#));
        assert!(
            check(r#"meta.created le "2026-01-23T05:56:22+01:00""#),
            "same instant, other offset"
        );
        assert!(check(
            r#"title pr or userType eq "Employee" or active eq true"#
        ));
        assert!(check(
            r#"emails[type eq "work" and value co "@example.com"]"#
        ));
        assert!(!check(
            r#"emails[type eq "home" and value co "@example.com"]"#
        ));
        assert!(check(
            r#"emails[type eq "work"].value eq "BJENSEN@example.com""#
        ));
        assert!(
            check(r#"emails co "jensen.org""#),
            "a complex attribute compares by its value"
        );
        assert!(check(r#"emails.type eq "home""#));
        assert!(check(
            r#"userType ne "Employee" and not (emails co "example.org")"#
        ));
        assert!(!check(r#"not(active eq true)"#));
        assert!(check(
            r#"(userName eq "x" or userName sw "bj") and active eq true"#
        ));
        assert!(check(
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "bj""#
        ));
        assert!(check(
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984""#
        ));
        assert!(
            check(r#"USERNAME EQ "bjensen@example.com""#),
            "names and operators ignore case"
        );
        assert!(check(r#"title eq null"#));
        assert!(!check(r#"userName eq null"#));
    }

    #[test]
    fn and_binds_tighter_than_or() {
        // false and false or true: (false and false) or true.
        assert!(check(
            r#"userName eq "x" and userName eq "y" or active eq true"#
        ));
        // true or true and false: true or (true and false).
        assert!(check(
            r#"active eq true or active eq true and userName eq "y""#
        ));
        assert!(!check(
            r#"(active eq true or active eq true) and userName eq "y""#
        ));
    }

    #[test]
    fn ordering_a_boolean_is_a_failed_filter() {
        let f = parse("active gt true").expect("parses");
        assert!(matches(&f, &user(), &Core).is_err());
    }

    #[test]
    fn junk_is_refused_with_a_reason() {
        for bad in [
            "",
            "userName",
            "userName eq",
            r#"userName eq "unterminated"#,
            r#"userName xx "a""#,
            r#"userName eq "a" and"#,
            r#"(userName eq "a""#,
            r#"emails[type eq "work""#,
            r#"emails[type eq "work"]]"#,
            "userName eq bareword",
            r#"name.givenName.x eq "a""#,
            r#"userName eq "a" extra"#,
            "9lives eq 1",
        ] {
            assert!(parse(bad).is_err(), "`{bad}` should be refused");
        }
        let deep = format!("{}active eq true{}", "(".repeat(40), ")".repeat(40));
        assert!(parse(&deep).is_err());
        assert!(parse(&"a".repeat(MAX_LEN + 1)).is_err());
    }

    #[test]
    fn patch_paths_parse() {
        let p = parse_path(r#"members[value eq "2819c223"]"#).expect("path");
        assert_eq!(p.attr, "members");
        assert!(p.filter.is_some() && p.sub.is_none());
        let p = parse_path(r#"emails[type eq "work"].value"#).expect("path");
        assert_eq!(p.sub.as_deref(), Some("value"));
        let p =
            parse_path("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value")
                .expect("path");
        assert_eq!(
            p.urn.as_deref(),
            Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User")
        );
        assert_eq!(
            (p.attr.as_str(), p.sub.as_deref()),
            ("manager", Some("value"))
        );
        assert!(parse_path("name..givenName").is_err());
        assert!(parse_path("emails[").is_err());
    }

    /// Random and mutated filters never panic the parser or the evaluation (the cargo-fuzz
    /// target `scim_filter` goes further; this runs on stable in every test run).
    #[test]
    fn random_and_mutated_filters_never_panic() {
        let pieces = [
            "userName",
            "emails",
            "[",
            "]",
            "(",
            ")",
            ".",
            "value",
            " eq ",
            " ne ",
            " co ",
            " gt ",
            " pr",
            " and ",
            " or ",
            "not",
            "\"x\"",
            "\"",
            "\\",
            "true",
            "null",
            "1e9",
            "-",
            "urn:a:b:",
            "meta.created",
            "\"2026-01-01T00:00:00Z\"",
            " ",
            "é",
            "\u{0}",
            "$ref",
            ":",
        ];
        let seeds = [
            r#"emails[type eq "work" and value co "@example.com"] or not (userName sw "J")"#,
            r#"urn:ietf:params:scim:schemas:core:2.0:User:name.givenName pr and active eq true"#,
            r#"meta.lastModified ge "2026-05-13T04:42:34Z""#,
        ];
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..20_000 {
            let text: String = if round % 2 == 0 {
                (0..(next() % 24))
                    .map(|_| pieces[(next() % pieces.len() as u64) as usize])
                    .collect()
            } else {
                let seed = seeds[(next() % seeds.len() as u64) as usize];
                let mut chars: Vec<char> = seed.chars().collect();
                for _ in 0..(1 + next() % 4) {
                    let at = (next() % chars.len() as u64) as usize;
                    match next() % 3 {
                        0 => {
                            chars.remove(at);
                        }
                        1 => chars.insert(
                            at,
                            ['(', ')', '[', ']', '"', ' ', '.', 'x'][(next() % 8) as usize],
                        ),
                        _ => {
                            let other = (next() % chars.len() as u64) as usize;
                            chars.swap(at, other)
                        }
                    }
                    if chars.is_empty() {
                        break;
                    }
                }
                chars.into_iter().collect()
            };
            let _ = parse_path(&text);
            if let Ok(f) = parse(&text) {
                let _ = matches(&f, &user(), &Core);
            }
        }
    }
}
