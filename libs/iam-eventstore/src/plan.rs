//! Deciding a group of appends, without I/O.
//!
//! The writer reads a [`Snapshot`] of everything a group of appends can
//! touch (current revisions of their streams, already stored events with
//! their ids, holders of their claims) while it holds the log's write lock,
//! then [`plan`]s the group here: each append is accepted or refused in
//! order, seeing the effects of the ones before it. Because the snapshot is
//! read under the lock and nothing else writes meanwhile, the plan's inserts
//! cannot conflict, and a refused append writes nothing.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::event::{Append, AppendResult, Claim, EventData, ExpectedRevision, RecordedEvent};
use crate::inline::InlineBatch;
use crate::{Error, Result};

/// Where an already stored event stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoredEvent {
    pub(crate) stream: String,
    pub(crate) revision: u64,
    pub(crate) position: u64,
}

/// What the log holds that a group of appends can touch.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    /// Position of the last event in the log (0 when empty).
    pub(crate) head: u64,
    /// Current revision of each touched stream that exists.
    pub(crate) revisions: HashMap<String, u64>,
    /// Stored events that a retry probe of the group found (see [`RetryProbe`]).
    pub(crate) stored: HashMap<Uuid, StoredEvent>,
    /// Holder of each claim the group takes or releases, where held.
    pub(crate) holders: HashMap<Claim, String>,
}

impl Snapshot {
    /// A snapshot from the one-row answer both backends give: the head, and
    /// JSON arrays of `[stream, revision|null]`, `[event id, stream,
    /// revision, position]` and `[kind, value, holder]`.
    pub(crate) fn from_json(head: i64, streams: &str, stored: &str, holders: &str) -> Result<Self> {
        let corrupt =
            |what: &str, error: serde_json::Error| Error::Corrupt(format!("{what}: {error}"));
        let streams: Vec<(String, Option<u64>)> =
            serde_json::from_str(streams).map_err(|e| corrupt("stream revisions", e))?;
        let stored: Vec<(Uuid, String, u64, u64)> =
            serde_json::from_str(stored).map_err(|e| corrupt("stored events", e))?;
        let holders: Vec<(String, String, String)> =
            serde_json::from_str(holders).map_err(|e| corrupt("claim holders", e))?;
        Ok(Snapshot {
            head: head as u64,
            revisions: streams
                .into_iter()
                .filter_map(|(stream, revision)| Some((stream, revision?)))
                .collect(),
            stored: stored
                .into_iter()
                .map(|(id, stream, revision, position)| {
                    (
                        id,
                        StoredEvent {
                            stream,
                            revision,
                            position,
                        },
                    )
                })
                .collect(),
            holders: holders
                .into_iter()
                .map(|(kind, value, holder)| (Claim::new(kind, value), holder))
                .collect(),
        })
    }
}

/// Where a retry of one append would stand: its ids at revisions
/// `first..=last` of `stream`. For an exact revision E (and for no stream,
/// E = -1) that is E+1..=E+n, a range of the `(stream, revision)` key; for
/// `Any` and `StreamExists` the whole stream, scanned for the ids.
#[derive(Debug, PartialEq)]
pub(crate) struct RetryProbe<'a> {
    pub(crate) stream: &'a str,
    pub(crate) first: u64,
    pub(crate) last: u64,
    pub(crate) ids: Vec<Uuid>,
}

/// What the snapshot must be read for.
#[derive(Debug, Default)]
pub(crate) struct Keys<'a> {
    pub(crate) streams: Vec<&'a str>,
    pub(crate) probes: Vec<RetryProbe<'a>>,
    pub(crate) claims: Vec<&'a Claim>,
}

