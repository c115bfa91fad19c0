//! The domain: links with votes, their validation, and the db role's in-memory store.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::error::ApiError;
use crate::telemetry::logs::format_rfc3339;

pub const MAX_TITLE_CHARS: usize = 200;
pub const MAX_URL_BYTES: usize = 2048;
pub const DEFAULT_LIMIT: usize = 20;
pub const MAX_LIMIT: usize = 1000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub id: u64,
    pub title: String,
    pub url: String,
    pub votes: u64,
    /// RFC 3339, UTC.
    pub created: String,
}

/// A link as submitted; [`NewLink::validate`] normalizes it or says what is wrong.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewLink {
    pub title: String,
    pub url: String,
}

impl NewLink {
    pub fn validate(self) -> Result<NewLink, ApiError> {
        let title = self.title.trim();
        if title.is_empty() {
            return Err(field_error("title: must not be empty"));
        }
        if title.chars().count() > MAX_TITLE_CHARS {
            return Err(field_error(format!(
                "title: at most {MAX_TITLE_CHARS} characters"
            )));
        }
        // The length is that of the normalised URL, the one stored and sent on to the db: the
        // raw text can be shorter (percent-encoding, punycode) or longer (dot segments,
        // default ports), and checking it let the app forward what the db then refused. The
        // raw text is bounded by --max-body-bytes before it gets here.
        let parsed = url::Url::parse(self.url.trim())
            .map_err(|e| field_error(format!("url: not a valid URL ({e})")))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(field_error("url: must be an http or https URL with a host"));
        }
        let url = String::from(parsed);
        if url.len() > MAX_URL_BYTES {
            return Err(field_error(format!(
                "url: at most {MAX_URL_BYTES} bytes once normalised (this one is {})",
                url.len()
            )));
        }
        Ok(NewLink {
            title: title.to_owned(),
            url,
        })
    }
}

fn field_error(message: impl Into<String>) -> ApiError {
    ApiError::new(
        http::StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        message,
    )
}

/// `?limit=N` on list endpoints.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub limit: Option<usize>,
}

impl ListQuery {
    pub fn limit(&self) -> Result<usize, ApiError> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            Some(n) => Err(ApiError::new(
                http::StatusCode::BAD_REQUEST,
                "invalid_query",
                format!("limit: {n} is out of range 1..={MAX_LIMIT}"),
            )),
        }
    }
}

/// Links ordered by votes (then newest first), bounded: when full, the oldest link goes, so a
/// long load test cannot grow the db without limit.
#[derive(Debug)]
pub struct Store {
    by_id: BTreeMap<u64, Link>,
    /// (votes, id), both descending, for "top N" without sorting everything.
    ranking: BTreeSet<(Reverse<u64>, Reverse<u64>)>,
    next_id: u64,
    capacity: usize,
}

impl Store {
    pub fn new(capacity: usize) -> Self {
        Self {
            by_id: BTreeMap::new(),
            ranking: BTreeSet::new(),
            next_id: 1,
            capacity: capacity.max(1),
        }
    }

