//! Traces end to end: an incoming `traceparent` is continued; a create has
//! spans for the request, the command, the append (with stream and
//! position) and the commit that projects it, each the child of the one
//! before, received by an in-process OTLP receiver; span attributes carry
//! the route, the organization and the outcome, never a body or a secret.
//! JSON logs carry the request id and the trace id on the request's lines.

use std::collections::HashMap;
use std::time::Duration;

use iam_test_databases::Kind;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use serde_json::{Value, json};

use crate::otlp::Receiver;
use crate::support::{VCA_JSON, spawn_app_with, user_body};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_SPAN: &str = "00f067aa0ba902b7";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn attributes(span: &Span) -> HashMap<String, String> {
    span.attributes
        .iter()
        .map(|attribute| {
            let value = match attribute.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(AnyValue::StringValue(text)) => text.clone(),
                Some(AnyValue::IntValue(n)) => n.to_string(),
                Some(AnyValue::BoolValue(b)) => b.to_string(),
                Some(AnyValue::DoubleValue(x)) => x.to_string(),
                other => format!("{other:?}"),
            };
            (attribute.key.clone(), value)
        })
        .collect()
}

#[tokio::test]
async fn a_create_is_traced_from_the_callers_span_to_the_projection() {
    let receiver = Receiver::start().await;
    let app = spawn_app_with(
        Kind::Sqlite,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint.as_str()),
            ("IAM_LOG_FORMAT", "json"),
            ("RUST_LOG", "debug,h2=info,hyper=info,tonic=info,tower=info"),
        ],
    )
    .await;
    let admin = app.admin().await;
    let tenant = app.create_tenant(&admin, "Acme", true).await;
    let mut body = user_body("traced@acme.example", &["End User"]);
    body["password"] = json!("a traced password");
    let response = app
        .client
        .post(app.url("/api/iam/Users"))
        .bearer_auth(&admin)
        .header("Accept", VCA_JSON)
        .header("X-VMware-VCloud-Tenant-Context", &tenant)
        .header("traceparent", format!("00-{TRACE_ID}-{PARENT_SPAN}-01"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    app.terminate();
    assert!(app.exit_within(Duration::from_secs(30)).await.is_some());

    let spans: Vec<Span> = receiver
        .spans()
        .into_iter()
        .filter(|span| hex(&span.trace_id) == TRACE_ID)
        .collect();
    let by_id: HashMap<String, &Span> = spans
        .iter()
        .map(|span| (hex(&span.span_id), span))
        .collect();
    let named = |name: &str| {
        spans
            .iter()
            .find(|span| span.name == name)
            .unwrap_or_else(|| {
                panic!(
                    "no `{name}` span in the trace: {:?}",
                    spans.iter().map(|s| &s.name).collect::<Vec<_>>()
                )
            })
    };
    let root = spans
        .iter()
        .find(|span| attributes(span).contains_key("http.route"))
        .expect("the request's span continues the caller's trace");
    assert_eq!(
        hex(&root.parent_span_id),
        PARENT_SPAN,
        "its parent is the caller's span"
    );
    let root_attributes = attributes(root);
    assert_eq!(root_attributes["http.route"], "/api/iam/Users");
    assert_eq!(root_attributes["http.status_code"], "201");
    assert_eq!(root_attributes["request_id"], request_id);

    let ancestors = |span: &Span| {
        let mut chain = Vec::new();
        let mut parent = hex(&span.parent_span_id);
        while let Some(up) = by_id.get(&parent) {
            chain.push(up.name.clone());
            parent = hex(&up.parent_span_id);
        }
        chain
    };
    let command = named("command");
    assert!(
        ancestors(command).contains(&root.name),
        "{:?}",
        ancestors(command)
    );
    let append = named("append");
    let append_attributes = attributes(append);
    assert!(
        append_attributes["stream"].starts_with("user-"),
        "{append_attributes:?}"
    );
    assert!(append_attributes["position"].parse::<u64>().unwrap() > 0);
    assert!(
        ancestors(append).contains(&"command".to_owned()),
        "{:?}",
        ancestors(append)
    );
    let projection = named("commit_and_project");
    assert_eq!(hex(&projection.parent_span_id), hex(&append.span_id));
    assert_eq!(
        attributes(projection)["last_position"],
        append_attributes["position"],
        "the projection of that position"
    );
    // The organization the request worked on is on the trace.
    assert!(
        spans
            .iter()
            .any(|span| attributes(span).get("organization") == Some(&tenant)),
        "the effective organization"
    );
    // Never a body or a secret.
    let everything = format!("{spans:?}");
    assert!(!everything.contains("a traced password"));
    assert!(!everything.contains(&admin));

    // JSON logs: the request's lines carry its ids.
    let lines: Vec<Value> = app
        .log()
        .iter()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    assert!(!lines.is_empty(), "the log is JSON");
    let of_request: Vec<&Value> = lines
        .iter()
        .filter(|line| line.to_string().contains(&request_id))
        .collect();
    assert!(!of_request.is_empty(), "the request logged something");
    for line in of_request {
        let root = &line["spans"][0];
        assert_eq!(root["request_id"], request_id.as_str(), "{line}");
        assert_eq!(root["trace_id"], TRACE_ID, "{line}");
    }
}