impl<'a> Keys<'a> {
    pub(crate) fn of(group: &[&'a Append]) -> Self {
        let mut streams = HashSet::new();
        let mut claims = HashSet::new();
        let mut keys = Keys::default();
        for append in group {
            let stream = append.stream.as_str();
            if streams.insert(stream) {
                keys.streams.push(stream);
            }
            if !append.events.is_empty() {
                let count = append.events.len() as u64;
                let (first, last) = match append.expected {
                    ExpectedRevision::NoStream => (0, count - 1),
                    ExpectedRevision::Exact(revision) => (revision + 1, revision + count),
                    ExpectedRevision::Any | ExpectedRevision::StreamExists => (0, i64::MAX as u64),
                };
                keys.probes.push(RetryProbe {
                    stream,
                    first: first.min(i64::MAX as u64),
                    last: last.min(i64::MAX as u64),
                    ids: append.events.iter().map(|event| event.id).collect(),
                });
            }
            for claim in append.claims.iter().chain(&append.releases) {
                if claims.insert(claim) {
                    keys.claims.push(claim);
                }
            }
        }
        keys
    }
}

/// An event the plan writes.
#[derive(Debug)]
pub(crate) struct NewEvent<'a> {
    /// The index in the group of the append it belongs to.
    pub(crate) append: usize,
    pub(crate) position: u64,
    pub(crate) stream: &'a str,
    pub(crate) revision: u64,
    pub(crate) event: &'a EventData,
}

/// The decision on a group: one outcome per append, and the writes that
/// carry out the accepted ones.
#[derive(Debug, Default)]
pub(crate) struct Plan<'a> {
    pub(crate) outcomes: Vec<Result<AppendResult>>,
    pub(crate) events: Vec<NewEvent<'a>>,
    /// Claims held before the group and by nobody after it: rows to delete.
    pub(crate) released: Vec<Claim>,
    /// Claims with a new holder (unheld before, or held by another stream
    /// before): rows to insert or update. Disjoint from `released`, so both
    /// can be written by one statement.
    pub(crate) taken: Vec<(Claim, String)>,
}

impl<'a> Plan<'a> {
    /// The position of the last event written, if any.
    pub(crate) fn head(&self) -> Option<u64> {
        self.events.last().map(|event| event.position)
    }

    /// What the inline hook is given: the events written, as they will be
    /// recorded at `recorded_at`, and the attachments of their appends.
    pub(crate) fn inline_batch(
        &self,
        group: &[&'a Append],
        recorded_at: DateTime<Utc>,
    ) -> InlineBatch<'a> {
        let mut batch = InlineBatch::default();
        // The append whose events are being pushed: its index, first and last position.
        let mut current: Option<(usize, u64, u64)> = None;
        let attach = |batch: &mut InlineBatch<'a>, span: Option<(usize, u64, u64)>| {
            if let Some((index, first, last)) = span
                && let Some(attachment) = &group[index].attachment
            {
                batch.attachments.push((first, last, attachment));
            }
        };
        for new in &self.events {
            match &mut current {
                Some((index, _, last)) if *index == new.append => *last = new.position,
                _ => {
                    attach(&mut batch, current);
                    current = Some((new.append, new.position, new.position));
                }
            }
            batch.events.push(RecordedEvent {
                id: new.event.id,
                event_type: new.event.event_type.clone(),
                data: new.event.data.clone(),
                metadata: new.event.metadata.clone(),
                stream: new.stream.to_owned(),
                revision: new.revision,
                position: new.position,
                recorded_at,
            });
        }
        attach(&mut batch, current);
        batch
    }
}

/// Decides each append of `group` in order against `snapshot`.
pub(crate) fn plan<'a>(mut snapshot: Snapshot, group: &[&'a Append]) -> Plan<'a> {
    let initial_holders = snapshot.holders.clone();
    let mut plan = Plan::default();
    for (index, append) in group.iter().enumerate() {
        let outcome = decide(&mut snapshot, index, append, &mut plan.events);
        plan.outcomes.push(outcome);
    }
    for claim in initial_holders.keys() {
        if !snapshot.holders.contains_key(claim) {
            plan.released.push(claim.clone());
        }
    }
    for (claim, holder) in snapshot.holders {
        if initial_holders.get(&claim) != Some(&holder) {
            plan.taken.push((claim, holder));
        }
    }
    plan
}

