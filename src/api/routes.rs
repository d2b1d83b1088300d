//! The handlers. Each one is short: validate, call the blocklist or the
//! engine, shape the JSON.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::oneshot;

use super::auth::Caller;
use super::metrics as m;
use super::{block_json, check_reason, manual_record, parse_block_duration};
use super::{parse_subject, ApiContext, ControlRequest, Subject};
use crate::sink::blocklist::WriteOutcome;
use crate::time::Timestamp;

/// How long a handler waits for the engine task. It answers between two
/// chunks of lines, so this is long only when something is wrong.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(5);

/// Request bodies are a few hundred bytes.
const MAX_BODY: usize = 16 * 1024;

/// Every route; the listener adds the middleware that names the caller.
pub fn router(ctx: ApiContext) -> Router {
    Router::new()
        .route("/v1/blocks", get(list_blocks).post(add_block))
        .route("/v1/blocks/{ip}", get(show_block).delete(remove_block))
        .route("/v1/status", get(status))
        .route("/metrics", get(render_metrics))
        .route("/healthz", get(healthz))
        .fallback(|| async { error_response(StatusCode::NOT_FOUND, "no such route") })
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(ctx)
}

/// `{"error": message}` with `status`.
pub fn error_response(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

fn redis_error(e: impl std::fmt::Display) -> Response {
    tracing::warn!(error = %e, "API call failed on Redis");
    error_response(StatusCode::SERVICE_UNAVAILABLE, &format!("redis: {e}"))
}

async fn list_blocks(State(ctx): State<ApiContext>) -> Response {
    match ctx.blocklist.list(Timestamp::now()).await {
        Ok(blocks) => Json(blocks.iter().map(block_json).collect::<Vec<_>>()).into_response(),
        Err(e) => redis_error(e),
    }
}

async fn show_block(State(ctx): State<ApiContext>, Path(ip): Path<String>) -> Response {
    let subject = match parse_subject(&ip) {
        Ok(s) => s,
        Err(e) => return error_response(StatusCode::BAD_REQUEST, &e),
    };
    match ctx.blocklist.get(&subject.to_string()).await {
        Ok(Some(block)) => Json(block_json(&block)).into_response(),
        Ok(None) => error_response(StatusCode::NOT_FOUND, &format!("no block for {subject}")),
        Err(e) => redis_error(e),
    }
}

/// The body of `POST /v1/blocks`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddBlock {
    pub ip: String,
    pub duration: String,
    #[serde(default)]
    pub reason: Option<String>,
}

