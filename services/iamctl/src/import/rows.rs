//! Reading an import file: CSV with a header, or JSON Lines of vCloud Air
//! or SCIM 2.0 users (detected per line); `-` is standard input, and gzip
//! is detected from its first bytes. Each row becomes the SCIM 2.0 user the
//! service is sent, checked first against the service's own rules (the
//! domain's), so that a bad row is reported with its line and never sent.

use std::io::{BufRead, BufReader, Read};

use anyhow::{Context, bail};
use iam_domain::{Email, OrgKind, RoleSet, UserName, UserState};
use serde_json::{Value, json};

/// The columns a CSV file may have (`userName` is required).
pub(crate) const COLUMNS: [&str; 7] = [
    "userName",
    "email",
    "givenName",
    "familyName",
    "roles",
    "state",
    "externalId",
];

/// A row ready to send.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    /// Its line in the file (from 1; the header is line 1 of a CSV).
    pub(crate) line: u64,
    /// Its `userName`.
    pub(crate) user_name: String,
    /// Its identity: `externalId` when it has one, else `userName`.
    pub(crate) identity: Identity,
    /// The SCIM 2.0 user to create.
    pub(crate) user: Value,
}

/// How a row is matched with a user of the service.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Identity {
    /// By `externalId` (exact).
    External(String),
    /// By `userName` (ignoring case).
    UserName(String),
}

/// A row the import refuses, with its line, its `userName` (if it has one)
/// and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rejected {
    pub(crate) line: u64,
    pub(crate) user_name: String,
    pub(crate) message: String,
}

/// What a line of the file gave.
pub(crate) type RowResult = Result<Row, Rejected>;

/// Opens `path` (`-`: standard input), decompressing gzip.
pub(crate) fn open(path: &str) -> anyhow::Result<Box<dyn BufRead + Send>> {
    let raw: Box<dyn Read + Send> = if path == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(std::fs::File::open(path).with_context(|| format!("cannot open {path}"))?)
    };
    let mut reader = BufReader::with_capacity(1 << 16, raw);
    let gzip = reader
        .fill_buf()
        .context("cannot read the input")?
        .starts_with(&[0x1f, 0x8b]);
    Ok(if gzip {
        Box::new(BufReader::with_capacity(
            1 << 16,
            flate2::read::MultiGzDecoder::new(reader),
        ))
    } else {
        Box::new(reader)
    })
}

/// How many rows a file holds (lines that are not blank, less a CSV's
/// header), for a progress bar's length; `None` for standard input.
pub(crate) fn count(path: &str) -> Option<u64> {
    if path == "-" {
        return None;
    }
    let mut lines = 0u64;
    let mut json = None;
    for line in open(path).ok()?.lines() {
        let line = line.ok()?;
        if line.trim().is_empty() {
            continue;
        }
        json.get_or_insert_with(|| line.trim_start().starts_with('{'));
        lines += 1;
    }
    Some(if json == Some(true) {
        lines
    } else {
        lines.saturating_sub(1)
    })
}

/// The rows of an input, each checked: JSON Lines when the first
/// non-blank character is `{`, else CSV. An unreadable header (unknown or
/// missing columns) is an error before any row.
pub(crate) fn rows(
    mut input: Box<dyn BufRead + Send>,
    kind: OrgKind,
) -> anyhow::Result<Box<dyn Iterator<Item = RowResult> + Send>> {
    let json = loop {
        let buffer = input.fill_buf().context("cannot read the input")?;
        match buffer.iter().position(|b| !b.is_ascii_whitespace()) {
            Some(at) => break buffer[at] == b'{',
            None if buffer.is_empty() => break false,
            None => {
                let length = buffer.len();
                input.consume(length);
            }
        }
    };
    if json {
        return Ok(Box::new(json_lines(input, kind)));
    }
    csv_rows(input, kind)
}

fn json_lines(input: Box<dyn BufRead + Send>, kind: OrgKind) -> impl Iterator<Item = RowResult> {
    input.lines().enumerate().filter_map(move |(index, line)| {
        let line_number = index as u64 + 1;
        let text = match line {
            Ok(text) => text,
            Err(error) => {
                return Some(Err(Rejected {
                    line: line_number,
                    user_name: String::new(),
                    message: format!("the line cannot be read: {error}"),
                }));
            }
        };
        if text.trim().is_empty() {
            return None;
        }
        Some(json_row(line_number, &text, kind))
    })
}