fn decide<'a>(
    snapshot: &mut Snapshot,
    index: usize,
    append: &'a Append,
    events: &mut Vec<NewEvent<'a>>,
) -> Result<AppendResult> {
    validate(append)?;
    let current = snapshot.revisions.get(&append.stream).copied();
    let wrong_version = || Error::WrongExpectedVersion {
        stream: append.stream.clone(),
        expected: append.expected,
        current,
    };

    let stored: Vec<&StoredEvent> = append
        .events
        .iter()
        .filter_map(|event| snapshot.stored.get(&event.id))
        .collect();
    if !stored.is_empty() {
        return if stored.len() == append.events.len() {
            idempotent_result(append, &stored).ok_or_else(wrong_version)
        } else {
            Err(wrong_version())
        };
    }
    if !append.expected.accepts(current) {
        return Err(wrong_version());
    }

    let holders = claim_changes(snapshot, append)?;
    snapshot.holders = holders;

    if append.events.is_empty() {
        return Ok(AppendResult {
            revision: current,
            positions: None,
        });
    }
    let first_revision = current.map_or(0, |revision| revision + 1);
    let first_position = snapshot.head + 1;
    for (offset, event) in (0u64..).zip(&append.events) {
        let new = NewEvent {
            append: index,
            position: first_position + offset,
            stream: &append.stream,
            revision: first_revision + offset,
            event,
        };
        snapshot.stored.insert(
            event.id,
            StoredEvent {
                stream: append.stream.clone(),
                revision: new.revision,
                position: new.position,
            },
        );
        events.push(new);
    }
    let count = append.events.len() as u64;
    let last_revision = first_revision + count - 1;
    snapshot.head = first_position + count - 1;
    snapshot
        .revisions
        .insert(append.stream.clone(), last_revision);
    Ok(AppendResult {
        revision: Some(last_revision),
        positions: Some((first_position, snapshot.head)),
    })
}

fn validate(append: &Append) -> Result<()> {
    if append.stream.is_empty() {
        return Err(Error::InvalidAppend("the stream name is empty".into()));
    }
    let mut ids = HashSet::with_capacity(append.events.len());
    for event in &append.events {
        if !ids.insert(event.id) {
            return Err(Error::InvalidAppend(format!(
                "event id {} appears twice in one append",
                event.id
            )));
        }
        if event.event_type.is_empty() {
            return Err(Error::InvalidAppend(format!(
                "event {} has an empty type",
                event.id
            )));
        }
    }
    Ok(())
}

/// EventStoreDB's idempotency rule: the ids must already stand, in order, at
/// consecutive revisions of this stream, starting right after the expected
/// revision (anywhere for `Any` and `StreamExists`). Returns the original
/// result, or `None` when the stored events do not match that way.
fn idempotent_result(append: &Append, stored: &[&StoredEvent]) -> Option<AppendResult> {
    let first = stored.first()?;
    let last = stored.last()?;
    let consecutive = stored.iter().enumerate().all(|(offset, event)| {
        event.stream == append.stream && event.revision == first.revision + offset as u64
    });
    let starts_right = match append.expected {
        ExpectedRevision::Any | ExpectedRevision::StreamExists => true,
        ExpectedRevision::NoStream => first.revision == 0,
        ExpectedRevision::Exact(expected) => first.revision == expected + 1,
    };
    (consecutive && starts_right).then_some(AppendResult {
        revision: Some(last.revision),
        positions: Some((first.position, last.position)),
    })
}

