//! What the load generator sends: a weighted mix of list / post / vote against the app's API,
//! with realistic payloads, and votes only on link ids that were seen to exist.

use std::str::FromStr;
use std::sync::Mutex;

use rand::Rng;
use serde::Serialize;

/// One kind of request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    List,
    Post,
    Vote,
}

impl Operation {
    pub const ALL: [Operation; 3] = [Operation::List, Operation::Post, Operation::Vote];

    pub fn as_str(self) -> &'static str {
        match self {
            Operation::List => "list",
            Operation::Post => "post",
            Operation::Vote => "vote",
        }
    }
}

/// Weights of the operations, e.g. `list=8,post=1,vote=1`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mix {
    weights: [u32; 3],
}

impl Default for Mix {
    fn default() -> Self {
        Self { weights: [8, 1, 1] }
    }
}

impl FromStr for Mix {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let mut weights = [0u32; 3];
        for part in s.split(',').filter(|p| !p.trim().is_empty()) {
            let (name, weight) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?}: use name=weight, e.g. list=8,post=1,vote=1"))?;
            let slot = match name.trim() {
                "list" => 0,
                "post" => 1,
                "vote" => 2,
                other => {
                    return Err(format!(
                        "unknown operation {other:?}: use list, post or vote"
                    ));
                }
            };
            let max = super::limits::MIX_WEIGHT_MAX;
            weights[slot] = weight
                .trim()
                .parse()
                .ok()
                .filter(|w| *w <= max)
                .ok_or_else(|| {
                    format!(
                        "{part:?}: the weight must be a whole number from 0 to {max} \
                         (e.g. list=8,post=1,vote=1)"
                    )
                })?;
        }
        if weights.iter().all(|w| *w == 0) {
            return Err("the mix needs at least one operation with a weight above 0".into());
        }
        Ok(Self { weights })
    }
}

impl Mix {
    pub fn pick(&self, rng: &mut impl Rng) -> Operation {
        // In u64: three weights of at most MIX_WEIGHT_MAX never overflow it (nor would u32::MAX
        // ones), and parsing guarantees one above 0, so the range is never empty.
        let total: u64 = self.weights.iter().copied().map(u64::from).sum();
        let mut x = rng.random_range(0..total.max(1));
        for (op, w) in Operation::ALL.iter().zip(self.weights.map(u64::from)) {
            if x < w {
                return *op;
            }
            x = x.saturating_sub(w);
        }
        Operation::List
    }

    /// Votes need known ids, which come from list and post responses.
    pub fn needs_ids(&self) -> bool {
        self.weights[2] > 0
    }
}

/// Recently seen link ids (bounded), to vote on links that exist.
#[derive(Default)]
pub struct KnownIds {
    ids: Mutex<Vec<u64>>,
}

const KNOWN_IDS_CAP: usize = 1024;

impl KnownIds {
    pub fn remember(&self, new: impl IntoIterator<Item = u64>) {
        let mut ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        for id in new {
            if ids.len() >= KNOWN_IDS_CAP {
                let slot = rand::rng().random_range(0..KNOWN_IDS_CAP);
                ids[slot] = id;
            } else {
                ids.push(id);
            }
        }
    }

    pub fn pick(&self, rng: &mut impl Rng) -> Option<u64> {
        let ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        (!ids.is_empty()).then(|| ids[rng.random_range(0..ids.len())])
    }
}

/// A request ready to send: the route template labels metrics and spans.
#[derive(Debug, Clone)]
pub struct PlannedRequest {
    pub operation: Operation,
    pub method: http::Method,
    pub route: &'static str,
    pub path: String,
    pub body: Option<Vec<u8>>,
}

