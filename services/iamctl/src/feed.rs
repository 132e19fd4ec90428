//! `iamctl feed tail`: the change feed as JSON Lines, one event per line,
//! from a position on and then live: the consumer example. To resume after
//! a stop, pass the last printed position plus one.

use std::io::Write;

use anyhow::Context;
use clap::Args;
use iam_proto::v1::SubscribeRequest;
use iam_proto::v1::event_feed_client::EventFeedClient;
use serde_json::{Value, json};

/// What `feed tail` follows.
#[derive(Debug, Args)]
pub(crate) struct TailArgs {
    /// The change feed's address (IAM_GRPC_LISTEN of the service).
    #[arg(long, env = "IAM_GRPC_URL", default_value = "http://127.0.0.1:50051")]
    url: String,
    /// An API token of a user who may read the audit.
    #[arg(long, env = "IAM_TOKEN", hide_env_values = true)]
    token: String,
    /// The first position to print (the log starts at 1).
    #[arg(long, default_value_t = 1)]
    from: u64,
    /// Only this organization's events (repeatable).
    #[arg(long = "org")]
    organizations: Vec<String>,
    /// Only events of this type (repeatable), e.g. UserCreated.
    #[arg(long = "type")]
    event_types: Vec<String>,
    /// Stop after this many events (default: follow forever).
    #[arg(long)]
    limit: Option<u64>,
}

/// Prints the feed until it ends, `--limit` is reached, or the output closes.
pub(crate) async fn tail(args: TailArgs) -> anyhow::Result<std::process::ExitCode> {
    let url = args.url.replace("grpc://", "http://");
    let mut client = EventFeedClient::connect(url.clone())
        .await
        .with_context(|| format!("cannot reach the change feed at {url}"))?;
    let mut request = tonic::Request::new(SubscribeRequest {
        from_position: args.from,
        organizations: args.organizations,
        event_types: args.event_types,
    });
    let authorization = format!("Token {}", args.token.trim())
        .parse()
        .context("--token is not a valid header value")?;
    request
        .metadata_mut()
        .insert("authorization", authorization);
    let mut stream = client
        .subscribe(request)
        .await
        .map_err(|status| anyhow::anyhow!("the change feed refused: {}", status.message()))?
        .into_inner();
    let stdout = std::io::stdout();
    let mut printed = 0;
    while let Some(event) = stream
        .message()
        .await
        .map_err(|status| anyhow::anyhow!("the change feed ended: {}", status.message()))?
    {
        let line = json!({
            "position": event.position,
            "stream": event.stream,
            "revision": event.revision,
            "time": event.time,
            "type": event.event_type,
            "id": event.event_id,
            "organization": event.organization,
            "metadata": event.metadata,
            "data": event.payload.map(|payload| payload_data(&payload)).unwrap_or(Value::Null),
        });
        let mut out = stdout.lock();
        if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
            break;
        }
        printed += 1;
        if args.limit.is_some_and(|limit| printed >= limit) {
            break;
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// The payload's own fields (without the oneof's tag).
fn payload_data(payload: &iam_proto::v1::event::Payload) -> Value {
    match serde_json::to_value(payload) {
        Ok(Value::Object(tagged)) => tagged
            .into_iter()
            .next()
            .map(|(_, data)| data)
            .unwrap_or(Value::Null),
        _ => Value::Null,
    }
}
