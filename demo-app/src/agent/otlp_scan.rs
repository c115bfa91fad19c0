//! Checks an encoded `ExportTraceServiceRequest` in one pass over its wire format, without
//! decoding it into structs: the whole tree is walked (so nothing malformed reaches the
//! upstream and poisons a batch merged with other senders' data), spans are counted, and ids
//! are held to the rules the Collector's pdata applies when Tempo unmarshals (trace ids 16
//! bytes, span ids 8) plus OTLP's own (span trace/span ids present and not all zero).
//!
//! Decoding into prost structs costs up to ~200 bytes of memory per 2 bytes of input (an
//! empty nested message is a struct and a `Vec` slot), so a 4 MB request could take a GB;
//! this walk allocates nothing. Field numbers follow opentelemetry-proto's trace/v1,
//! common/v1 and resource/v1; unknown fields are checked for well-formedness and kept.

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

use super::wire::{Field, Fields, Value, WireError};

/// Deeper nesting is refused (prost's own decoding limit; OTLP needs about 8 levels plus
/// nested attribute values). It also bounds this walk's recursion.
const MAX_DEPTH: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("malformed protobuf in {message}: {error}")]
    Wire {
        message: &'static str,
        error: WireError,
    },
    #[error("{message}.{field} has the wrong wire type")]
    WireType {
        message: &'static str,
        field: &'static str,
    },
    #[error("{message}.{field} is not valid UTF-8")]
    Utf8 {
        message: &'static str,
        field: &'static str,
    },
    #[error("span at index {span}: {field} is {len} bytes; it must be {want}")]
    Id {
        span: usize,
        field: &'static str,
        len: usize,
        want: &'static str,
    },
    #[error("span at index {span}: {field} is all zeros")]
    ZeroId { span: usize, field: &'static str },
    #[error("span at index {span}: {field} is missing")]
    MissingId { span: usize, field: &'static str },
    #[error("nested deeper than {MAX_DEPTH} messages")]
    TooDeep,
}

/// What the walk found in a valid request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scan {
    pub spans: usize,
    pub resource_spans: usize,
}

/// Checks `request` and counts what is in it.
pub fn scan(request: &[u8]) -> Result<Scan, Invalid> {
    let mut walk = Walk::default();
    walk.message(Msg::Request, request, 0)?;
    Ok(walk.found)
}

/// The spans of a request that [`scan`] refused, as far as it parses: what the refusal
/// counts. Only the levels that lead to spans are walked.
pub fn count_spans_leniently(request: &[u8]) -> usize {
    let len_fields = |buf, wanted: &'static [u32]| {
        Fields::new(buf)
            .map_while(Result::ok)
            .filter(move |f| wanted.contains(&f.number))
            .filter_map(|f| match f.value {
                Value::Len(b) => Some(b),
                _ => None,
            })
    };
    len_fields(request, &[1])
        .flat_map(|rs| len_fields(rs, &[2, 1000]))
        .map(|ss| len_fields(ss, &[2]).count())
        .sum()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Msg {
    Request,
    ResourceSpans,
    Resource,
    EntityRef,
    ScopeSpans,
    Scope,
    Span,
    Event,
    Link,
    Status,
    KeyValue,
    AnyValue,
    ArrayValue,
    KeyValueList,
}

/// The id rules: exact length, and for a span's own ids also present and not all zeros.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Id {
    SpanTrace,
    SpanSelf,
    /// A parent span id, or a link's ids: empty or exact, as pdata accepts.
    Optional(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Message(Msg),
    String,
    Bytes,
    Id(Id),
    Varint,
    Fixed64,
    Fixed32,
}

