#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Checks the Kubernetes manifests without a cluster (no kubectl):
#   1. helm/weir/crds/ is identical to crds/;
#   2. helm lint --strict, and helm template with default and non-default values;
#   3. every rendered and CRD document parses as YAML and has apiVersion, kind
#      and metadata.name, with no duplicate objects;
#   4. CRD rules: a description on every field, status subresource,
#      Ready/Reason/Age printer columns, the expected scope and short name;
#   5. RBAC is least-privilege (no '*' anywhere) and the operator runs
#      non-root with a read-only root filesystem and probes;
#   6. install.yaml is what ci/gen-install.sh generates now.
# helm is pinned and built once into ~/.cache/weir/ by ci/helm.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { printf 'check-manifests: FAIL: %s\n' "$*" >&2; exit 1; }
step() { printf 'check-manifests: %s\n' "$*"; }

# Debian's python3 with PyYAML (python3-yaml), whatever python is first on PATH.
py=/usr/bin/python3
if ! "$py" -c 'import yaml' 2>/dev/null; then
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo -n)
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends python3 python3-yaml
fi

helm=$(ci/helm.sh)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

step "CRDs: helm/weir/crds identical to crds/"
diff -r crds helm/weir/crds >"$work/crd.diff" ||
  { cat "$work/crd.diff" >&2; fail "helm/weir/crds differs from crds/ (run ci/gen-install.sh)"; }

step "helm lint"
"$helm" lint --strict helm/weir --kube-version 1.34.0 >"$work/lint.log" ||
  { cat "$work/lint.log" >&2; fail "helm lint"; }
"$helm" lint --strict helm/weir --kube-version 1.34.0 --set 'watchNamespaces={team-a,team-b}' \
  --set leaderElection.enabled=false --set metrics.enabled=false >"$work/lint2.log" ||
  { cat "$work/lint2.log" >&2; fail "helm lint (watchNamespaces)"; }

step "helm template"
"$helm" template weir helm/weir -n weir-system --kube-version 1.34.0 --include-crds \
  >"$work/default.yaml"
"$helm" template weir helm/weir -n streaming --kube-version 1.34.0 \
  --set 'watchNamespaces={team-a,team-b}' --set leaderElection.enabled=false \
  --set metrics.enabled=false --set replicaCount=2 --set clusterDomain=cluster.local \
  --set dataplane.storeResources.limits.memory=4Gi \
  --set 'dataplane.seccompProfile.type=Localhost' \
  --set 'dataplane.seccompProfile.localhostProfile=weir.json' >"$work/namespaced.yaml"

step "install.yaml is up to date"
ci/gen-install.sh --stdout >"$work/install.yaml"
[ -f install.yaml ] || fail "install.yaml is missing (run ci/gen-install.sh)"
diff -u install.yaml "$work/install.yaml" >"$work/install.diff" ||
  { head -50 "$work/install.diff" >&2; fail "install.yaml is stale (run ci/gen-install.sh)"; }

