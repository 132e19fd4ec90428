//! The proto files are the contract: every event type of the domain has
//! its message, and the contract changes only by addition.

use std::collections::BTreeSet;

use iam_proto::{CONTRACT, payload};

#[test]
fn every_event_type_of_the_domain_has_its_message() {
    for event_type in iam_domain::EVENT_TYPES {
        assert!(
            payload(event_type, &serde_json::json!({})).is_ok(),
            "{event_type} has no message in proto/iam/events/v1"
        );
        assert!(
            CONTRACT.contains(&format!("Event.{} =", snake_case(event_type))),
            "{event_type} is not in Event's payload"
        );
    }
}

/// What consumers compiled against (`proto/iam/events/v1/contract.txt`)
/// is all still there, unchanged: fields keep their number, type and
/// label, methods their shape. New lines are fine; to release them, copy
/// the new summary over the committed one (the failure message says how).
#[test]
fn the_contract_changes_only_by_addition() {
    let committed = include_str!("../../../proto/iam/events/v1/contract.txt");
    let current: BTreeSet<&str> = CONTRACT.lines().collect();
    let missing: Vec<&str> = committed
        .lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter(|line| !current.contains(line))
        .collect();
    assert!(
        missing.is_empty(),
        "the contract lost or changed what consumers rely on:\n{}",
        missing.join("\n")
    );
    let added: Vec<&&str> = current
        .iter()
        .filter(|line| !committed.lines().any(|c| c == **line))
        .collect();
    assert!(
        added.is_empty(),
        "the contract grew; record it by replacing proto/iam/events/v1/contract.txt's lines with:\n{CONTRACT}"
    );
}

fn snake_case(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.extend(c.to_lowercase());
    }
    out
}
