//! The SCIM 2.0 filter language (RFC 7644 §3.4.2.2) and PATCH paths
//! (§3.5.2), parsed into a syntax tree. Nothing here evaluates a filter:
//! the tree is translated to SQL with bound parameters by whoever owns the
//! tables, and attribute names are resolved there (they are kept as given;
//! SCIM compares them ignoring case).
//!
//! Grammar, with `not` binding tighter than `and`, and `and` tighter than `or`:
//!
//! ```text
//! filter    = or
//! or        = and *("or" and)
//! and       = unary *("and" unary)
//! unary     = "not" "(" filter ")" / "(" filter ")" / attrExp / valuePath
//! valuePath = attrPath "[" filter "]"
//! attrExp   = attrPath "pr" / attrPath compareOp compValue
//! compareOp = "eq" / "ne" / "co" / "sw" / "ew" / "gt" / "lt" / "ge" / "le"
//! compValue = "false" / "null" / "true" / number / string
//! attrPath  = [schema URN ":"] name ["." subName]
//! ```
//!
//! Operators and literals are matched ignoring case (`Eq`, `AND`, `True`),
//! as clients send them.

use std::fmt;

use serde_json::Number;

/// A parsed filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `attr pr`: the attribute has a value.
    Present(AttrPath),
    /// `attr op value`.
    Compare {
        /// The attribute compared.
        path: AttrPath,
        /// How.
        op: CompareOp,
        /// With what.
        value: CompValue,
    },
    /// Both hold.
    And(Box<Filter>, Box<Filter>),
    /// Either holds.
    Or(Box<Filter>, Box<Filter>),
    /// It does not hold.
    Not(Box<Filter>),
    /// `attr[filter]`: some value of a multi-valued attribute matches the
    /// inner filter, whose paths name its sub-attributes.
    ValuePath {
        /// The multi-valued attribute.
        path: AttrPath,
        /// What one of its values must match.
        filter: Box<Filter>,
    },
}

/// An attribute, as written: `userName`, `name.givenName`,
/// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPath {
    /// The schema URN, when the name is qualified by one.
    pub schema: Option<String>,
    /// The attribute's name.
    pub attribute: String,
    /// The sub-attribute's name, for `attribute.subAttribute`.
    pub sub_attribute: Option<String>,
}

impl AttrPath {
    /// Whether this path names `attribute` (and `sub_attribute`), ignoring
    /// case as SCIM does.
    pub fn names(&self, attribute: &str, sub_attribute: Option<&str>) -> bool {
        self.attribute.eq_ignore_ascii_case(attribute)
            && match (&self.sub_attribute, sub_attribute) {
                (None, None) => true,
                (Some(mine), Some(theirs)) => mine.eq_ignore_ascii_case(theirs),
                _ => false,
            }
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(schema) = &self.schema {
            write!(f, "{schema}:")?;
        }
        f.write_str(&self.attribute)?;
        if let Some(sub) = &self.sub_attribute {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

/// The filter in SCIM's syntax, every compound operand in parentheses, so
/// that parsing the text gives the same filter back.
impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Filter::Present(path) => write!(f, "{path} pr"),
            Filter::Compare { path, op, value } => write!(f, "{path} {op} {value}"),
            Filter::And(left, right) => write!(f, "({left}) and ({right})"),
            Filter::Or(left, right) => write!(f, "({left}) or ({right})"),
            Filter::Not(inner) => write!(f, "not ({inner})"),
            Filter::ValuePath { path, filter } => write!(f, "{path}[{filter}]"),
        }
    }
}

impl fmt::Display for CompareOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Co => "co",
            CompareOp::Sw => "sw",
            CompareOp::Ew => "ew",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
        })
    }
}