/// Paths of the app's API (`/api/links`...), or of the db's when the prefix is empty.
pub fn plan(op: Operation, prefix: &str, ids: &KnownIds, rng: &mut impl Rng) -> PlannedRequest {
    match op {
        Operation::Vote => match ids.pick(rng) {
            Some(id) => PlannedRequest {
                operation: op,
                method: http::Method::POST,
                route: "/links/{id}/vote",
                path: format!("{prefix}/links/{id}/vote"),
                body: None,
            },
            // Nothing known yet: list first, which teaches us ids.
            None => plan(Operation::List, prefix, ids, rng),
        },
        Operation::Post => PlannedRequest {
            operation: op,
            method: http::Method::POST,
            route: "/links",
            path: format!("{prefix}/links"),
            body: Some(post_body(rng)),
        },
        Operation::List => PlannedRequest {
            operation: op,
            method: http::Method::GET,
            route: "/links",
            path: format!("{prefix}/links?limit=20"),
            body: None,
        },
    }
}

const WORDS: [&str; 24] = [
    "observability",
    "tracing",
    "metrics",
    "logs",
    "kubernetes",
    "rust",
    "latency",
    "exemplars",
    "tenants",
    "mesh",
    "linkerd",
    "grafana",
    "loki",
    "tempo",
    "mimir",
    "prometheus",
    "otlp",
    "sampling",
    "dashboards",
    "alerts",
    "cardinality",
    "histograms",
    "queues",
    "backpressure",
];

fn post_body(rng: &mut impl Rng) -> Vec<u8> {
    let n = rng.random_range(3..7);
    let words: Vec<&str> = (0..n)
        .map(|_| WORDS[rng.random_range(0..WORDS.len())])
        .collect();
    let mut title = words.join(" ");
    if let Some(first) = title.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    let slug = words.join("-");
    let url = format!(
        "https://blog.example.com/{}/{slug}",
        rng.random_range(2019..2027)
    );
    serde_json::to_vec(&serde_json::json!({"title": title, "url": url}))
        .expect("a JSON object always serializes")
}

/// Ids in a response body: a list of links or one link.
pub fn ids_in(body: &[u8]) -> Vec<u64> {
    #[derive(serde::Deserialize)]
    struct Id {
        id: u64,
    }
    if let Ok(list) = serde_json::from_slice::<Vec<Id>>(body) {
        return list.into_iter().map(|l| l.id).collect();
    }
    serde_json::from_slice::<Id>(body)
        .map(|l| vec![l.id])
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn mix_parses_and_rejects_nonsense() {
        assert_eq!(
            "list=8,post=1,vote=1".parse::<Mix>().unwrap(),
            Mix::default()
        );
        assert!("list=0".parse::<Mix>().is_err());
        assert!(
            "browse=1"
                .parse::<Mix>()
                .unwrap_err()
                .contains("unknown operation")
        );
        assert!("list=x".parse::<Mix>().is_err());
        let huge = "list=4294967295,post=1".parse::<Mix>().unwrap_err();
        assert!(huge.contains("from 0 to 1000000"), "{huge}");
        let heaviest: Mix = "list=1000000,post=1000000,vote=1000000".parse().unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let _ = heaviest.pick(&mut rng);
        assert!(!"list=1".parse::<Mix>().unwrap().needs_ids());
    }

    #[test]
    fn mix_follows_the_weights() {
        let mix: Mix = "list=3,post=1".parse().unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let lists = (0..10_000)
            .filter(|_| mix.pick(&mut rng) == Operation::List)
            .count();
        assert!((7_200..7_800).contains(&lists), "{lists}");
    }

    #[test]
    fn votes_go_to_known_ids_or_fall_back_to_list() {
        let ids = KnownIds::default();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        assert_eq!(
            plan(Operation::Vote, "/api", &ids, &mut rng).operation,
            Operation::List
        );
        ids.remember(ids_in(br#"[{"id":7,"title":"t"},{"id":9}]"#));
        let vote = plan(Operation::Vote, "/api", &ids, &mut rng);
        assert!(vote.path == "/api/links/7/vote" || vote.path == "/api/links/9/vote");
        assert_eq!(ids_in(br#"{"id":11}"#), vec![11]);
    }

    #[test]
    fn post_bodies_are_valid_links() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        for _ in 0..50 {
            let body = post_body(&mut rng);
            let link: crate::serve::links::NewLink = serde_json::from_slice(&body).unwrap();
            assert!(link.validate().is_ok());
        }
    }
}