fn json_row(line: u64, text: &str, kind: OrgKind) -> RowResult {
    let reject = |user_name: &str, message: String| Rejected {
        line,
        user_name: user_name.to_owned(),
        message,
    };
    let value: Value = serde_json::from_str(text)
        .map_err(|error| reject("", format!("the line is not JSON: {error}")))?;
    let text_of =
        |value: &Value, key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
    let user_name = text_of(&value, "userName").unwrap_or_default();
    // A vCloud Air user has `email`, `state` and roles as {"roles": [...]};
    // a SCIM 2.0 user has `emails`, `name` and `active`.
    let fields = if value.get("emails").is_some() || value.get("name").is_some_and(Value::is_object)
    {
        Fields {
            user_name: user_name.clone(),
            email: value["emails"]
                .as_array()
                .and_then(|emails| {
                    emails
                        .iter()
                        .find(|e| e["primary"] == true)
                        .or_else(|| emails.first())
                })
                .and_then(|email| text_of(email, "value")),
            given_name: text_of(&value["name"], "givenName"),
            family_name: text_of(&value["name"], "familyName"),
            roles: value["roles"].as_array().map(|roles| {
                roles
                    .iter()
                    .filter_map(|r| {
                        r.as_str()
                            .map(str::to_owned)
                            .or_else(|| text_of(r, "value"))
                    })
                    .collect()
            }),
            state: match &value["active"] {
                Value::Bool(false) => Some("Inactive".to_owned()),
                Value::String(s) if s.eq_ignore_ascii_case("false") => Some("Inactive".to_owned()),
                _ => None,
            },
            external_id: text_of(&value, "externalId"),
        }
    } else {
        Fields {
            user_name: user_name.clone(),
            email: text_of(&value, "email"),
            given_name: text_of(&value, "givenName"),
            family_name: text_of(&value, "familyName"),
            roles: value["roles"]["roles"]
                .as_array()
                .map(|roles| roles.iter().filter_map(|r| text_of(r, "name")).collect()),
            state: text_of(&value, "state"),
            external_id: text_of(&value, "externalId"),
        }
    };
    fields.check(line, kind)
}

fn csv_rows(
    input: Box<dyn BufRead + Send>,
    kind: OrgKind,
) -> anyhow::Result<Box<dyn Iterator<Item = RowResult> + Send>> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(false)
        .from_reader(input);
    let header: Vec<String> = reader
        .headers()
        .context("cannot read the CSV header")?
        .iter()
        .map(str::to_owned)
        .collect();
    let unknown: Vec<&String> = header
        .iter()
        .filter(|column| !COLUMNS.contains(&column.as_str()))
        .collect();
    if !unknown.is_empty() {
        bail!(
            "unknown column(s) {}: the columns are {}",
            unknown
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", "),
            COLUMNS.join(",")
        );
    }
    if !header.iter().any(|c| c == "userName") {
        bail!("the CSV header has no `userName` column");
    }
    let column = move |record: &csv::StringRecord, name: &str| {
        header
            .iter()
            .position(|c| c == name)
            .and_then(|at| record.get(at))
            .filter(|value| !value.is_empty())
            .map(str::to_owned)
    };
    Ok(Box::new(reader.into_records().map(move |record| {
        let record = record.map_err(|error| Rejected {
            line: error.position().map_or(0, |p| p.line()),
            user_name: String::new(),
            message: format!("the row cannot be read: {error}"),
        })?;
        let line = record.position().map_or(0, |p| p.line());
        let fields = Fields {
            user_name: column(&record, "userName").unwrap_or_default(),
            email: column(&record, "email"),
            given_name: column(&record, "givenName"),
            family_name: column(&record, "familyName"),
            roles: column(&record, "roles").map(|roles| {
                roles
                    .split(';')
                    .map(|r| r.trim().to_owned())
                    .filter(|r| !r.is_empty())
                    .collect()
            }),
            state: column(&record, "state"),
            external_id: column(&record, "externalId"),
        };
        fields.check(line, kind)
    })))
}

/// A row's fields as the file gives them.
struct Fields {
    user_name: String,
    email: Option<String>,
    given_name: Option<String>,
    family_name: Option<String>,
    roles: Option<Vec<String>>,
    state: Option<String>,
    external_id: Option<String>,
}