impl fmt::Display for CompValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompValue::Null => f.write_str("null"),
            CompValue::Bool(value) => write!(f, "{value}"),
            CompValue::Number(number) => write!(f, "{number}"),
            // JSON's escapes, which the parser reads back.
            CompValue::String(text) => {
                f.write_str(&serde_json::Value::String(text.clone()).to_string())
            }
        }
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    /// Equal.
    Eq,
    /// Not equal.
    Ne,
    /// Contains.
    Co,
    /// Starts with.
    Sw,
    /// Ends with.
    Ew,
    /// Greater than.
    Gt,
    /// Greater than or equal.
    Ge,
    /// Less than.
    Lt,
    /// Less than or equal.
    Le,
}

impl CompareOp {
    fn parse(word: &str) -> Option<Self> {
        Some(match word.to_ascii_lowercase().as_str() {
            "eq" => CompareOp::Eq,
            "ne" => CompareOp::Ne,
            "co" => CompareOp::Co,
            "sw" => CompareOp::Sw,
            "ew" => CompareOp::Ew,
            "gt" => CompareOp::Gt,
            "ge" => CompareOp::Ge,
            "lt" => CompareOp::Lt,
            "le" => CompareOp::Le,
            _ => return None,
        })
    }
}

/// A literal compared with.
#[derive(Debug, Clone, PartialEq)]
pub enum CompValue {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A JSON number.
    Number(Number),
    /// A JSON string, unescaped.
    String(String),
}

/// A PATCH operation's target (RFC 7644 §3.5.2): an attribute, or the
/// values of a multi-valued attribute that match a filter, optionally
/// narrowed to one sub-attribute: `emails[type eq "work"].value`.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    /// The attribute.
    pub path: AttrPath,
    /// Which of its values, for `attr[filter]`.
    pub filter: Option<Filter>,
    /// The sub-attribute after `attr[filter]`.
    pub sub_attribute: Option<String>,
}

/// Why a filter or path could not be parsed or used: what is wrong and,
/// for a parse, where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}{}", position.map(|p| format!(" (at character {p})")).unwrap_or_default())]
pub struct FilterError {
    /// What is wrong.
    pub message: String,
    /// The character offset (from 0) where it was found, for a parse.
    pub position: Option<usize>,
}

/// Parses a filter.
pub fn parse_filter(text: &str) -> Result<Filter, FilterError> {
    let mut parser = Parser::new(text)?;
    let filter = parser.or()?;
    parser.expect_end()?;
    Ok(filter)
}

/// Parses a PATCH path.
pub fn parse_patch_path(text: &str) -> Result<PatchPath, FilterError> {
    let mut parser = Parser::new(text)?;
    let path = parser.attr_path()?;
    let mut patch = PatchPath {
        path,
        filter: None,
        sub_attribute: None,
    };
    if parser.eat(&Token::LBracket) {
        patch.filter = Some(parser.or()?);
        parser.expect(&Token::RBracket, "`]` closing the value filter")?;
        if let Some(Token::Word(word)) = parser.peek().cloned()
            && let Some(sub) = word.strip_prefix('.')
        {
            parser.next();
            if !is_name(sub) {
                return Err(parser.error_here(format!("`{sub}` is not a sub-attribute name")));
            }
            patch.sub_attribute = Some(sub.to_owned());
        }
    }
    parser.expect_end()?;
    Ok(patch)
}

