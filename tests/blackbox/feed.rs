//! The gRPC change feed: a subscriber started midway while 8 clients write
//! sees every event exactly once, in order, from the log and then live; a
//! tenant's token sees only its organization's events; a subscriber that
//! resumes after a restart from its last position plus one misses nothing;
//! `iamctl feed tail` prints the same events as JSON Lines.

use std::time::{Duration, Instant};

use iam_proto::v1::event_feed_client::EventFeedClient;
use iam_proto::v1::{Event, SubscribeRequest};
use iam_test_databases::Kind;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::support::{TestApp, spawn_app_with, spawn_replicas_with, user_body};

both_backends!(
    a_subscriber_started_midway_sees_every_event_once_in_order,
    a_subscriber_resumes_after_a_restart_without_a_gap,
);

/// The feed's address, from the line the service logs when it listens.
async fn feed_url(app: &TestApp) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(line) = app
            .log()
            .iter()
            .find(|line| line.contains("change feed listening on grpc://"))
        {
            let at = line.find("grpc://").unwrap();
            return format!("http://{}", line[at + "grpc://".len()..].trim());
        }
        assert!(Instant::now() < deadline, "the feed never listened");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A downloaded API token of `user` (its session `session`).
async fn token_of(app: &TestApp, session: &str, user: &str) -> String {
    let token: Value = app
        .create_token(session, user, 30)
        .await
        .json()
        .await
        .unwrap();
    let secret: Value = app
        .download_token(session, user, token["id"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    secret["token"].as_str().unwrap().to_owned()
}

/// Subscribes with `token` from `from`; collects events until one at
/// `until` (or later) arrives, or 60 s pass.
fn subscribe(
    url: String,
    token: String,
    from: u64,
    until: tokio::sync::watch::Receiver<u64>,
) -> JoinHandle<Vec<Event>> {
    tokio::spawn(async move {
        let mut client = EventFeedClient::connect(url)
            .await
            .expect("the feed answers");
        let mut request = tonic::Request::new(SubscribeRequest {
            from_position: from,
            ..SubscribeRequest::default()
        });
        request
            .metadata_mut()
            .insert("authorization", format!("Token {token}").parse().unwrap());
        let mut stream = client
            .subscribe(request)
            .await
            .expect("subscribed")
            .into_inner();
        let mut events = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let last = events.last().map_or(0, |event: &Event| event.position);
            let wanted = *until.borrow();
            if wanted > 0 && last >= wanted {
                return events;
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(remaining.min(Duration::from_millis(500)), stream.message())
                .await
            {
                Ok(Ok(Some(event))) => events.push(event),
                Ok(other) => panic!("the feed ended: {other:?}"),
                Err(_) if Instant::now() >= deadline => return events,
                Err(_) => {}
            }
        }
    })
}

/// The positions of the log's events, with each one's organization.
async fn the_log(app: &TestApp) -> Vec<(u64, String, String)> {
    use sqlx::Row;
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(app.database_url()).await.unwrap();
    sqlx::query(
        "SELECT position, stream, event_type, CAST(metadata AS TEXT) AS metadata, CAST(data AS TEXT) AS data \
         FROM events ORDER BY position",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
    .iter()
    .map(|row| {
        let stream: String = row.get("stream");
        let metadata: Value = serde_json::from_str(&row.get::<String, _>("metadata")).unwrap();
        let data: Value = serde_json::from_str(&row.get::<String, _>("data")).unwrap();
        let organization = stream
            .strip_prefix("org-")
            .map(str::to_owned)
            .or_else(|| metadata["organization"].as_str().map(str::to_owned))
            .or_else(|| data["organization"].as_str().map(str::to_owned))
            .unwrap_or_default();
        (
            row.get::<i64, _>("position") as u64,
            organization,
            row.get::<String, _>("event_type"),
        )
    })
    .collect()
}

async fn a_subscriber_started_midway_sees_every_event_once_in_order(kind: Kind) {
    let app = spawn_app_with(kind, &[("IAM_GRPC_LISTEN", "127.0.0.1:0")]).await;
    let url = feed_url(&app).await;
    let admin = app.admin().await;
    let acme = app.create_tenant(&admin, "Acme", true).await;
    let globex = app.create_tenant(&admin, "Globex", true).await;
    let admin_id = app.users(&admin, None).await["users"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let provider_token = token_of(&app, &admin, &admin_id).await;
    let mut boss = user_body("boss@acme.example", &["Account Administrator"]);
    boss["password"] = json!("the boss's password");
    let boss: Value = app
        .create_user(&admin, Some(&acme), &boss)
        .await
        .json()
        .await
        .unwrap();
    let boss_session = app.login("boss@acme.example", "the boss's password").await;
    let acme_token = token_of(&app, &boss_session, boss["id"].as_str().unwrap()).await;

    // 8 writers, in both tenants, for about two seconds.
    let writers: Vec<JoinHandle<usize>> = (0..8)
        .map(|writer| {
            let client = app.client.clone();
            let users = app.url("/api/iam/Users");
            let admin = admin.clone();
            let tenant = if writer % 2 == 0 {
                acme.clone()
            } else {
                globex.clone()
            };
            tokio::spawn(async move {
                let started = Instant::now();
                let mut created = 0;
                for n in 0..200 {
                    if started.elapsed() > Duration::from_secs(2) {
                        break;
                    }
                    let response = client
                        .post(&users)
                        .bearer_auth(&admin)
                        .header("Accept", crate::support::VCA_JSON)
                        .header("X-VMware-VCloud-Tenant-Context", &tenant)
                        .json(&user_body(
                            &format!("w{writer}-{n}@example.com"),
                            &["End User"],
                        ))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(response.status(), 201);
                    created += 1;
                }
                created
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (until, watch) = tokio::sync::watch::channel(0u64);
    let (until_acme, watch_acme) = tokio::sync::watch::channel(0u64);
    let everything = subscribe(url.clone(), provider_token.clone(), 1, watch);
    let acme_only = subscribe(url.clone(), acme_token, 1, watch_acme);
    let mut created = 0;
    for writer in writers {
        created += writer.await.unwrap();
    }
    let log = the_log(&app).await;
    let head = log.last().unwrap().0;
    // Both streams are open: the metrics count them.
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("iam_feed_subscribers 2"), "{metrics}");
    assert!(metrics.contains("iam_feed_lag_events"), "{metrics}");
    until.send_replace(head);
    let last_of_acme = log
        .iter()
        .filter(|(_, organization, _)| *organization == acme)
        .map(|(position, _, _)| *position)
        .max()
        .unwrap();
    until_acme.send_replace(last_of_acme);
    let everything = everything.await.unwrap();
    let acme_only_events = acme_only.await.unwrap();
    println!("{created} users created by 8 writers; the log holds {head} events");

    // Every event, once, in order: exactly the log.
    let positions: Vec<u64> = everything.iter().map(|event| event.position).collect();
    let expected: Vec<u64> = log.iter().map(|(position, _, _)| *position).collect();
    assert_eq!(positions, expected, "the provider's feed is the whole log");
    for (event, (_, organization, event_type)) in everything.iter().zip(&log) {
        assert!(event.payload.is_some(), "{event:?}");
        assert_eq!(&event.event_type, event_type);
        assert_eq!(&event.organization, organization);
    }
    // The tenant's token: its organization's events, all of them, no other.
    let acme_positions: Vec<u64> = acme_only_events
        .iter()
        .map(|event| event.position)
        .collect();
    let acme_expected: Vec<u64> = log
        .iter()
        .filter(|(_, organization, _)| *organization == acme)
        .map(|(position, _, _)| *position)
        .collect();
    assert!(!acme_positions.is_empty());
    assert_eq!(
        acme_positions, acme_expected,
        "a tenant sees its events, all of them"
    );
    assert!(
        acme_only_events
            .iter()
            .all(|event| event.organization == acme),
        "a tenant's token never sees another tenant's event"
    );

    // The consumer example prints the same events.
    let iamctl = std::path::Path::new(crate::support::IAMD).with_file_name("iamctl");
    let output = std::process::Command::new(iamctl)
        .args([
            "feed",
            "tail",
            "--url",
            &url,
            "--from",
            "1",
            "--limit",
            "25",
            "--type",
            "UserCreated",
        ])
        .env("IAM_TOKEN", &provider_token)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 25);
    assert!(
        lines
            .iter()
            .all(|line| line["type"] == "UserCreated" && line["data"]["userName"].is_string())
    );
    let tailed: Vec<u64> = lines
        .iter()
        .map(|line| line["position"].as_u64().unwrap())
        .collect();
    let created_positions: Vec<u64> = log
        .iter()
        .filter(|(_, _, event_type)| event_type == "UserCreated")
        .map(|(position, _, _)| *position)
        .take(25)
        .collect();
    assert_eq!(tailed, created_positions);
}

async fn a_subscriber_resumes_after_a_restart_without_a_gap(kind: Kind) {
    let app = spawn_app_with(kind, &[("IAM_GRPC_LISTEN", "127.0.0.1:0")]).await;
    let admin = app.admin().await;
    let acme = app.create_tenant(&admin, "Acme", true).await;
    let admin_id = app.users(&admin, None).await["users"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = token_of(&app, &admin, &admin_id).await;
    for n in 0..20 {
        let body = user_body(&format!("before{n}@acme.example"), &["End User"]);
        assert_eq!(
            app.create_user(&admin, Some(&acme), &body).await.status(),
            201
        );
    }
    let url = feed_url(&app).await;
    let head = the_log(&app).await.last().unwrap().0;
    let (_, watch) = tokio::sync::watch::channel(head);
    let first = subscribe(url, token.clone(), 1, watch).await.unwrap();
    let last = first.last().unwrap().position;
    assert_eq!(last, head);

    let app = app.restart_with(&[("IAM_GRPC_LISTEN", "127.0.0.1:0")]);
    let admin = app.admin().await;
    for n in 0..20 {
        let body = user_body(&format!("after{n}@acme.example"), &["End User"]);
        assert_eq!(
            app.create_user(&admin, Some(&acme), &body).await.status(),
            201
        );
    }
    let log = the_log(&app).await;
    let head = log.last().unwrap().0;
    let (_, watch) = tokio::sync::watch::channel(head);
    let url = feed_url(&app).await;
    let resumed = subscribe(url, token, last + 1, watch).await.unwrap();
    let positions: Vec<u64> = first
        .iter()
        .chain(&resumed)
        .map(|event| event.position)
        .collect();
    let expected: Vec<u64> = log.iter().map(|(position, _, _)| *position).collect();
    assert_eq!(
        positions, expected,
        "nothing missed, nothing twice, across the restart"
    );
}

/// Two replicas writing to one PostgreSQL: a subscriber on either sees
/// every event of both, once, in order.
#[tokio::test]
async fn subscribers_on_two_replicas_see_both_replicas_events_once_in_order() {
    let replicas = spawn_replicas_with(2, &[("IAM_GRPC_LISTEN", "127.0.0.1:0")]).await;
    let (a, b) = (&replicas.apps[0], &replicas.apps[1]);
    let on_a = a.admin().await;
    let on_b = b.admin().await;
    let tenant = a.create_tenant(&on_a, "Acme", true).await;
    let admin_id = a.users(&on_a, None).await["users"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = token_of(a, &on_a, &admin_id).await;
    let (until, watch) = tokio::sync::watch::channel(0u64);
    let on_feed_a = subscribe(feed_url(a).await, token.clone(), 1, watch.clone());
    let on_feed_b = subscribe(feed_url(b).await, token, 1, watch);
    let writers: Vec<JoinHandle<()>> = (0..8)
        .map(|writer| {
            let app = if writer % 2 == 0 { a } else { b };
            let (client, users) = (app.client.clone(), app.url("/api/iam/Users"));
            let session = if writer % 2 == 0 {
                on_a.clone()
            } else {
                on_b.clone()
            };
            let tenant = tenant.clone();
            tokio::spawn(async move {
                for n in 0..40 {
                    let response = client
                        .post(&users)
                        .bearer_auth(&session)
                        .header("Accept", crate::support::VCA_JSON)
                        .header("X-VMware-VCloud-Tenant-Context", &tenant)
                        .json(&user_body(
                            &format!("r{writer}-{n}@example.com"),
                            &["End User"],
                        ))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(response.status(), 201);
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    let log = the_log(a).await;
    until.send_replace(log.last().unwrap().0);
    let expected: Vec<u64> = log.iter().map(|(position, _, _)| *position).collect();
    for (name, subscriber) in [("A", on_feed_a), ("B", on_feed_b)] {
        let positions: Vec<u64> = subscriber
            .await
            .unwrap()
            .iter()
            .map(|event| event.position)
            .collect();
        assert_eq!(positions, expected, "the feed of replica {name}");
    }
}

/// A token revoked while its stream is open ends the stream (within the
/// feed's recheck, a few seconds), idle or not.
#[tokio::test]
async fn revoking_the_token_ends_its_open_stream() {
    let app = spawn_app_with(Kind::Sqlite, &[("IAM_GRPC_LISTEN", "127.0.0.1:0")]).await;
    let url = feed_url(&app).await;
    let admin = app.admin().await;
    let admin_id = app.users(&admin, None).await["users"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let token: Value = app
        .create_token(&admin, &admin_id, 30)
        .await
        .json()
        .await
        .unwrap();
    let token_id = token["id"].as_str().unwrap().to_owned();
    let secret: Value = app
        .download_token(&admin, &admin_id, &token_id)
        .await
        .json()
        .await
        .unwrap();
    let secret = secret["token"].as_str().unwrap().to_owned();
    let mut client = EventFeedClient::connect(url).await.unwrap();
    let mut request = tonic::Request::new(SubscribeRequest::default());
    request
        .metadata_mut()
        .insert("authorization", format!("Token {secret}").parse().unwrap());
    let mut stream = client.subscribe(request).await.unwrap().into_inner();
    // Caught up with the log so far.
    let head = the_log(&app).await.last().unwrap().0;
    loop {
        let event = stream.message().await.unwrap().unwrap();
        if event.position >= head {
            break;
        }
    }
    let revoked = app
        .request(
            reqwest::Method::POST,
            &format!("/api/iam/Users/{admin_id}/tokens/{token_id}/revoke"),
            &admin,
            None,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    let ended = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match stream.message().await {
                Ok(Some(_)) => continue,
                other => return other,
            }
        }
    })
    .await
    .expect("the stream ends once the token is revoked");
    let status = ended.expect_err("it ends with a status");
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
}