impl Fields {
    /// Checks the row with the domain's rules and makes its SCIM 2.0 user.
    fn check(self, line: u64, kind: OrgKind) -> RowResult {
        let reject = |message: String| Rejected {
            line,
            user_name: self.user_name.clone(),
            message,
        };
        let sentence = |error: &dyn std::fmt::Display| reject(format!("{error}"));
        let user_name = UserName::parse(&self.user_name).map_err(|e| sentence(&e))?;
        let email_text = self.email.clone().unwrap_or_else(|| self.user_name.clone());
        let email = Email::parse(&email_text).map_err(|e| sentence(&e))?;
        if !user_name.matches(&email) {
            return Err(reject(format!(
                "userName `{}` and email `{email_text}` must be the same address",
                self.user_name
            )));
        }
        let given_name = self
            .given_name
            .clone()
            .ok_or_else(|| reject("givenName is required".to_owned()))?;
        let family_name = self
            .family_name
            .clone()
            .ok_or_else(|| reject("familyName is required".to_owned()))?;
        iam_domain::person_name("givenName", &given_name).map_err(|e| sentence(&e))?;
        iam_domain::person_name("familyName", &family_name).map_err(|e| sentence(&e))?;
        let roles = match (&self.roles, kind) {
            (Some(roles), _) if !roles.is_empty() => roles.clone(),
            (_, OrgKind::Tenant) => vec!["End User".to_owned()],
            (_, OrgKind::Provider) => {
                return Err(reject("a provider user needs a role".to_owned()));
            }
        };
        RoleSet::parse(kind, &roles).map_err(|e| sentence(&e))?;
        let state = match &self.state {
            Some(state) => UserState::parse(state).map_err(|e| sentence(&e))?,
            None => UserState::Active,
        };
        let mut user = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": self.user_name.trim(),
            "name": {"givenName": given_name, "familyName": family_name},
            "emails": [{"value": email_text.trim(), "type": "work", "primary": true}],
            "active": state == UserState::Active,
            "roles": roles.iter().map(|r| json!({"value": r})).collect::<Vec<_>>(),
        });
        if let Some(external_id) = &self.external_id {
            user["externalId"] = json!(external_id);
        }
        Ok(Row {
            line,
            user_name: self.user_name.trim().to_owned(),
            identity: match &self.external_id {
                Some(external_id) => Identity::External(external_id.clone()),
                None => Identity::UserName(self.user_name.trim().to_lowercase()),
            },
            user,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Vec<RowResult> {
        let input: Box<dyn BufRead + Send> =
            Box::new(std::io::Cursor::new(text.as_bytes().to_vec()));
        rows(input, OrgKind::Tenant).unwrap().collect()
    }

    #[test]
    fn csv_rows_are_checked_with_the_services_rules() {
        let rows = read(
            "userName,email,givenName,familyName,roles,state,externalId\n\
             ann@a.example,,Ann,Lee,Network Administrator;Virtual Infrastructure Administrator,,e1\n\
             bob@a.example,other@a.example,Bob,Lee,,,\n\
             cid@a.example,,Cid,Lee,Account Administrator;End User,,\n\
             dee@a.example,,,Lee,,,\n\
             eve@a.example,,Eve,Lee,Wizard,,\n\
             fay@a.example,,Fay,Lee,,Asleep,\n",
        );
        let ann = rows[0].as_ref().unwrap();
        assert_eq!(
            (ann.line, ann.identity.clone()),
            (2, Identity::External("e1".into()))
        );
        assert_eq!(ann.user["roles"].as_array().unwrap().len(), 2);
        let messages: Vec<(u64, String)> = rows[1..]
            .iter()
            .map(|r| {
                let r = r.as_ref().unwrap_err();
                (r.line, r.message.clone())
            })
            .collect();
        assert!(messages[0].1.contains("same address"), "{messages:?}");
        assert!(
            messages[1].1.contains("Account Administrator and End User"),
            "{messages:?}"
        );
        assert!(messages[2].1.contains("givenName"), "{messages:?}");
        assert!(messages[3].1.contains("Wizard"), "{messages:?}");
        assert!(messages[4].1.contains("Asleep"), "{messages:?}");
        assert_eq!(
            messages.iter().map(|m| m.0).collect::<Vec<_>>(),
            [3, 4, 5, 6, 7]
        );
    }

    #[test]
    fn unknown_columns_are_refused_by_name() {
        let input: Box<dyn BufRead + Send> =
            Box::new(std::io::Cursor::new(b"userName,shoeSize\n".to_vec()));
        let error = rows(input, OrgKind::Tenant).err().unwrap().to_string();
        assert!(error.contains("`shoeSize`"), "{error}");
    }

    #[test]
    fn json_lines_of_either_dialect() {
        let rows = read(
            "{\"schemas\":[\"urn:scim:schemas:core:1.0\"],\"userName\":\"a@b.c\",\"email\":\"a@b.c\",\
             \"givenName\":\"A\",\"familyName\":\"B\",\"state\":\"Inactive\",\"roles\":{\"roles\":[{\"name\":\"End User\"}]}}\n\
             \n\
             {\"userName\":\"c@b.c\",\"name\":{\"givenName\":\"C\",\"familyName\":\"D\"},\"emails\":[{\"value\":\"c@b.c\",\"primary\":true}],\"active\":true,\"externalId\":\"x\"}\n\
             not json\n",
        );
        assert_eq!(rows[0].as_ref().unwrap().user["active"], false);
        assert_eq!(rows[1].as_ref().unwrap().line, 3);
        assert_eq!(
            rows[1].as_ref().unwrap().identity,
            Identity::External("x".into())
        );
        assert_eq!(rows[2].as_ref().unwrap_err().line, 4);
    }
}