step "YAML, CRD and RBAC checks"
"$py" - "$work/default.yaml" "$work/namespaced.yaml" install.yaml crds/*.yaml <<'PY'
import sys, yaml

errors = []
def err(msg):
    errors.append(msg)

def docs(path):
    with open(path) as f:
        try:
            return [d for d in yaml.safe_load_all(f) if d is not None]
        except yaml.YAMLError as e:
            err(f"{path}: YAML: {e}")
            return []

CRDS = {
    "clusterstreams.streaming.weir.dev": ("Cluster", "srcs", "ClusterStream"),
    "streams.streaming.weir.dev": ("Namespaced", "srs", "Stream"),
    "processors.streaming.weir.dev": ("Namespaced", "srp", "Processor"),
}

def check_schema(crd, node, path):
    if not isinstance(node, dict):
        err(f"{crd}: {path}: schema is not an object")
        return
    if path not in ("", ".metadata") and "description" not in node:
        err(f"{crd}: {path}: no description")
    if "type" not in node and not node.get("x-kubernetes-int-or-string"):
        err(f"{crd}: {path}: no type (not structural)")
    if node.get("type") == "object" and path != ".metadata" and "properties" not in node \
            and "additionalProperties" not in node \
            and not node.get("x-kubernetes-preserve-unknown-fields"):
        # The API server would prune every field of an empty object schema.
        err(f"{crd}: {path}: object without properties")
    for k, v in (node.get("properties") or {}).items():
        check_schema(crd, v, f"{path}.{k}")
    if isinstance(node.get("items"), dict):
        check_schema(crd, node["items"], f"{path}[]")
    ap = node.get("additionalProperties")
    if isinstance(ap, dict) and ap.get("type") == "object":
        check_schema(crd, ap, f"{path}{{}}")

def check_crd(d, src):
    name = d["metadata"]["name"]
    if name not in CRDS:
        err(f"{src}: unexpected CRD {name}")
        return
    scope, short, kind = CRDS[name]
    s = d["spec"]
    if s["group"] != "streaming.weir.dev" or s["scope"] != scope or s["names"]["kind"] != kind:
        err(f"{name}: group/scope/kind")
    if short not in s["names"].get("shortNames", []):
        err(f"{name}: short name {short} missing")
    vers = [v for v in s["versions"] if v["name"] == "v1alpha1"]
    if len(vers) != 1 or not vers[0].get("served") or not vers[0].get("storage"):
        err(f"{name}: v1alpha1 must be the served storage version")
        return
    v = vers[0]
    if "status" not in (v.get("subresources") or {}):
        err(f"{name}: no status subresource")
    cols = {c["name"]: c for c in v.get("additionalPrinterColumns", [])}
    for c in ("Ready", "Reason", "Age"):
        if c not in cols:
            err(f"{name}: printer column {c} missing")
    if 'type=="Ready"' not in cols.get("Ready", {}).get("jsonPath", ""):
        err(f"{name}: Ready column must read the Ready condition")
    schema = v["schema"]["openAPIV3Schema"]
    check_schema(name, schema, "")
    cond = schema["properties"]["status"]["properties"]["conditions"]["items"]["properties"]
    for f in ("type", "status", "reason", "message", "lastTransitionTime", "observedGeneration"):
        if f not in cond:
            err(f"{name}: status.conditions[].{f} missing")

def check_rbac(d, src):
    for r in d.get("rules", []):
        for key in ("verbs", "resources", "apiGroups"):
            if "*" in (r.get(key) or []):
                err(f"{src}: {d['kind']} {d['metadata']['name']}: '*' in {key}")

def check_deployment(d, src):
    pod = d["spec"]["template"]["spec"]
    if not pod.get("securityContext", {}).get("runAsNonRoot"):
        err(f"{src}: Deployment must run as non-root")
    for c in pod["containers"]:
        sc = c.get("securityContext", {})
        if not sc.get("readOnlyRootFilesystem") or sc.get("allowPrivilegeEscalation") is not False:
            err(f"{src}: container {c['name']}: needs readOnlyRootFilesystem, no privilege escalation")
        for p in ("livenessProbe", "readinessProbe", "resources"):
            if p not in c:
                err(f"{src}: container {c['name']}: no {p}")

for path in sys.argv[1:]:
    seen = set()
    crds = 0
    for d in docs(path):
        for f in ("apiVersion", "kind"):
            if f not in d:
                err(f"{path}: a document has no {f}")
        name = (d.get("metadata") or {}).get("name")
        if not name:
            err(f"{path}: {d.get('kind')} without metadata.name")
            continue
        key = (d.get("kind"), d["metadata"].get("namespace"), name)
        if key in seen:
            err(f"{path}: duplicate {key}")
        seen.add(key)
        k = d.get("kind")
        if k == "CustomResourceDefinition":
            crds += 1
            check_crd(d, path)
        elif k in ("ClusterRole", "Role"):
            check_rbac(d, path)
        elif k == "Deployment":
            check_deployment(d, path)
    if path.endswith("install.yaml"):
        kinds = [k for (k, _, _) in seen]
        for want in ("Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role",
                     "RoleBinding", "Deployment"):
            if want not in kinds:
                err(f"{path}: no {want}")
        if crds != 3:
            err(f"{path}: {crds} CRDs, want 3")

if errors:
    print("\n".join(errors), file=sys.stderr)
    sys.exit(1)
PY
step "all checks passed"
