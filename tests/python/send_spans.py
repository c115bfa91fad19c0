#!/usr/bin/env python3
"""Sends spans with the OpenTelemetry Python SDK, an OTLP client independent of ours.

Used by demo-app's agent tests:
    send_spans.py --protocol grpc --endpoint 127.0.0.1:4317 --spans 50 --run-id abc
    send_spans.py --protocol http --endpoint http://127.0.0.1:4318 --spans 50 --run-id abc --gzip

Prints one JSON line: {"spans": N, "trace_ids": [...], "flushed": true}; exits 1 when the
SDK could not export everything.
"""

import argparse
import json
import sys

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor


def exporter(protocol, endpoint, gzip):
    if protocol == "grpc":
        from grpc import Compression
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        compression = Compression.Gzip if gzip else Compression.NoCompression
        return OTLPSpanExporter(endpoint=endpoint, insecure=True, timeout=10, compression=compression)
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    compression = Compression.Gzip if gzip else Compression.NoCompression
    return OTLPSpanExporter(
        endpoint=endpoint.rstrip("/") + "/v1/traces", timeout=10, compression=compression
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--protocol", choices=["grpc", "http"], required=True)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--spans", type=int, default=10)
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--service", default="python-sender")
    parser.add_argument("--gzip", action="store_true", help="compress requests")
    args = parser.parse_args()

    resource = Resource.create(
        {"service.name": args.service, "k8s.cluster.name": "set-by-the-sdk"}
    )
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(
        BatchSpanProcessor(
            exporter(args.protocol, args.endpoint, args.gzip), max_export_batch_size=64
        )
    )
    tracer = provider.get_tracer("send_spans")
    trace_ids = set()
    # Root spans with one child each, so traces have structure.
    for i in range(0, args.spans, 2):
        with tracer.start_as_current_span("parent", attributes={"run.id": args.run_id, "i": i}) as parent:
            trace_ids.add(format(parent.get_span_context().trace_id, "032x"))
            if i + 1 < args.spans:
                with tracer.start_as_current_span("child", attributes={"run.id": args.run_id, "i": i + 1}):
                    pass
    flushed = provider.force_flush(30_000)
    provider.shutdown()
    print(json.dumps({"spans": args.spans, "trace_ids": sorted(trace_ids), "flushed": flushed}))
    sys.exit(0 if flushed else 1)


if __name__ == "__main__":
    main()