/// The schema: a known field's name and kind; `None` for fields this version does not know.
fn field(msg: Msg, number: u32) -> Option<(&'static str, Kind)> {
    use Kind::*;
    use Msg::*;
    let kind = match (msg, number) {
        (Request, 1) => ("resource_spans", Message(ResourceSpans)),
        (ResourceSpans, 1) => ("resource", Message(Resource)),
        (ResourceSpans, 2) => ("scope_spans", Message(ScopeSpans)),
        // The deprecated `instrumentation_library_spans`: pdata still reads it as scope spans,
        // so it is held to the same rules.
        (ResourceSpans, 1000) => ("instrumentation_library_spans", Message(ScopeSpans)),
        (ResourceSpans | ScopeSpans, 3) => ("schema_url", String),
        (Resource, 1) | (Scope, 3) | (Span, 9) | (Event, 3) | (Link, 4) | (KeyValueList, 1) => {
            ("attributes", Message(KeyValue))
        }
        (Resource, 2) | (Scope, 4) | (Span, 10) | (Event, 4) | (Link, 5) => {
            ("dropped_attributes_count", Varint)
        }
        (Resource, 3) => ("entity_refs", Message(EntityRef)),
        (EntityRef, 1..=4) => ("entity_ref", String),
        (ScopeSpans, 1) => ("scope", Message(Scope)),
        (ScopeSpans, 2) => ("spans", Message(Span)),
        (Scope, 1) | (Span, 5) | (Event, 2) => ("name", String),
        (Scope, 2) => ("version", String),
        (Span, 1) => ("trace_id", Id(self::Id::SpanTrace)),
        (Span, 2) => ("span_id", Id(self::Id::SpanSelf)),
        (Span, 3) | (Link, 3) => ("trace_state", String),
        (Span, 4) => ("parent_span_id", Id(self::Id::Optional(8))),
        (Span, 6) => ("kind", Varint),
        (Span, 7) => ("start_time_unix_nano", Fixed64),
        (Span, 8) => ("end_time_unix_nano", Fixed64),
        (Span, 11) => ("events", Message(Event)),
        (Span, 12) => ("dropped_events_count", Varint),
        (Span, 13) => ("links", Message(Link)),
        (Span, 14) => ("dropped_links_count", Varint),
        (Span, 15) => ("status", Message(Status)),
        (Span, 16) | (Link, 6) => ("flags", Fixed32),
        (Event, 1) => ("time_unix_nano", Fixed64),
        (Link, 1) => ("trace_id", Id(self::Id::Optional(16))),
        (Link, 2) => ("span_id", Id(self::Id::Optional(8))),
        (Status, 2) => ("message", String),
        (Status, 3) => ("code", Varint),
        (KeyValue, 1) => ("key", String),
        (KeyValue, 2) => ("value", Message(AnyValue)),
        (AnyValue, 1) => ("string_value", String),
        (AnyValue, 2) => ("bool_value", Varint),
        (AnyValue, 3) => ("int_value", Varint),
        (AnyValue, 4) => ("double_value", Fixed64),
        (AnyValue, 5) => ("array_value", Message(ArrayValue)),
        (AnyValue, 6) => ("kvlist_value", Message(KeyValueList)),
        (AnyValue, 7) => ("bytes_value", Bytes),
        (ArrayValue, 1) => ("values", Message(AnyValue)),
        _ => return None,
    };
    Some(kind)
}

fn name(msg: Msg) -> &'static str {
    match msg {
        Msg::Request => "ExportTraceServiceRequest",
        Msg::ResourceSpans => "ResourceSpans",
        Msg::Resource => "Resource",
        Msg::EntityRef => "EntityRef",
        Msg::ScopeSpans => "ScopeSpans",
        Msg::Scope => "InstrumentationScope",
        Msg::Span => "Span",
        Msg::Event => "Span.Event",
        Msg::Link => "Span.Link",
        Msg::Status => "Status",
        Msg::KeyValue => "KeyValue",
        Msg::AnyValue => "AnyValue",
        Msg::ArrayValue => "ArrayValue",
        Msg::KeyValueList => "KeyValueList",
    }
}

#[derive(Default)]
struct Walk {
    found: Scan,
    /// Ids seen in the span being walked (a span's ids sit directly in it, never deeper).
    span_ids: (bool, bool),
}

