//! The gRPC change feed (`proto/iam/events/v1`, `EventFeed.Subscribe`):
//! the log from a position on, then live, in position order, with no gap
//! or duplicate at the hand-over (the store's subscription reads by
//! position, and positions are gapless in commit order).
//!
//! Callers authenticate with an API token (`authorization: Token <secret>`
//! in the metadata) of a user who may read the audit. A tenant's token
//! receives its organization's events; a provider's token the provider's
//! and its tenants'. A slow consumer holds the reader back: events pass
//! through a bounded channel, so nothing piles up in memory.

use std::sync::Arc;

use iam_domain::OrgKind;
use iam_proto::v1::event_feed_server::{EventFeed, EventFeedServer};
use iam_proto::v1::{Event, SubscribeRequest};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

/// Events waiting for a slow consumer, at most.
const BUFFERED: usize = 256;
/// Events read from the log at once, at most.
const READ: usize = 256;
/// How often an open stream checks that its token still authenticates.
const RECHECK: std::time::Duration = std::time::Duration::from_secs(5);

/// The `EventFeed` service over the application.
#[derive(Debug, Clone)]
pub struct Feed {
    app: Arc<iam_app::App>,
}

impl Feed {
    /// The service, ready for a tonic server.
    pub fn server(app: Arc<iam_app::App>) -> EventFeedServer<Feed> {
        EventFeedServer::new(Feed { app })
    }
}

/// A refusal as a gRPC status.
fn status_of(error: iam_app::AppError) -> Status {
    use iam_app::Refusal;
    match error.refusal() {
        Some(Refusal::Unauthenticated) => Status::unauthenticated(error.to_string()),
        Some(Refusal::Forbidden) => Status::permission_denied(error.to_string()),
        Some(Refusal::Busy) => Status::unavailable(error.to_string()),
        Some(_) => Status::invalid_argument(error.to_string()),
        None => {
            tracing::error!(error = %error, "change feed: authentication failed");
            Status::internal("The service could not authenticate the request; it has been logged.")
        }
    }
}

/// Whether the subscription's token still authenticates (not revoked or
/// expired, its user active).
async fn still_authorized(app: &iam_app::App, authorization: Option<&str>) -> Result<(), Status> {
    iam_app::authentication::authenticate(app, authorization, None)
        .await
        .map(|_| ())
        .map_err(status_of)
}

#[tonic::async_trait]
impl EventFeed for Feed {
    type SubscribeStream = ReceiverStream<Result<Event, Status>>;

    async fn subscribe(
        &self,
        request: Request<SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let authorization = request
            .metadata()
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let is_token = authorization.as_deref().is_some_and(|value| {
            value
                .trim()
                .split_once(' ')
                .is_some_and(|(scheme, _)| scheme.eq_ignore_ascii_case("token"))
        });
        if !is_token {
            return Err(Status::unauthenticated(
                "Send the metadata authorization: Token <API token secret>.",
            ));
        }
        let caller =
            iam_app::authentication::authenticate(&self.app, authorization.as_deref(), None)
                .await
                .map_err(status_of)?;
        iam_domain::policy::may_audit(&caller.actor, &caller.effective)
            .map_err(|denied| Status::permission_denied(denied.0))?;
        let request = request.into_inner();
        // A provider's token sees the whole store (one provider per store);
        // a tenant's only its organization.
        let scope = match caller.effective.kind {
            OrgKind::Provider => None,
            OrgKind::Tenant => Some(caller.effective.id.to_string()),
        };
        let organizations = request.organizations;
        let event_types = request.event_types;
        let from = request.from_position.max(1);
        tracing::info!(from, scope = ?scope, "change feed subscriber");
        metrics::gauge!("iam_feed_subscribers").increment(1.0);
        let (sender, receiver) = mpsc::channel(BUFFERED);
        let app = Arc::clone(&self.app);
        tokio::spawn(async move {
            let mut subscription = app.store.subscribe_all(from);
            let mut checked = tokio::time::Instant::now();
            'follow: loop {
                // Reading is cancel-safe: a wait cut short loses nothing.
                let read = tokio::time::timeout(RECHECK, subscription.next_batch(READ)).await;
                // A token revoked or a user deactivated while the stream is
                // open ends it within a recheck, idle or not (a wait that
                // timed out has always waited that long).
                if checked.elapsed() >= RECHECK {
                    checked = tokio::time::Instant::now();
                    if let Err(status) = still_authorized(&app, authorization.as_deref()).await {
                        let _ = sender.send(Err(status)).await;
                        break;
                    }
                }
                let batch = match read {
                    Err(_) => continue,
                    Ok(Ok(batch)) => batch,
                    Ok(Err(error)) => {
                        tracing::warn!(error = %error, "change feed: cannot read the log");
                        let _ = sender
                            .send(Err(Status::unavailable("The event log cannot be read; subscribe again from your last position plus one.")))
                            .await;
                        break;
                    }
                };
                if let (Ok(head), Some(last)) = (app.store.head_position().await, batch.last()) {
                    metrics::gauge!("iam_feed_lag_events")
                        .set(head.saturating_sub(last.position) as f64);
                }
                for event in batch {
                    let organization = iam_proto::organization_of(&event);
                    let in_scope = match &scope {
                        None => true,
                        Some(scope) => organization.as_deref() == Some(scope.as_str()),
                    };
                    let wanted = (organizations.is_empty()
                        || organization
                            .as_ref()
                            .is_some_and(|org| organizations.contains(org)))
                        && (event_types.is_empty() || event_types.contains(&event.event_type));
                    if !in_scope || !wanted {
                        continue;
                    }
                    let message = match iam_proto::to_feed_event(&event) {
                        Ok(message) => message,
                        Err(error) => {
                            // Never a silent gap: the subscriber hears why it stops.
                            tracing::error!(error = %error, "change feed: an event has no message");
                            let _ = sender.send(Err(Status::internal(error.to_string()))).await;
                            break 'follow;
                        }
                    };
                    // Waits while the consumer is slow; ends when it is gone.
                    if sender.send(Ok(message)).await.is_err() {
                        break 'follow;
                    }
                }
            }
            metrics::gauge!("iam_feed_subscribers").decrement(1.0);
        });
        Ok(Response::new(ReceiverStream::new(receiver)))
    }
}
