#!/usr/bin/env python3
"""Regenerates manifests/rendered/record.json: what `helm template` renders for every release of the
plan, reduced to the workloads and their container resources, plus the sha256 of every input file.

Dev-time only (CI never runs helm; it reads the committed record, see deployer/tests/rendered.rs).
Run it after changing anything under manifests/ or a chart pin, from the repository root:

    python3 manifests/rendered/render.py [--charts DIR] [--helm PATH]

The releases, their values files and their --set / --set-file arguments are taken from
`deployer all --dry-run` (the very commands a deploy runs), with throwaway certificates from
`deployer certs` in a temporary state folder. Each chart is `<DIR>/<chart>` when --charts names a
folder holding it (unpacked chart sources at the pinned version), else `helm pull`ed from the
pinned repository. Needs helm, cargo and PyYAML (`python3 -m pip install pyyaml`).
"""

import argparse
import datetime
import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
RECORD = os.path.join(ROOT, "manifests", "rendered", "record.json")
# Kinds whose pods hold requests while the stack runs, and the path to their pod spec.
POD_SPEC = {
    "Deployment": ["spec", "template", "spec"],
    "StatefulSet": ["spec", "template", "spec"],
    "DaemonSet": ["spec", "template", "spec"],
    "Job": ["spec", "template", "spec"],
    "CronJob": ["spec", "jobTemplate", "spec", "template", "spec"],
    "Pod": ["spec"],
}


class PlainLoader(yaml.SafeLoader):
    """SafeLoader without YAML 1.1's `=` value tag: CRD schemas list `=` as an enum value."""


PlainLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:value"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, cwd=ROOT, **kw).stdout


def deployer(*args):
    return run(["cargo", "run", "-q", "-p", "deployer", "--", *args])


