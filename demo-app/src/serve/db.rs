//! The db role: keeps the links in memory and serves them over a small JSON API.
//!
//! `GET /links?limit=N`, `POST /links`, `GET /links/{id}`, `POST /links/{id}/vote`.

use std::sync::{Arc, RwLock};

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use http::StatusCode;
use tracing::field::Empty;

use super::error::{ApiError, Json, Path, Query};
use super::links::{Link, ListQuery, NewLink, Store};
use crate::telemetry::int_attribute;

pub struct DbState {
    store: RwLock<Store>,
}

impl DbState {
    pub fn new(store: Store) -> Arc<Self> {
        Arc::new(Self {
            store: RwLock::new(store),
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Store> {
        self.store.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Store> {
        self.store.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// The db's API routes (health, metrics and fallbacks are added by the caller).
pub fn routes(state: Arc<DbState>) -> Router {
    Router::new()
        .route("/links", get(list).post(add))
        .route("/links/{id}", get(show))
        .route("/links/{id}/vote", post(vote))
        .with_state(state)
}

/// A store operation, named as the span shows it (`{operation} links`).
#[derive(Clone, Copy)]
enum StoreOp {
    Insert,
    Top,
    Get,
    Vote,
}

/// An internal span around one store operation (database semantic conventions), so a trace
/// shows the time spent in the store apart from the HTTP handling around it. Each name is a
/// literal, so nothing is formatted per request; a link id known up front is set at creation
/// (`None` leaves the field out), as a later `record` costs another trip through the
/// subscriber.
fn store_span(operation: StoreOp, link_id: Option<u64>) -> tracing::Span {
    macro_rules! span {
        ($name:literal, $op:literal) => {
            tracing::info_span!(
                $name,
                db.operation.name = $op,
                db.collection.name = "links",
                db.response.returned_rows = Empty,
                link.id = link_id.map(int_attribute),
            )
        };
    }
    match operation {
        StoreOp::Insert => span!("insert links", "insert"),
        StoreOp::Top => span!("top links", "top"),
        StoreOp::Get => span!("get links", "get"),
        StoreOp::Vote => span!("vote links", "vote"),
    }
}

async fn list(
    State(db): State<Arc<DbState>>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<Link>>, ApiError> {
    let limit = q.limit()?;
    // Not entered: nothing inside logs, and the span times the read from creation to drop
    // all the same (entering costs a context switch in and out of the span).
    let span = store_span(StoreOp::Top, None);
    let links = db.read().top(limit);
    span.record("db.response.returned_rows", int_attribute(links.len()));
    Ok(Json(links))
}

async fn add(
    State(db): State<Arc<DbState>>,
    Json(new): Json<NewLink>,
) -> Result<(StatusCode, Json<Link>), ApiError> {
    let new = new.validate()?;
    let span = store_span(StoreOp::Insert, None);
    let link = span.in_scope(|| {
        let link = db.write().add(new);
        tracing::Span::current().record("link.id", int_attribute(link.id));
        tracing::info!(link_id = link.id, url = %link.url, "link added");
        link
    });
    Ok((StatusCode::CREATED, Json(link)))
}

async fn show(State(db): State<Arc<DbState>>, Path(id): Path<u64>) -> Result<Json<Link>, ApiError> {
    let span = store_span(StoreOp::Get, Some(id));
    let found = db.read().get(id).cloned();
    span.record("db.response.returned_rows", i64::from(found.is_some()));
    found.map(Json).ok_or_else(|| unknown(id))
}

async fn vote(State(db): State<Arc<DbState>>, Path(id): Path<u64>) -> Result<Json<Link>, ApiError> {
    let span = store_span(StoreOp::Vote, Some(id));
    span.in_scope(|| {
        let link = db.write().vote(id).ok_or_else(|| unknown(id))?;
        tracing::info!(link_id = id, votes = link.votes, "vote counted");
        Ok(Json(link))
    })
}

fn unknown(id: u64) -> ApiError {
    ApiError::not_found(format!("no link with id {id}"))
}