async fn add_block(
    State(ctx): State<ApiContext>,
    Extension(caller): Extension<Caller>,
    body: Result<Json<AddBlock>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(body) = match body {
        Ok(b) => b,
        Err(e) => return error_response(e.status(), &e.body_text()),
    };
    let subject = match parse_subject(&body.ip) {
        Ok(s) => s,
        Err(e) => return error_response(StatusCode::UNPROCESSABLE_ENTITY, &e),
    };
    let duration = match parse_block_duration(&body.duration) {
        Ok(d) => d,
        Err(e) => return error_response(StatusCode::UNPROCESSABLE_ENTITY, &e),
    };
    if let Some(Err(e)) = body.reason.as_deref().map(check_reason) {
        return error_response(StatusCode::UNPROCESSABLE_ENTITY, &e);
    }
    let now = Timestamp::now();
    let record = manual_record(&subject, duration, body.reason.as_deref(), &ctx.host, now);
    let outcome = match ctx.blocklist.write(&record, now).await {
        Ok(o) => o,
        Err(e) => return redis_error(e),
    };
    let outcome_name = match outcome {
        WriteOutcome::New => "new",
        WriteOutcome::Extended => "extended",
        WriteOutcome::Unchanged => "unchanged",
        WriteOutcome::Expired => "expired",
    };
    tracing::info!(
        %caller,
        subject = %subject,
        duration = %crate::duration::format(duration),
        reason = %record.reason,
        outcome = outcome_name,
        "API: block added"
    );
    ::metrics::counter!(m::BLOCKS_WRITTEN, "rule" => super::MANUAL_RULE, "outcome" => outcome_name)
        .increment(1);
    // Show what Redis now holds: after `unchanged`, that is the longer
    // block that was already there.
    let stored = match ctx.blocklist.get(&record.ip).await {
        Ok(b) => b.as_ref().map(block_json),
        Err(e) => return redis_error(e),
    };
    let status = if outcome == WriteOutcome::New {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    (
        status,
        Json(json!({ "outcome": outcome_name, "block": stored })),
    )
        .into_response()
}

async fn remove_block(
    State(ctx): State<ApiContext>,
    Extension(caller): Extension<Caller>,
    Path(ip): Path<String>,
) -> Response {
    let subject = match parse_subject(&ip) {
        Ok(s) => s,
        Err(e) => return error_response(StatusCode::BAD_REQUEST, &e),
    };
    // Forget the windows first, then delete the key: a failure arriving
    // in between starts a fresh count. The other order would let it
    // re-block from the old window right after the lift.
    let forgotten = forget(&ctx, &subject).await;
    let removed = match ctx.blocklist.remove(&subject.to_string()).await {
        Ok(r) => r,
        Err(e) => return redis_error(e),
    };
    tracing::info!(%caller, subject = %subject, removed, engine_forgot = forgotten, "API: block lifted");
    if removed {
        ::metrics::counter!(m::BLOCKS_LIFTED).increment(1);
    }
    let body = json!({ "ip": subject.to_string(), "removed": removed, "forgotten": forgotten });
    if removed {
        Json(body).into_response()
    } else {
        let mut body = body;
        body["error"] = format!("no block for {subject}").into();
        (StatusCode::NOT_FOUND, Json(body)).into_response()
    }
}

/// Asks the engine to forget `subject`'s windows; false if it did not
/// answer (the lift still happens: the windows then expire on their own).
async fn forget(ctx: &ApiContext, subject: &Subject) -> bool {
    let (reply, answer) = oneshot::channel();
    let request = ControlRequest::Forget {
        subject: subject.to_string(),
        reply,
    };
    match ask(ctx, request, answer).await {
        Ok(()) => true,
        Err(why) => {
            tracing::warn!(subject = %subject, "the engine did not forget the windows: {why}");
            false
        }
    }
}

/// Sends `request` and waits for its answer, both within
/// [`CONTROL_TIMEOUT`].
async fn ask<T>(
    ctx: &ApiContext,
    request: ControlRequest,
    answer: oneshot::Receiver<T>,
) -> Result<T, &'static str> {
    let exchange = async {
        ctx.control
            .send(request)
            .await
            .map_err(|_| "the engine is not running")?;
        answer.await.map_err(|_| "the engine dropped the request")
    };
    tokio::time::timeout(CONTROL_TIMEOUT, exchange)
        .await
        .map_err(|_| "the engine did not answer in time")?
}

async fn engine_status(ctx: &ApiContext) -> Result<serde_json::Value, &'static str> {
    let (reply, answer) = oneshot::channel();
    ask(ctx, ControlRequest::Status { reply }, answer).await
}

async fn status(State(ctx): State<ApiContext>) -> Response {
    match engine_status(&ctx).await {
        Ok(v) => Json(v).into_response(),
        Err(why) => error_response(StatusCode::SERVICE_UNAVAILABLE, why),
    }
}

async fn healthz(State(ctx): State<ApiContext>) -> Response {
    let text = |status: StatusCode, body: String| {
        (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            body + "\n",
        )
            .into_response()
    };
    match engine_status(&ctx).await {
        Err(why) => text(StatusCode::SERVICE_UNAVAILABLE, format!("down: {why}")),
        Ok(v) => match v.get("health").and_then(|h| h.as_str()) {
            None | Some("ok") => text(StatusCode::OK, "ok".into()),
            Some(reason) => text(StatusCode::SERVICE_UNAVAILABLE, reason.to_owned()),
        },
    }
}

async fn render_metrics(State(ctx): State<ApiContext>) -> Response {
    match &ctx.metrics {
        Some(handle) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            handle.render(),
        )
            .into_response(),
        None => error_response(StatusCode::NOT_FOUND, "metrics are not enabled"),
    }
}
