//! Sets the agent's resource attributes on every `ResourceSpans` of an encoded (and already
//! checked, see [`super::otlp_scan`]) `ExportTraceServiceRequest`, working on the wire format:
//! the output's exact size is known before anything is allocated, so the queue's byte bound
//! can be reserved first, and a request costs one output buffer, never a decoded copy.
//!
//! Each `ResourceSpans` gets exactly one `resource` field: the contents of all it had (a
//! repeated singular message is merged by protobuf decoders, so concatenating them is the
//! same message), without the attributes whose keys the agent sets, followed by the agent's
//! attributes. Everything else is copied as it is.

// Input reaches this module: no panics, no overflow (issue 15; tests may unwrap).
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects
    )
)]

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use prost::Message;

use super::wire::{Fields, Value, len_field_size, put_len_header};

const RESOURCE_SPANS: u32 = 1;
const RESOURCE: u32 = 1;
const ATTRIBUTES: u32 = 1;
const KEY: u32 = 1;

/// The attributes to set, encoded once as `Resource.attributes` fields.
#[derive(Debug, Clone, Default)]
pub struct ResourceRewrite {
    keys: Vec<String>,
    encoded: Vec<u8>,
}

impl ResourceRewrite {
    pub fn new(attributes: &[(String, String)]) -> Self {
        let mut encoded = Vec::new();
        for (key, value) in attributes {
            let kv = KeyValue {
                key: key.clone(),
                value: Some(AnyValue {
                    value: Some(any_value::Value::StringValue(value.clone())),
                }),
                ..Default::default()
            };
            put_len_header(&mut encoded, ATTRIBUTES, kv.encoded_len());
            kv.encode_raw(&mut encoded);
        }
        Self {
            keys: attributes.iter().map(|(k, _)| k.clone()).collect(),
            encoded,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The size of the rewritten request.
    pub fn output_len(&self, request: &[u8]) -> usize {
        let mut sink = Sink::Count(0);
        self.rewrite_into(request, &mut sink);
        sink.len()
    }

    /// The rewritten request; `len` is [`Self::output_len`] (the buffer is allocated once).
    pub fn rewrite(&self, request: &[u8], len: usize) -> Vec<u8> {
        let mut sink = Sink::Write(Vec::with_capacity(len));
        self.rewrite_into(request, &mut sink);
        match sink {
            Sink::Write(out) => out,
            Sink::Count(_) => Vec::new(),
        }
    }

    // Fields that do not parse are skipped: the request was checked before, so there are none.
    fn rewrite_into(&self, request: &[u8], sink: &mut Sink) {
        for f in Fields::new(request).flatten() {
            match (f.number, f.value) {
                (RESOURCE_SPANS, Value::Len(rs)) => {
                    let len = self.resource_spans(rs, &mut Sink::Count(0));
                    sink.header(RESOURCE_SPANS, len);
                    self.resource_spans(rs, sink);
                }
                _ => sink.put(f.raw),
            }
        }
    }

    /// Writes one `ResourceSpans`' content; returns its length.
    fn resource_spans(&self, rs: &[u8], sink: &mut Sink) -> usize {
        let start = sink.len();
        let resource_len = self
            .resource(rs, &mut Sink::Count(0))
            .saturating_add(self.encoded.len());
        sink.header(RESOURCE, resource_len);
        self.resource(rs, sink);
        sink.put(&self.encoded);
        for f in Fields::new(rs).flatten() {
            if f.number != RESOURCE {
                sink.put(f.raw);
            }
        }
        sink.len().saturating_sub(start)
    }

    /// Writes the kept content of every `resource` field of a `ResourceSpans`.
    fn resource(&self, rs: &[u8], sink: &mut Sink) -> usize {
        let start = sink.len();
        for f in Fields::new(rs).flatten() {
            let (RESOURCE, Value::Len(resource)) = (f.number, f.value) else {
                continue;
            };
            for attr in Fields::new(resource).flatten() {
                let replaced = match (attr.number, attr.value) {
                    (ATTRIBUTES, Value::Len(kv)) => self.sets(kv),
                    _ => false,
                };
                if !replaced {
                    sink.put(attr.raw);
                }
            }
        }
        sink.len().saturating_sub(start)
    }

    /// True when the agent sets this `KeyValue`'s key.
    fn sets(&self, kv: &[u8]) -> bool {
        Fields::new(kv)
            .flatten()
            .any(|f| match (f.number, f.value) {
                (KEY, Value::Len(key)) => self.keys.iter().any(|k| k.as_bytes() == key),
                _ => false,
            })
    }
}

enum Sink {
    Count(usize),
    Write(Vec<u8>),
}

impl Sink {
    fn len(&self) -> usize {
        match self {
            Self::Count(n) => *n,
            Self::Write(out) => out.len(),
        }
    }

    fn put(&mut self, bytes: &[u8]) {
        match self {
            Self::Count(n) => *n = n.saturating_add(bytes.len()),
            Self::Write(out) => out.extend_from_slice(bytes),
        }
    }

    fn header(&mut self, number: u32, len: usize) {
        match self {
            Self::Count(n) => {
                *n = n.saturating_add(len_field_size(number, len).saturating_sub(len))
            }
            Self::Write(out) => put_len_header(out, number, len),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    fn kv(k: &str, v: &str) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(v.into())),
            }),
            ..Default::default()
        }
    }

    fn resource_spans(resource: Option<Vec<KeyValue>>) -> ResourceSpans {
        ResourceSpans {
            resource: resource.map(|attributes| Resource {
                attributes,
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    trace_id: vec![7; 16],
                    span_id: vec![1; 8],
                    name: "s".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            schema_url: "https://example.com/schema".into(),
        }
    }

    #[test]
    fn replaces_and_adds_attributes_on_every_resource() {
        let request = ExportTraceServiceRequest {
            resource_spans: vec![
                resource_spans(Some(vec![
                    kv("service.name", "a"),
                    kv("k8s.cluster.name", "from-sdk"),
                ])),
                resource_spans(None),
            ],
        }
        .encode_to_vec();
        let rewrite = ResourceRewrite::new(&[
            ("k8s.cluster.name".into(), "lgtm-remote".into()),
            ("env".into(), "poc".into()),
        ]);
        let len = rewrite.output_len(&request);
        let out = rewrite.rewrite(&request, len);
        assert_eq!(out.len(), len);
        let decoded = ExportTraceServiceRequest::decode(out.as_slice()).unwrap();
        let first = decoded.resource_spans[0].resource.as_ref().unwrap();
        assert_eq!(
            first.attributes,
            vec![
                kv("service.name", "a"),
                kv("k8s.cluster.name", "lgtm-remote"),
                kv("env", "poc")
            ]
        );
        let second = decoded.resource_spans[1].resource.as_ref().unwrap();
        assert_eq!(
            second.attributes,
            vec![kv("k8s.cluster.name", "lgtm-remote"), kv("env", "poc")]
        );
        assert_eq!(
            decoded.resource_spans[1].scope_spans,
            resource_spans(None).scope_spans
        );
        assert_eq!(
            decoded.resource_spans[0].schema_url,
            "https://example.com/schema"
        );
    }

    #[test]
    fn merges_repeated_resource_fields_into_one() {
        let part = |attrs: Vec<KeyValue>| {
            let mut rs = Vec::new();
            let resource = Resource {
                attributes: attrs,
                ..Default::default()
            };
            put_len_header(&mut rs, RESOURCE, resource.encoded_len());
            resource.encode_raw(&mut rs);
            rs
        };
        let rs = [part(vec![kv("a", "1")]), part(vec![kv("b", "2")])].concat();
        let mut request = Vec::new();
        put_len_header(&mut request, RESOURCE_SPANS, rs.len());
        request.extend_from_slice(&rs);
        let rewrite = ResourceRewrite::new(&[("b".into(), "x".into())]);
        let out = rewrite.rewrite(&request, rewrite.output_len(&request));
        let decoded = ExportTraceServiceRequest::decode(out.as_slice()).unwrap();
        assert_eq!(
            decoded.resource_spans[0]
                .resource
                .as_ref()
                .unwrap()
                .attributes,
            vec![kv("a", "1"), kv("b", "x")]
        );
    }
}
