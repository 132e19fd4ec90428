//! `Idempotency-Key` on creates (`POST /api/iam/Users`, `POST /api/orgs`,
//! token creation): a retry with the same key and body answers the original
//! result; the same key with another body is 422.
//!
//! Nothing is stored beside the log. The new resource's id is derived from
//! the key (and who sends it, where, for what kind of resource), and its
//! events' ids from the id and a fingerprint of the request, so the log's
//! own idempotency decides, across restarts and replicas: the same request
//! again appends the same event ids (an idempotent retry), another request
//! with the key finds the stream taken. The first event's metadata records
//! the key and the fingerprint, which tells the two apart afterwards.

use iam_eventstore::{Direction, StreamStart};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{App, AppError, Caller, Refusal};

/// The request header (HTTP dialects read it by this name).
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// The longest key accepted.
const MAX_KEY_LENGTH: usize = 255;
/// The namespace of derived ids (a fixed, random UUID of this service).
const NAMESPACE: Uuid = Uuid::from_u128(0x5d1e_7c3a_9b4f_4e2d_8a61_0c7f_3b92_d4e8);

/// How one create names its resource and events.
#[derive(Debug, Clone)]
pub struct Creation {
    /// The new resource's id.
    pub id: Uuid,
    keyed: Option<Keyed>,
}

#[derive(Debug, Clone)]
struct Keyed {
    key: String,
    fingerprint: String,
}

impl Creation {
    /// A create without a key (bootstrap, for one): new ids every time.
    pub fn unkeyed() -> Self {
        Self {
            id: Uuid::now_v7(),
            keyed: None,
        }
    }

    /// A create of a `kind` resource by `caller`, keyed when the request
    /// carries an `Idempotency-Key` (`key`: the header's value; a value that
    /// is not text is passed as an empty string, which is refused). `request` is what identifies the request
    /// (its body, without any password: the fingerprint goes into the log).
    pub fn of(
        key: Option<&str>,
        caller: &Caller,
        kind: &str,
        request: &Value,
    ) -> Result<Self, AppError> {
        let Some(key) = key else {
            return Ok(Self::unkeyed());
        };
        let key = Some(key.trim())
            .filter(|key| {
                !key.is_empty()
                    && key.len() <= MAX_KEY_LENGTH
                    && key.chars().all(|c| c.is_ascii_graphic() || c == ' ')
            })
            .ok_or_else(|| {
                AppError::bad_request(format!(
                    "Idempotency-Key must be 1 to {MAX_KEY_LENGTH} visible ASCII characters."
                ))
            })?;
        let scope = format!("{kind}|{}|{}|{key}", caller.actor.user, caller.effective.id);
        let fingerprint = hex(&Sha256::digest(request.to_string().as_bytes()));
        Ok(Self {
            id: Uuid::new_v5(&NAMESPACE, scope.as_bytes()),
            keyed: Some(Keyed {
                key: key.to_owned(),
                fingerprint,
            }),
        })
    }

    /// The id of the create's `index`th event.
    pub fn event_id(&self, index: usize) -> Uuid {
        match &self.keyed {
            Some(keyed) => Uuid::new_v5(
                &self.id,
                format!("{}|{index}", keyed.fingerprint).as_bytes(),
            ),
            None => Uuid::new_v4(),
        }
    }

    /// What the create's events record of the key, if any.
    pub fn metadata(&self) -> Option<Value> {
        self.keyed
            .as_ref()
            .map(|keyed| json!({ "key": keyed.key, "fingerprint": keyed.fingerprint }))
    }

    /// Whether this keyed create was already made: `true` when `stream`
    /// begins with the same request (answer the original result), 422 when
    /// it begins with another one; `false` for an unkeyed create or a new
    /// stream.
    pub async fn already_made(&self, state: &App, stream: &str) -> Result<bool, AppError> {
        let Some(keyed) = &self.keyed else {
            return Ok(false);
        };
        let first = state
            .store
            .read_stream(stream, Direction::Forwards, StreamStart::Edge, 1)
            .await?;
        let Some(first) = first.first() else {
            return Ok(false);
        };
        let recorded = first
            .metadata
            .pointer("/idempotency/fingerprint")
            .and_then(Value::as_str);
        if recorded == Some(keyed.fingerprint.as_str()) {
            Ok(true)
        } else {
            Err(AppError::refused(
                Refusal::KeyReused,
                format!(
                    "Idempotency-Key `{}` was already used for a different request; send a new key for a new request.",
                    keyed.key
                ),
            ))
        }
    }

    /// Whether a conflict on this create is its own earlier request (then
    /// answer the original result) rather than a real conflict.
    pub async fn explains(
        &self,
        state: &App,
        stream: &str,
        error: &AppError,
    ) -> Result<bool, AppError> {
        if self.keyed.is_none()
            || !matches!(
                error.refusal(),
                Some(Refusal::Conflict | Refusal::Concurrent)
            )
        {
            return Ok(false);
        }
        self.already_made(state, stream).await
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