/// A JSON number, read exactly: JSON's grammar decides what is one, and a
/// decimal is read by the standard library's correctly rounded parser
/// (serde_json's default one may be a unit in the last place off).
fn json_number(word: &str) -> Option<Number> {
    let number: Number = serde_json::from_str(word).ok()?;
    if number.is_f64() {
        word.parse::<f64>().ok().and_then(Number::from_f64)
    } else {
        Some(number)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    LParen,
    RParen,
    LBracket,
    RBracket,
    /// A name, keyword, operator, number or literal: anything unquoted.
    Word(String),
    /// A quoted string, unescaped.
    Str(String),
}

/// The deepest nesting of parentheses, `not (…)` and value filters accepted:
/// the parser and whoever walks the tree recurse once per level.
pub const MAX_DEPTH: usize = 32;
/// The most comparisons one filter may hold.
pub const MAX_TERMS: usize = 200;

struct Parser {
    tokens: Vec<(Token, usize)>,
    next: usize,
    end: usize,
    depth: usize,
    terms: usize,
}

impl Parser {
    fn new(text: &str) -> Result<Self, FilterError> {
        Ok(Self {
            tokens: tokenize(text)?,
            next: 0,
            end: text.chars().count(),
            depth: 0,
            terms: 0,
        })
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.next).map(|(token, _)| token)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.next).map(|(token, _)| token.clone());
        self.next += 1;
        token
    }

    fn position(&self) -> usize {
        self.tokens
            .get(self.next)
            .map_or(self.end, |(_, position)| *position)
    }

    fn error_here(&self, message: impl Into<String>) -> FilterError {
        FilterError {
            message: message.into(),
            position: Some(self.position()),
        }
    }

    fn eat(&mut self, token: &Token) -> bool {
        if self.peek() == Some(token) {
            self.next += 1;
            true
        } else {
            false
        }
    }

    fn eat_keyword(&mut self, keyword: &str) -> bool {
        match self.peek() {
            Some(Token::Word(word)) if word.eq_ignore_ascii_case(keyword) => {
                self.next += 1;
                true
            }
            _ => false,
        }
    }

    fn expect(&mut self, token: &Token, what: &str) -> Result<(), FilterError> {
        if self.eat(token) {
            Ok(())
        } else {
            Err(self.error_here(format!("expected {what}")))
        }
    }

    fn expect_end(&self) -> Result<(), FilterError> {
        match self.peek() {
            None => Ok(()),
            Some(token) => Err(self.error_here(format!(
                "unexpected {} where the filter should end or continue with `and` or `or`",
                describe(token)
            ))),
        }
    }

    fn or(&mut self) -> Result<Filter, FilterError> {
        let mut filter = self.and()?;
        while self.eat_keyword("or") {
            filter = Filter::Or(Box::new(filter), Box::new(self.and()?));
        }
        Ok(filter)
    }

    fn and(&mut self) -> Result<Filter, FilterError> {
        let mut filter = self.unary()?;
        while self.eat_keyword("and") {
            filter = Filter::And(Box::new(filter), Box::new(self.unary()?));
        }
        Ok(filter)
    }

    /// Parses a nested filter, one level deeper (refused past [`MAX_DEPTH`]).
    fn nested(&mut self) -> Result<Filter, FilterError> {
        if self.depth >= MAX_DEPTH {
            return Err(self.error_here(format!("the filter nests deeper than {MAX_DEPTH} levels")));
        }
        self.depth += 1;
        let filter = self.or();
        self.depth -= 1;
        filter
    }

    fn unary(&mut self) -> Result<Filter, FilterError> {
        if self.eat(&Token::LParen) {
            let filter = self.nested()?;
            self.expect(&Token::RParen, "`)`")?;
            return Ok(filter);
        }
        if matches!(self.peek(), Some(Token::Word(word)) if word.eq_ignore_ascii_case("not"))
            && self.tokens.get(self.next + 1).map(|(token, _)| token) == Some(&Token::LParen)
        {
            self.next += 2;
            let filter = self.nested()?;
            self.expect(&Token::RParen, "`)` closing `not (`")?;
            return Ok(Filter::Not(Box::new(filter)));
        }
        self.terms += 1;
        if self.terms > MAX_TERMS {
            return Err(
                self.error_here(format!("the filter has more than {MAX_TERMS} comparisons"))
            );
        }
        let path = self.attr_path()?;
        if self.eat(&Token::LBracket) {
            let filter = self.nested()?;
            self.expect(&Token::RBracket, "`]` closing the value filter")?;
            return Ok(Filter::ValuePath {
                path,
                filter: Box::new(filter),
            });
        }
        if self.eat_keyword("pr") {
            return Ok(Filter::Present(path));
        }
        let op = match self.peek() {
            Some(Token::Word(word)) => CompareOp::parse(word),
            _ => None,
        }
        .ok_or_else(|| {
            self.error_here(format!(
                "expected an operator after `{path}` (eq, ne, co, sw, ew, gt, ge, lt, le or pr)"
            ))
        })?;
        self.next += 1;
        let value = self.comp_value()?;
        Ok(Filter::Compare { path, op, value })
    }

    fn comp_value(&mut self) -> Result<CompValue, FilterError> {
        let at = self.position();
        let invalid = |message: String| FilterError {
            message,
            position: Some(at),
        };
        match self.next() {
            Some(Token::Str(text)) => Ok(CompValue::String(text)),
            Some(Token::Word(word)) => match word.to_ascii_lowercase().as_str() {
                "true" => Ok(CompValue::Bool(true)),
                "false" => Ok(CompValue::Bool(false)),
                "null" => Ok(CompValue::Null),
                _ => json_number(&word)
                    .map(CompValue::Number)
                    .ok_or_else(|| {
                        invalid(format!(
                            "`{word}` is not a value: quote strings (\"…\"), or use a number, true, false or null"
                        ))
                    }),
            },
            Some(token) => Err(invalid(format!(
                "expected a value, found {}",
                describe(&token)
            ))),
            None => Err(invalid("expected a value at the end of the filter".into())),
        }
    }

    fn attr_path(&mut self) -> Result<AttrPath, FilterError> {
        let at = self.position();
        let word = match self.next() {
            Some(Token::Word(word)) => word,
            Some(token) => {
                return Err(FilterError {
                    message: format!("expected an attribute name, found {}", describe(&token)),
                    position: Some(at),
                });
            }
            None => {
                return Err(FilterError {
                    message: "expected an attribute name at the end of the filter".into(),
                    position: Some(at),
                });
            }
        };
        attr_path(&word).ok_or_else(|| FilterError {
            message: format!("`{word}` is not an attribute name"),
            position: Some(at),
        })
    }
}