def sha256(path):
    with open(os.path.join(ROOT, path), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def inputs():
    """Every file the rendered record depends on (relative paths, sorted)."""
    files = ["manifests/charts.yaml"]
    for cluster in ("central", "remote"):
        folder = os.path.join(ROOT, "manifests", cluster)
        files += [f"manifests/{cluster}/{f}" for f in sorted(os.listdir(folder)) if f.endswith(".yaml")]
    return files


def helm_commands(plan):
    """(cluster, argv) of every `helm upgrade --install` in the dry-run, in plan order."""
    found = []
    for line in plan.splitlines():
        line = line.split("    # only when")[0].strip()
        if not line.startswith("$ helm upgrade --install "):
            continue
        argv = shlex.split(line[2:])
        context = argv[argv.index("--kube-context") + 1]
        found.append((context, argv))
    return found


def template_args(argv):
    """`helm upgrade --install NAME REPO/CHART ...` -> (name, chart, version, namespace, value args)."""
    name, chart_ref = argv[3], argv[4]
    rest = argv[5:]
    version = namespace = None
    values = []
    i = 0
    while i < len(rest):
        flag = rest[i]
        # Flags that change how helm installs, not what it renders.
        if flag in ("--create-namespace", "--wait", "--take-ownership"):
            i += 1
        elif flag in ("--kube-context", "--timeout"):
            i += 2
        elif flag == "--version":
            version = rest[i + 1]
            i += 2
        elif flag == "--namespace":
            namespace = rest[i + 1]
            i += 2
        elif flag in ("--values", "--set", "--set-file", "--set-string"):
            values += [flag, rest[i + 1]]
            i += 2
        else:
            sys.exit(f"render.py: unexpected helm argument {flag!r} in {argv}")
    return name, chart_ref, version, namespace, values


def chart_dir(chart_ref, version, charts, pulled):
    repo, chart = chart_ref.split("/", 1)
    if charts and os.path.isdir(os.path.join(charts, chart)):
        path = os.path.join(charts, chart)
        found = yaml.safe_load(open(os.path.join(path, "Chart.yaml")))["version"]
        if str(found) != version:
            sys.exit(f"render.py: {path} is {chart} {found}, the pin is {version}")
        return path, f"{chart} {version} from {path}"
    target = os.path.join(pulled, f"{chart}-{version}")
    if not os.path.isdir(target):
        run([HELM, "pull", chart_ref, "--version", version, "--untar", "--untardir", target])
    return os.path.join(target, chart), f"{chart_ref} {version} (helm pull)"


def pod_spec(doc):
    path = POD_SPEC.get(doc.get("kind"))
    spec = doc
    for key in path or []:
        spec = (spec or {}).get(key)
    return spec if path else None


def resources(container):
    r = container.get("resources") or {}
    return {k: r[k] for k in ("requests", "limits") if r.get(k)}


def containers(spec):
    out = []
    for c in spec.get("initContainers") or []:
        # Native sidecars (restartPolicy Always) run beside the containers; plain init ones before.
        kind = "sidecar" if c.get("restartPolicy") == "Always" else "init"
        out.append({"name": c["name"], "type": kind, "image": c.get("image"), **resources(c)})
    for c in spec.get("containers") or []:
        out.append({"name": c["name"], "type": "container", "image": c.get("image"), **resources(c)})
    return out


def reloader_resources(docs):
    """The config-reloader resources the Prometheus operator gives the pods it makes: its
    --config-reloader-{cpu,memory}-{request,limit} flags, where "0" means none, and its image."""
    for doc in docs:
        if doc.get("kind") != "Deployment":
            continue
        for c in pod_spec(doc).get("containers") or []:
            flags = dict(a[2:].split("=", 1) for a in c.get("args") or [] if a.startswith("--config-reloader-"))
            if not flags:
                continue
            found = {}
            for a in c.get("args") or []:
                if a.startswith("--prometheus-config-reloader="):
                    found["image"] = a.split("=", 1)[1]
            for kind, suffix in (("requests", "request"), ("limits", "limit")):
                part = {res: flags.get(f"config-reloader-{res}-{suffix}") for res in ("cpu", "memory")}
                part = {k: v for k, v in part.items() if v and v != "0"}
                if part:
                    found[kind] = part
            return found
    return None


def workloads(cluster, source, docs):
    found = []
    reloader = reloader_resources(docs)
    for doc in docs:
        kind = doc.get("kind")
        meta = doc.get("metadata") or {}
        annotations = meta.get("annotations") or {}
        if kind == "Prometheus" and doc.get("apiVersion", "").startswith("monitoring.coreos.com/"):
            # The operator turns this into a StatefulSet: prometheus with spec.resources, its
            # config-reloader (and init-config-reloader) with the operator's flags.
            spec = doc.get("spec") or {}
            reload = {**(reloader or {})}
            entry = {
                "kind": "Prometheus",
                "host_network": bool(spec.get("hostNetwork")),
                "replicas": spec.get("replicas", 1),
                "pod_annotations": (spec.get("podMetadata") or {}).get("annotations") or {},
                "containers": [
                    {"name": "init-config-reloader", "type": "init", **reload},
                    {"name": "prometheus", "type": "container", "image": spec.get("image"), **resources(spec)},
                    {"name": "config-reloader", "type": "container", **reload},
                ],
            }
        else:
            spec = pod_spec(doc)
            if spec is None:
                continue
            if kind == "Pod":
                template = doc
            else:
                template = doc["spec"].get("template") or doc["spec"].get("jobTemplate", {}).get("spec", {}).get("template", {})
            replicas = doc["spec"].get("replicas", 1) if kind in ("Deployment", "StatefulSet") else 1
            entry = {
                "kind": kind,
                "replicas": replicas,
                # Linkerd never injects a proxy into a pod on the host's network.
                "host_network": bool(spec.get("hostNetwork")),
                "pod_annotations": (template.get("metadata") or {}).get("annotations") or {},
                "containers": containers(spec),
            }
        hook = annotations.get("helm.sh/hook")
        # Only the annotations that decide whether Linkerd injects a proxy are kept.
        entry["pod_annotations"] = {
            k: v for k, v in entry["pod_annotations"].items() if k.startswith("linkerd.io/inject")
        }
        found.append({
            "cluster": cluster,
            "source": source,
            "namespace": meta.get("namespace"),
            "name": meta.get("name"),
            **entry,
            **({"helm_hook": hook} if hook else {}),
        })
    return found


def namespaces(docs):
    return {
        (d["metadata"]["name"]): (d["metadata"].get("annotations") or {}).get("linkerd.io/inject")
        for d in docs
        if d.get("kind") == "Namespace"
    }


def load(text):
    return [d for d in yaml.load_all(text, Loader=PlainLoader) if isinstance(d, dict)]


def main():
    global HELM
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--charts", help="folder of unpacked charts at the pinned versions (<chart>/Chart.yaml)")
    parser.add_argument("--helm", default=os.environ.get("HELM", "helm"))
    args = parser.parse_args()
    HELM = args.helm
    helm_version = run([HELM, "version", "--short"]).strip()

    with tempfile.TemporaryDirectory() as tmp:
        state = os.path.join(tmp, "state")
        # Real certificates, so --set-file reads files the way a deploy does.
        deployer("--state-dir", state, "certs")
        plan = deployer("--state-dir", state, "all", "--dry-run")
        record = {
            "about": "Written by manifests/rendered/render.py (helm template of every release of "
            "`deployer all --dry-run`); do not edit. deployer/tests/rendered.rs checks it.",
            "helm": helm_version,
            "rendered_on": datetime.date.today().isoformat(),
            "inputs": {path: sha256(path) for path in inputs()},
            "releases": [],
            "namespaces": {},
            "workloads": [],
        }
        for context, argv in helm_commands(plan):
            name, chart_ref, version, namespace, values = template_args(argv)
            path, source = chart_dir(chart_ref, version, args.charts, os.path.join(tmp, "pulled"))
            rendered = run([HELM, "template", name, path, "--namespace", namespace, *values])
            docs = load(rendered)
            shown = [a.replace(state, ".state") for a in values]
            record["releases"].append({
                "cluster": context, "name": name, "chart": chart_ref, "version": version,
                "namespace": namespace, "args": shown, "chart_source": source,
            })
            record["namespaces"].setdefault(context, {}).update(namespaces(docs))
            for w in workloads(context, f"release {name}", docs):
                w["namespace"] = w["namespace"] or namespace
                record["workloads"].append(w)
        # Our own objects (demo, telemetry agent, bucket Job): applied as they are.
        for cluster, context in (("central", "lgtm-central"), ("remote", "lgtm-remote")):
            folder = os.path.join(ROOT, "manifests", cluster)
            for f in sorted(os.listdir(folder)):
                docs = load(open(os.path.join(folder, f)).read())
                if not docs or not all("apiVersion" in d and "kind" in d for d in docs):
                    continue
                record["workloads"] += workloads(context, f"manifest manifests/{cluster}/{f}", docs)

    with open(RECORD, "w") as out:
        json.dump(record, out, indent=1, sort_keys=False)
        out.write("\n")
    print(f"wrote {os.path.relpath(RECORD, ROOT)}: {len(record['releases'])} releases, "
          f"{len(record['workloads'])} workloads", file=sys.stderr)


if __name__ == "__main__":
    main()
