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

/// The store answers and every projector is within `IAM_READY_MAX_LAG`
/// events of the head of the log; 503 otherwise, with the reason.
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
    let lag = status
        .iter()
        .map(|projector| projector.lag)
        .max()
        .unwrap_or(0);
    let projectors: Vec<_> = status
        .iter()
        .map(|p| json!({ "name": p.name, "checkpoint": p.checkpoint, "lag": p.lag }))
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