/// `[urn:…:]name[.sub]`: the schema is what comes before the last colon (a
/// URN's version, `2.0`, holds a dot of its own).
fn attr_path(word: &str) -> Option<AttrPath> {
    let (schema, rest) = match word.rsplit_once(':') {
        Some((schema, rest)) if schema.to_ascii_lowercase().starts_with("urn:") => {
            (Some(schema.to_owned()), rest)
        }
        Some(_) => return None,
        None => (None, word),
    };
    let (attribute, sub_attribute) = match rest.split_once('.') {
        Some((attribute, sub)) => (attribute, Some(sub)),
        None => (rest, None),
    };
    if !is_name(attribute) || !sub_attribute.is_none_or(is_name) {
        return None;
    }
    Some(AttrPath {
        schema,
        attribute: attribute.to_owned(),
        sub_attribute: sub_attribute.map(str::to_owned),
    })
}

/// RFC 7643's ATTRNAME: a letter, then letters, digits, `-`, `_` (and `$`,
/// which `$ref` needs).
fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn describe(token: &Token) -> String {
    match token {
        Token::LParen => "`(`".into(),
        Token::RParen => "`)`".into(),
        Token::LBracket => "`[`".into(),
        Token::RBracket => "`]`".into(),
        Token::Word(word) => format!("`{word}`"),
        Token::Str(text) => format!("the string \"{text}\""),
    }
}

