//! Liveness, readiness and metrics.

use actix_web::{HttpResponse, get, web};
use serde_json::json;

use crate::startup::AppState;

/// The process is up and serving.
#[utoipa::path(tag = "operations", responses((status = 200, description = "The process serves")))]
#[get("/healthz")]
pub(crate) async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// The store answers and every projector that answers wait for is within
/// `IAM_READY_MAX_LAG` events of the head of the log; 503 otherwise, with
/// the reason. The audit follows the log on its own and its answers say how
/// complete they are: its lag is shown (and in `/metrics`) but does not
/// make the service unready, or a bulk import would take a replica out of
/// its load balancer.
#[utoipa::path(tag = "operations", responses((status = 200, description = "Ready"), (status = 503, description = "The store does not answer, or projections lag")))]
#[get("/readyz")]
pub(crate) async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let status = match state.projection_status().await {
        Ok(status) => status,
        Err(error) => {
            tracing::warn!(error = %error, "readiness: the store does not answer");
            return HttpResponse::ServiceUnavailable().json(
                json!({ "status": "unavailable", "reason": "the event store does not answer" }),
            );
        }
    };
    let lag = gating_lag(&status, |name| state.app.answers_wait_for(name));
    let projectors: Vec<_> = status
        .iter()
        .map(|p| {
            json!({
                "name": p.name,
                "checkpoint": p.checkpoint,
                "lag": p.lag,
                "gatesReadiness": state.app.answers_wait_for(p.name),
            })
        })
        .collect();
    if lag > state.ready_max_lag {
        return HttpResponse::ServiceUnavailable().json(json!({
            "status": "unavailable",
            "reason": format!("projections are {lag} events behind the log (at most {} allowed)", state.ready_max_lag),
            "projectors": projectors,
        }));
    }
    HttpResponse::Ok().json(json!({ "status": "ready", "projectors": projectors }))
}

/// The largest lag of the projectors that `gates` readiness.
fn gating_lag(status: &[iam_projections::ProjectorStatus], gates: impl Fn(&str) -> bool) -> u64 {
    status
        .iter()
        .filter(|projector| gates(projector.name))
        .map(|projector| projector.lag)
        .max()
        .unwrap_or(0)
}

/// Prometheus text exposition.
#[utoipa::path(tag = "operations", responses((status = 200, description = "Prometheus text", content_type = "text/plain")))]
#[get("/metrics")]
pub(crate) async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    if let Ok(status) = state.projection_status().await {
        let mut max_lag = 0;
        for projector in status {
            max_lag = max_lag.max(projector.lag);
            ::metrics::gauge!("iam_projection_lag_events", "projector" => projector.name)
                .set(projector.lag as f64);
        }
        ::metrics::gauge!("iam_projection_max_lag_events").set(max_lag as f64);
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.prometheus.render())
}

#[cfg(test)]
mod tests {
    use iam_projections::ProjectorStatus;

    use super::gating_lag;

    #[test]
    fn an_audit_behind_during_a_bulk_import_leaves_the_service_ready() {
        let status = [
            ProjectorStatus {
                name: "users",
                checkpoint: 120_000,
                lag: 3,
            },
            ProjectorStatus {
                name: "audit",
                checkpoint: 110_000,
                lag: 10_003,
            },
        ];
        assert_eq!(gating_lag(&status, |name| name == "users"), 3);
        assert_eq!(gating_lag(&status, |_| true), 10_003);
        assert_eq!(gating_lag(&[], |_| true), 0);
    }
}