    /// A store with a few links, so a fresh demo shows something.
    pub fn seeded(capacity: usize) -> Self {
        let mut store = Self::new(capacity);
        for (title, url) in [
            (
                "Grafana LGTM: logs, graphs, traces, metrics",
                "https://grafana.com/oss/",
            ),
            (
                "OpenTelemetry specification",
                "https://opentelemetry.io/docs/specs/otel/",
            ),
            (
                "Linkerd multicluster",
                "https://linkerd.io/2/features/multicluster/",
            ),
        ] {
            store.add(NewLink {
                title: title.into(),
                url: url.into(),
            });
        }
        store
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub fn top(&self, limit: usize) -> Vec<Link> {
        self.ranking
            .iter()
            .take(limit)
            .filter_map(|(_, Reverse(id))| self.by_id.get(id).cloned())
            .collect()
    }

    pub fn get(&self, id: u64) -> Option<&Link> {
        self.by_id.get(&id)
    }

    /// Adds an already validated link.
    pub fn add(&mut self, new: NewLink) -> Link {
        if self.by_id.len() >= self.capacity
            && let Some((_, oldest)) = self.by_id.pop_first()
        {
            self.ranking
                .remove(&(Reverse(oldest.votes), Reverse(oldest.id)));
        }
        let id = self.next_id;
        // Saturating: 2^64 links cannot be posted, and a panic is never the answer.
        self.next_id = self.next_id.saturating_add(1);
        let link = Link {
            id,
            title: new.title,
            url: new.url,
            votes: 0,
            created: format_rfc3339(SystemTime::now()),
        };
        self.ranking.insert((Reverse(0), Reverse(id)));
        self.by_id.insert(id, link.clone());
        link
    }

    pub fn vote(&mut self, id: u64) -> Option<Link> {
        let link = self.by_id.get_mut(&id)?;
        self.ranking.remove(&(Reverse(link.votes), Reverse(id)));
        link.votes = link.votes.saturating_add(1);
        self.ranking.insert((Reverse(link.votes), Reverse(id)));
        Some(link.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(title: &str, url: &str) -> NewLink {
        NewLink {
            title: title.into(),
            url: url.into(),
        }
    }

    #[test]
    fn top_orders_by_votes_then_newest() {
        let mut s = Store::new(10);
        let a = s.add(new("a", "http://a.example"));
        let b = s.add(new("b", "http://b.example"));
        let c = s.add(new("c", "http://c.example"));
        s.vote(a.id);
        s.vote(a.id);
        s.vote(b.id);
        let top: Vec<u64> = s.top(10).iter().map(|l| l.id).collect();
        assert_eq!(top, vec![a.id, b.id, c.id]);
        assert_eq!(s.top(1)[0].votes, 2);
        assert!(s.vote(999).is_none());
    }

    #[test]
    fn full_store_evicts_the_oldest() {
        let mut s = Store::new(2);
        let a = s.add(new("a", "http://a.example"));
        s.add(new("b", "http://b.example"));
        s.add(new("c", "http://c.example"));
        assert_eq!(s.len(), 2);
        assert!(s.get(a.id).is_none());
        assert_eq!(s.top(10).len(), 2);
    }

    #[test]
    fn validation_names_the_field() {
        assert!(new("  ok  ", " https://x.example/a ").validate().is_ok());
        let cases = [
            (new(" ", "http://x.example"), "title"),
            (new(&"t".repeat(201), "http://x.example"), "title"),
            (new("t", "ftp://x.example"), "url"),
            (new("t", "not a url"), "url"),
            (new("t", "javascript:alert(1)"), "url"),
            (
                new("t", &format!("http://x.example/{}", "a".repeat(3000))),
                "url",
            ),
        ];
        for (link, field) in cases {
            let err = link.validate().unwrap_err();
            assert_eq!(err.status, http::StatusCode::UNPROCESSABLE_ENTITY);
            assert!(err.message.starts_with(field), "{err}");
        }
    }

    #[test]
    fn url_length_is_that_of_the_normalised_url() {
        // 1,000 'é' are 2,000 bytes as sent and 6,000 once percent-encoded.
        let encoded = new("t", &format!("http://x.example/{}", "é".repeat(1000)));
        let err = encoded.validate().unwrap_err();
        assert!(err.message.contains("normalised"), "{err}");
        // Dot segments make the text long and the URL short.
        let dots = new("t", &format!("http://x.example/{}z", "a/../".repeat(500)));
        assert_eq!(dots.validate().unwrap().url, "http://x.example/z");
        // What validation returns validates again to itself (the db re-checks the app's).
        let once = new("t", "HTTP://X.example:80/a b").validate().unwrap();
        assert_eq!(once.url, "http://x.example/a%20b");
        assert_eq!(once.clone().validate().unwrap().url, once.url);
    }

    #[test]
    fn limit_bounds() {
        assert_eq!(ListQuery { limit: None }.limit().unwrap(), DEFAULT_LIMIT);
        assert_eq!(ListQuery { limit: Some(5) }.limit().unwrap(), 5);
        assert!(ListQuery { limit: Some(0) }.limit().is_err());
        assert!(
            ListQuery {
                limit: Some(MAX_LIMIT + 1)
            }
            .limit()
            .is_err()
        );
    }
}
