//! The app role: the user-facing front. A JSON API under `/api` and a small HTML page on `/`
//! with forms, all backed by the db role through [`DbClient`].

use std::fmt::Write as _;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::{Html, Redirect};
use axum::routing::{get, post};
use http::StatusCode;

use super::db_client::DbClient;
use super::error::{ApiError, Form, Json, Path, Query};
use super::links::{Link, ListQuery, NewLink};
use crate::telemetry::int_attribute;

/// The app's routes (health, metrics and fallbacks are added by the caller).
pub fn routes(db: Arc<DbClient>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/post", post(post_form))
        .route("/vote/{id}", post(vote_form))
        .route("/api/links", get(list).post(add))
        .route("/api/links/{id}/vote", post(vote))
        .with_state(db)
}

async fn list(
    State(db): State<Arc<DbClient>>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<Link>>, ApiError> {
    Ok(Json(db.list(q.limit()?).await?))
}

async fn add(
    State(db): State<Arc<DbClient>>,
    Json(new): Json<NewLink>,
) -> Result<(StatusCode, Json<Link>), ApiError> {
    // Validated here too, so a bad request costs no call to the db.
    let link = db.add(&new.validate()?).await?;
    tracing::info!(link_id = link.id, "link posted");
    Ok((StatusCode::CREATED, Json(link)))
}

async fn vote(
    State(db): State<Arc<DbClient>>,
    Path(id): Path<u64>,
) -> Result<Json<Link>, ApiError> {
    Ok(Json(db.vote(id).await?))
}

async fn post_form(
    State(db): State<Arc<DbClient>>,
    Form(new): Form<NewLink>,
) -> Result<Redirect, ApiError> {
    db.add(&new.validate()?).await?;
    Ok(Redirect::to("/"))
}

async fn vote_form(
    State(db): State<Arc<DbClient>>,
    Path(id): Path<u64>,
) -> Result<Redirect, ApiError> {
    db.vote(id).await?;
    Ok(Redirect::to("/"))
}

async fn page(State(db): State<Arc<DbClient>>) -> Result<Html<String>, ApiError> {
    let links = db.list(20).await?;
    let span = tracing::info_span!("render page", page.links = int_attribute(links.len()));
    Ok(Html(span.in_scope(|| render_page(&links))))
}

fn render_page(links: &[Link]) -> String {
    let mut html = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>LGTM demo links</title>\
         <style>body{font-family:sans-serif;max-width:48rem;margin:2rem auto}li{margin:.4rem 0}\
         form.vote{display:inline}</style></head><body><h1>Links</h1><ol>",
    );
    for link in links {
        let _ = write!(
            html,
            "<li><form class=\"vote\" method=\"post\" action=\"/vote/{id}\">\
             <button>▲</button></form> {votes} <a href=\"{url}\">{title}</a></li>",
            id = link.id,
            votes = link.votes,
            url = escape(&link.url),
            title = escape(&link.title),
        );
    }
    html.push_str(
        "</ol><h2>Post a link</h2><form method=\"post\" action=\"/post\">\
         <input name=\"title\" placeholder=\"title\" required> \
         <input name=\"url\" placeholder=\"https://\" required> <button>Post</button>\
         </form></body></html>",
    );
    html
}

/// Escapes text for HTML content and double-quoted attributes.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_escapes_user_text() {
        let html = render_page(&[Link {
            id: 1,
            title: "<script>alert('x')</script>".into(),
            url: "https://x.example/?a=\"b\"".into(),
            votes: 3,
            created: "2026-11-27T00:00:00.000000Z".into(),
        }]);
        assert!(!html.contains("<script>alert"));
        assert!(html.contains("&lt;script&gt;"));
        assert!(html.contains("href=\"https://x.example/?a=&quot;b&quot;\""));
    }
}