/// The claim holders after `append`'s releases and claims, or the refusal.
fn claim_changes(snapshot: &Snapshot, append: &Append) -> Result<HashMap<Claim, String>> {
    if append.claims.is_empty() && append.releases.is_empty() {
        return Ok(snapshot.holders.clone());
    }
    let mut holders = snapshot.holders.clone();
    for claim in &append.releases {
        match holders.get(claim) {
            None => {}
            Some(holder) if *holder == append.stream => {
                holders.remove(claim);
            }
            Some(holder) => {
                return Err(Error::ClaimNotOwned {
                    claim: claim.clone(),
                    stream: append.stream.clone(),
                    holder: holder.clone(),
                });
            }
        }
    }
    for claim in &append.claims {
        match holders.get(claim) {
            Some(holder) if *holder != append.stream => {
                return Err(Error::ClaimHeld {
                    claim: claim.clone(),
                    holder: holder.clone(),
                });
            }
            Some(_) => {}
            None => {
                holders.insert(claim.clone(), append.stream.clone());
            }
        }
    }
    Ok(holders)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn event(n: u128) -> EventData {
        EventData::new(Uuid::from_u128(n), "Happened", json!({ "n": n as u64 }))
    }

    fn append(stream: &str, expected: ExpectedRevision, ids: &[u128]) -> Append {
        Append::new(stream, expected, ids.iter().map(|&n| event(n)).collect())
    }

    fn plan_of<'a>(snapshot: Snapshot, group: &'a [Append]) -> Plan<'a> {
        let refs: Vec<&Append> = group.iter().collect();
        plan(snapshot, &refs)
    }

    fn snapshot_with_stream(stream: &str, ids: &[u128]) -> Snapshot {
        let mut snapshot = Snapshot::default();
        for (revision, &id) in ids.iter().enumerate() {
            snapshot.stored.insert(
                Uuid::from_u128(id),
                StoredEvent {
                    stream: stream.into(),
                    revision: revision as u64,
                    position: revision as u64 + 1,
                },
            );
        }
        snapshot.head = ids.len() as u64;
        snapshot
            .revisions
            .insert(stream.into(), ids.len() as u64 - 1);
        snapshot
    }

    #[test]
    fn later_appends_of_a_group_see_the_earlier_ones() {
        let group = [
            append("a", ExpectedRevision::NoStream, &[1, 2]),
            append("a", ExpectedRevision::Exact(1), &[3]),
            append("a", ExpectedRevision::Exact(1), &[4]),
        ];
        let plan = plan_of(Snapshot::default(), &group);
        assert_eq!(
            plan.outcomes[0].as_ref().ok(),
            Some(&AppendResult {
                revision: Some(1),
                positions: Some((1, 2))
            })
        );
        assert_eq!(
            plan.outcomes[1].as_ref().ok(),
            Some(&AppendResult {
                revision: Some(2),
                positions: Some((3, 3))
            })
        );
        assert!(matches!(
            plan.outcomes[2],
            Err(Error::WrongExpectedVersion {
                current: Some(2),
                ..
            })
        ));
        let positions: Vec<u64> = plan.events.iter().map(|e| e.position).collect();
        assert_eq!(positions, [1, 2, 3]);
    }

    #[test]
    fn a_retry_in_the_same_group_is_idempotent() {
        let group = [
            append("a", ExpectedRevision::NoStream, &[1, 2]),
            append("a", ExpectedRevision::NoStream, &[1, 2]),
        ];
        let plan = plan_of(Snapshot::default(), &group);
        assert_eq!(
            plan.outcomes[0].as_ref().ok(),
            plan.outcomes[1].as_ref().ok()
        );
        assert_eq!(plan.events.len(), 2);
    }

    #[test]
    fn a_retry_returns_the_original_positions() {
        let snapshot = snapshot_with_stream("a", &[1, 2, 3]);
        let group = [append("a", ExpectedRevision::Exact(0), &[2, 3])];
        let plan = plan_of(snapshot, &group);
        assert_eq!(
            plan.outcomes[0].as_ref().ok(),
            Some(&AppendResult {
                revision: Some(2),
                positions: Some((2, 3))
            })
        );
        assert!(plan.events.is_empty());
    }

    #[test]
    fn a_partial_match_is_a_wrong_expected_version() {
        let snapshot = snapshot_with_stream("a", &[1, 2]);
        let group = [append("a", ExpectedRevision::Exact(0), &[2, 9])];
        let plan = plan_of(snapshot, &group);
        assert!(matches!(
            plan.outcomes[0],
            Err(Error::WrongExpectedVersion {
                current: Some(1),
                ..
            })
        ));
    }

    #[test]
    fn stored_ids_at_other_revisions_are_a_wrong_expected_version() {
        let snapshot = snapshot_with_stream("a", &[1, 2]);
        let group = [append("a", ExpectedRevision::Exact(1), &[1, 2])];
        let plan = plan_of(snapshot, &group);
        assert!(plan.outcomes[0].is_err());
    }

    #[test]
    fn a_claim_is_refused_while_another_stream_holds_it_and_free_once_released() {
        let mut snapshot = Snapshot::default();
        snapshot
            .holders
            .insert(Claim::new("userName", "jill"), "a".into());
        let group = [
            append("b", ExpectedRevision::NoStream, &[1]).claim(Claim::new("userName", "jill")),
            append("a", ExpectedRevision::Any, &[2]).release(Claim::new("userName", "jill")),
            append("b", ExpectedRevision::NoStream, &[3]).claim(Claim::new("userName", "jill")),
        ];
        let plan = plan_of(snapshot, &group);
        assert!(
            matches!(plan.outcomes[0], Err(Error::ClaimHeld { ref holder, .. }) if holder == "a")
        );
        assert!(plan.outcomes[1].is_ok());
        assert!(plan.outcomes[2].is_ok());
        // Released by `a` and taken by `b` in one group: one changed holder.
        assert!(plan.released.is_empty());
        assert_eq!(
            plan.taken,
            [(Claim::new("userName", "jill"), "b".to_owned())]
        );
        let ids: Vec<Uuid> = plan.events.iter().map(|e| e.event.id).collect();
        assert_eq!(ids, [Uuid::from_u128(2), Uuid::from_u128(3)]);
    }

    #[test]
    fn a_refused_append_leaves_no_claim_behind() {
        let mut snapshot = Snapshot::default();
        snapshot
            .holders
            .insert(Claim::new("userName", "held"), "x".into());
        let group = [append("b", ExpectedRevision::NoStream, &[1])
            .claim(Claim::new("userName", "free"))
            .claim(Claim::new("userName", "held"))];
        let plan = plan_of(snapshot, &group);
        assert!(plan.outcomes[0].is_err());
        assert!(plan.taken.is_empty() && plan.released.is_empty() && plan.events.is_empty());
    }

    #[test]
    fn a_claim_released_and_not_taken_again_is_deleted() {
        let mut snapshot = Snapshot::default();
        snapshot
            .holders
            .insert(Claim::new("userName", "jill"), "a".into());
        let group =
            [append("a", ExpectedRevision::Any, &[1]).release(Claim::new("userName", "jill"))];
        let plan = plan_of(snapshot, &group);
        assert!(plan.outcomes[0].is_ok());
        assert_eq!(plan.released, [Claim::new("userName", "jill")]);
        assert!(plan.taken.is_empty());
    }

    #[test]
    fn releasing_a_claim_of_another_stream_is_refused() {
        let mut snapshot = Snapshot::default();
        snapshot
            .holders
            .insert(Claim::new("userName", "jill"), "a".into());
        let group =
            [append("b", ExpectedRevision::Any, &[1]).release(Claim::new("userName", "jill"))];
        let plan = plan_of(snapshot, &group);
        assert!(matches!(plan.outcomes[0], Err(Error::ClaimNotOwned { .. })));
    }

    #[test]
    fn duplicate_ids_in_one_append_are_invalid() {
        let group = [append("a", ExpectedRevision::Any, &[1, 1])];
        let plan = plan_of(Snapshot::default(), &group);
        assert!(matches!(plan.outcomes[0], Err(Error::InvalidAppend(_))));
    }
}
