//! The db role: keeps the links in memory and serves them over a small JSON API.
//!
//! `GET /links?limit=N`, `POST /links`, `GET /links/{id}`, `POST /links/{id}/vote`.

use std::sync::{Arc, RwLock};

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use http::StatusCode;

use super::error::{ApiError, Json, Path, Query};
use super::links::{Link, ListQuery, NewLink, Store};

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

async fn list(
    State(db): State<Arc<DbState>>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<Link>>, ApiError> {
    let limit = q.limit()?;
    Ok(Json(db.read().top(limit)))
}

async fn add(
    State(db): State<Arc<DbState>>,
    Json(new): Json<NewLink>,
) -> Result<(StatusCode, Json<Link>), ApiError> {
    let new = new.validate()?;
    let link = db.write().add(new);
    tracing::info!(link_id = link.id, url = %link.url, "link added");
    Ok((StatusCode::CREATED, Json(link)))
}

async fn show(State(db): State<Arc<DbState>>, Path(id): Path<u64>) -> Result<Json<Link>, ApiError> {
    db.read()
        .get(id)
        .cloned()
        .map(Json)
        .ok_or_else(|| unknown(id))
}

async fn vote(State(db): State<Arc<DbState>>, Path(id): Path<u64>) -> Result<Json<Link>, ApiError> {
    let link = db.write().vote(id).ok_or_else(|| unknown(id))?;
    tracing::info!(link_id = id, votes = link.votes, "vote counted");
    Ok(Json(link))
}

fn unknown(id: u64) -> ApiError {
    ApiError::not_found(format!("no link with id {id}"))
}