impl Walk {
    fn message(&mut self, msg: Msg, buf: &[u8], depth: usize) -> Result<(), Invalid> {
        if depth >= MAX_DEPTH {
            return Err(Invalid::TooDeep);
        }
        if msg == Msg::Span {
            self.span_ids = (false, false);
        }
        for f in Fields::new(buf) {
            let f = f.map_err(|error| Invalid::Wire {
                message: name(msg),
                error,
            })?;
            if let Some((field_name, kind)) = field(msg, f.number) {
                self.field(msg, field_name, kind, f, depth)?;
            }
        }
        match msg {
            Msg::Span => self.end_span(),
            Msg::ResourceSpans => {
                // Counts are bounded by the request's length; saturating is for the lint.
                self.found.resource_spans = self.found.resource_spans.saturating_add(1);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn field(
        &mut self,
        msg: Msg,
        field_name: &'static str,
        kind: Kind,
        f: Field<'_>,
        depth: usize,
    ) -> Result<(), Invalid> {
        let wrong_type = || Invalid::WireType {
            message: name(msg),
            field: field_name,
        };
        match (kind, f.value) {
            // `message` refuses depths past MAX_DEPTH, so this never saturates.
            (Kind::Message(inner), Value::Len(b)) => {
                self.message(inner, b, depth.saturating_add(1))
            }
            (Kind::String, Value::Len(b)) => {
                std::str::from_utf8(b).map(drop).map_err(|_| Invalid::Utf8 {
                    message: name(msg),
                    field: field_name,
                })
            }
            (Kind::Bytes, Value::Len(_)) => Ok(()),
            (Kind::Id(rule), Value::Len(b)) => self.id(rule, field_name, b),
            (Kind::Varint, Value::Varint(_))
            | (Kind::Fixed64, Value::Fixed64(_))
            | (Kind::Fixed32, Value::Fixed32(_)) => Ok(()),
            _ => Err(wrong_type()),
        }
    }

    fn id(&mut self, rule: Id, field: &'static str, id: &[u8]) -> Result<(), Invalid> {
        let span = self.found.spans;
        let (want_len, want) = match rule {
            Id::SpanTrace => (16, "16"),
            Id::SpanSelf => (8, "8"),
            Id::Optional(16) => (16, "empty or 16"),
            Id::Optional(_) => (8, "empty or 8"),
        };
        let optional = matches!(rule, Id::Optional(_));
        if optional && id.is_empty() {
            return Ok(());
        }
        if id.len() != want_len {
            return Err(Invalid::Id {
                span,
                field,
                len: id.len(),
                want,
            });
        }
        match rule {
            Id::SpanTrace => self.span_ids.0 = true,
            Id::SpanSelf => self.span_ids.1 = true,
            Id::Optional(_) => return Ok(()),
        }
        if id.iter().all(|&b| b == 0) {
            return Err(Invalid::ZeroId { span, field });
        }
        Ok(())
    }

    fn end_span(&mut self) -> Result<(), Invalid> {
        let span = self.found.spans;
        match self.span_ids {
            (false, _) => Err(Invalid::MissingId {
                span,
                field: "trace_id",
            }),
            (_, false) => Err(Invalid::MissingId {
                span,
                field: "span_id",
            }),
            _ => {
                self.found.spans = self.found.spans.saturating_add(1);
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
    use opentelemetry_proto::tonic::trace::v1::span::Link;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use prost::Message;

    fn span(trace_id: Vec<u8>, span_id: Vec<u8>) -> Span {
        Span {
            trace_id,
            span_id,
            name: "s".into(),
            attributes: vec![KeyValue {
                key: "k".into(),
                value: Some(AnyValue {
                    value: Some(any_value::Value::StringValue("v".into())),
                }),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn encode(spans: Vec<Span>) -> Vec<u8> {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
        .encode_to_vec()
    }

    fn good() -> Span {
        span(vec![7; 16], vec![1; 8])
    }

    #[test]
    fn counts_the_spans_of_a_valid_request() {
        let found = scan(&encode(vec![good(), good(), good()])).unwrap();
        assert_eq!(
            found,
            Scan {
                spans: 3,
                resource_spans: 1
            }
        );
        assert_eq!(scan(&[]).unwrap(), Scan::default());
    }

    #[test]
    fn refuses_ids_pdata_or_otlp_would_refuse() {
        let cases = [
            (
                span(vec![7; 3], vec![1; 8]),
                "span at index 1: trace_id is 3 bytes; it must be 16",
            ),
            (
                span(vec![7; 16], vec![1; 100]),
                "span at index 1: span_id is 100 bytes; it must be 8",
            ),
            (
                span(vec![0; 16], vec![1; 8]),
                "span at index 1: trace_id is all zeros",
            ),
            (
                span(vec![7; 16], vec![0; 8]),
                "span at index 1: span_id is all zeros",
            ),
            (
                span(vec![], vec![1; 8]),
                "span at index 1: trace_id is missing",
            ),
            (
                span(vec![7; 16], vec![]),
                "span at index 1: span_id is missing",
            ),
            (
                Span {
                    parent_span_id: vec![1; 9],
                    ..good()
                },
                "span at index 1: parent_span_id is 9 bytes; it must be empty or 8",
            ),
            (
                Span {
                    links: vec![Link {
                        trace_id: vec![1; 15],
                        ..Default::default()
                    }],
                    ..good()
                },
                "span at index 1: trace_id is 15 bytes; it must be empty or 16",
            ),
        ];
        for (bad, want) in cases {
            let err = scan(&encode(vec![good(), bad])).unwrap_err();
            assert_eq!(err.to_string(), want);
        }
        let empty_link = Span {
            links: vec![Link::default()],
            parent_span_id: vec![],
            ..good()
        };
        assert_eq!(scan(&encode(vec![empty_link])).unwrap().spans, 1);
    }

    #[test]
    fn refuses_malformed_nesting_wrong_types_and_bad_utf8() {
        // resource_spans { scope_spans { spans: <truncated> } }
        assert!(matches!(
            scan(&[0x0a, 0x04, 0x12, 0x02, 0x12, 0x05]),
            Err(Invalid::Wire { .. })
        ));
        // resource_spans as a varint.
        assert!(matches!(scan(&[0x08, 1]), Err(Invalid::WireType { .. })));
        let mut bad_name = good();
        bad_name.name = "x".into();
        let mut bytes = encode(vec![bad_name]);
        let at = bytes.iter().position(|&b| b == b'x').unwrap();
        bytes[at] = 0xff;
        assert!(matches!(
            scan(&bytes),
            Err(Invalid::Utf8 { field: "name", .. })
        ));
    }

    fn wrap(number: u32, content: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        super::super::wire::put_len_header(&mut out, number, content.len());
        out.extend_from_slice(content);
        out
    }

    #[test]
    fn deep_nesting_is_refused_without_exhausting_the_stack() {
        // AnyValue { array_value { values: AnyValue { ... } } } nested 10,000 times.
        let mut value = Vec::new();
        for _ in 0..10_000 {
            value = wrap(5, &wrap(1, &value));
        }
        let mut span = good().encode_to_vec();
        span.extend(wrap(9, &wrap(2, &value)));
        let request = wrap(1, &wrap(2, &wrap(2, &span)));
        assert_eq!(scan(&request), Err(Invalid::TooDeep));
    }

    #[test]
    fn the_attack_of_nested_empty_resource_spans_is_counted_cheaply() {
        // `0a 04 12 02 12 00`: a ResourceSpans holding a ScopeSpans holding one empty Span.
        let request = [0x0a, 0x04, 0x12, 0x02, 0x12, 0x00].repeat(1000);
        assert_eq!(
            scan(&request),
            Err(Invalid::MissingId {
                span: 0,
                field: "trace_id"
            })
        );
        assert_eq!(count_spans_leniently(&request), 1000);
        let empty_resources = [0x0a, 0x00].repeat(1000);
        assert_eq!(
            scan(&empty_resources).unwrap(),
            Scan {
                spans: 0,
                resource_spans: 1000
            }
        );
    }
}