fn tokenize(text: &str) -> Result<Vec<(Token, usize)>, FilterError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut at = 0;
    while at < chars.len() {
        let c = chars[at];
        let single = match c {
            '(' => Some(Token::LParen),
            ')' => Some(Token::RParen),
            '[' => Some(Token::LBracket),
            ']' => Some(Token::RBracket),
            _ => None,
        };
        if let Some(token) = single {
            tokens.push((token, at));
            at += 1;
        } else if c.is_whitespace() {
            at += 1;
        } else if c == '"' {
            let start = at;
            at += 1;
            while at < chars.len() && chars[at] != '"' {
                at += if chars[at] == '\\' { 2 } else { 1 };
            }
            if at >= chars.len() {
                return Err(FilterError {
                    message: "this string has no closing `\"`".into(),
                    position: Some(start),
                });
            }
            at += 1;
            let literal: String = chars[start..at].iter().collect();
            let value: String = serde_json::from_str(&literal).map_err(|error| FilterError {
                message: format!("this string is not valid JSON: {error}"),
                position: Some(start),
            })?;
            tokens.push((Token::Str(value), start));
        } else {
            let start = at;
            while at < chars.len()
                && !chars[at].is_whitespace()
                && !matches!(chars[at], '(' | ')' | '[' | ']' | '"')
            {
                at += 1;
            }
            tokens.push((Token::Word(chars[start..at].iter().collect()), start));
        }
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn path(attribute: &str) -> AttrPath {
        AttrPath {
            schema: None,
            attribute: attribute.into(),
            sub_attribute: None,
        }
    }

    fn eq(attribute: &str, value: &str) -> Filter {
        Filter::Compare {
            path: path(attribute),
            op: CompareOp::Eq,
            value: CompValue::String(value.into()),
        }
    }

    #[test]
    fn the_identity_providers_lookups_parse() {
        assert_eq!(
            parse_filter(r#"userName eq "bjensen@example.com""#).unwrap(),
            eq("userName", "bjensen@example.com")
        );
        assert_eq!(
            parse_filter(r#"externalId eq "00ub0oNGTSWTBKOLGLNR""#).unwrap(),
            eq("externalId", "00ub0oNGTSWTBKOLGLNR")
        );
        // Operators and keywords in any case; attribute names kept as given.
        assert_eq!(
            parse_filter(r#"USERNAME Eq "x""#).unwrap(),
            eq("USERNAME", "x")
        );
    }

    #[test]
    fn not_binds_tighter_than_and_and_and_tighter_than_or() {
        let filter = parse_filter(r#"a eq "1" or b eq "2" and not (c pr)"#).unwrap();
        assert_eq!(
            filter,
            Filter::Or(
                Box::new(eq("a", "1")),
                Box::new(Filter::And(
                    Box::new(eq("b", "2")),
                    Box::new(Filter::Not(Box::new(Filter::Present(path("c")))))
                ))
            )
        );
        let grouped = parse_filter(r#"(a eq "1" or b eq "2") and c eq "3""#).unwrap();
        assert!(matches!(grouped, Filter::And(left, _) if matches!(*left, Filter::Or(..))));
    }

    #[test]
    fn every_operator_and_literal_parses() {
        for (word, op) in [
            ("eq", CompareOp::Eq),
            ("ne", CompareOp::Ne),
            ("co", CompareOp::Co),
            ("sw", CompareOp::Sw),
            ("ew", CompareOp::Ew),
            ("gt", CompareOp::Gt),
            ("ge", CompareOp::Ge),
            ("lt", CompareOp::Lt),
            ("le", CompareOp::Le),
        ] {
            let filter = parse_filter(&format!("meta.lastModified {word} 2")).unwrap();
            assert!(
                matches!(filter, Filter::Compare { op: found, .. } if found == op),
                "{word}"
            );
        }
        for (text, value) in [
            ("true", CompValue::Bool(true)),
            ("False", CompValue::Bool(false)),
            ("null", CompValue::Null),
            (
                "-1.5e3",
                CompValue::Number(serde_json::from_str("-1.5e3").unwrap()),
            ),
            (
                r#""a \"quoted\" \u00e9""#,
                CompValue::String("a \"quoted\" é".into()),
            ),
        ] {
            let filter = parse_filter(&format!("x eq {text}")).unwrap();
            assert!(
                matches!(filter, Filter::Compare { value: ref found, .. } if *found == value),
                "{text}"
            );
        }
    }

    #[test]
    fn value_paths_and_qualified_names_parse() {
        let filter = parse_filter(r#"emails[type eq "work" and value co "@example.com"]"#).unwrap();
        let Filter::ValuePath {
            path: outer,
            filter,
        } = filter
        else {
            panic!("a value path");
        };
        assert!(outer.names("emails", None));
        assert!(matches!(*filter, Filter::And(..)));

        let filter = parse_filter(
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "26118915-6090-4610-87e4-49d8ca9f808d""#,
        )
        .unwrap();
        let Filter::Compare { path, .. } = filter else {
            panic!("a comparison");
        };
        assert_eq!(
            path.schema.as_deref(),
            Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User")
        );
        assert!(path.names("MANAGER", Some("Value")));
    }

    #[test]
    fn patch_paths_name_an_attribute_a_filtered_value_and_a_sub_attribute() {
        assert_eq!(
            parse_patch_path("name.givenName").unwrap(),
            PatchPath {
                path: AttrPath {
                    schema: None,
                    attribute: "name".into(),
                    sub_attribute: Some("givenName".into()),
                },
                filter: None,
                sub_attribute: None,
            }
        );
        let patch = parse_patch_path(r#"emails[type eq "work"].value"#).unwrap();
        assert!(patch.path.names("emails", None));
        assert_eq!(patch.filter, Some(eq("type", "work")));
        assert_eq!(patch.sub_attribute.as_deref(), Some("value"));
        let members = parse_patch_path(r#"members[value eq "2819c223"]"#).unwrap();
        assert_eq!(members.filter, Some(eq("value", "2819c223")));
        assert_eq!(members.sub_attribute, None);
    }

    #[test]
    fn malformed_filters_say_what_and_where() {
        for (text, expected, position) in [
            ("userName eq", "expected a value", 11),
            (
                r#"userName equals "x""#,
                "expected an operator after `userName`",
                9,
            ),
            (r#"userName eq "x"#, "no closing", 12),
            (r#"userName eq x"#, "`x` is not a value", 12),
            (r#"(userName eq "x""#, "expected `)`", 16),
            (r#"userName eq "x" extra"#, "unexpected `extra`", 16),
            (r#"emails[type eq "work""#, "`]`", 21),
            (r#"eq "x""#, "expected an operator after `eq`", 3),
            (r#"1bad eq "x""#, "is not an attribute name", 0),
            ("", "expected an attribute name", 0),
        ] {
            let error = parse_filter(text).unwrap_err();
            assert!(
                error.message.contains(expected),
                "{text:?}: {}",
                error.message
            );
            assert_eq!(error.position, Some(position), "{text:?}: {error}");
        }
    }

    #[test]
    fn deep_nesting_and_long_filters_are_refused_not_recursed_into() {
        let deep = format!("{}userName pr{}", "(".repeat(10_000), ")".repeat(10_000));
        let error = parse_filter(&deep).unwrap_err();
        assert!(error.message.contains("nests deeper"), "{error}");
        let not_deep = format!(
            "{}userName pr{}",
            "not (".repeat(MAX_DEPTH),
            ")".repeat(MAX_DEPTH)
        );
        assert!(parse_filter(&not_deep).is_ok());
        let long = vec!["userName pr"; MAX_TERMS + 1].join(" and ");
        assert!(
            parse_filter(&long)
                .unwrap_err()
                .message
                .contains("comparisons")
        );
        let long_enough = vec!["userName pr"; MAX_TERMS].join(" or ");
        assert!(parse_filter(&long_enough).is_ok());
    }

    #[test]
    fn a_colon_outside_a_urn_is_no_schema() {
        assert!(parse_filter(r#"not:a:urn eq "x""#).is_err());
    }

    #[test]
    fn a_decimal_value_is_read_exactly() {
        // Found by the property test: serde_json's fast float parsing read
        // this one a unit in the last place off.
        let filter = parse_filter("x eq -91887792.05717213").unwrap();
        let Filter::Compare {
            value: CompValue::Number(number),
            ..
        } = filter
        else {
            panic!("a comparison");
        };
        assert_eq!(number.as_f64(), Some(-91_887_792.057_172_13));
        assert_eq!(number.to_string(), "-91887792.05717213");
    }
}
