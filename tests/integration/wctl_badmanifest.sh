#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Bad manifests make `weirctl run` fail before it starts anything, with exit
# 65 and one line naming the file and the document (never a crash); a
# streaming-runtimes manifest (streaming.tanzu.vmware.com/v1alpha1) is
# accepted as is. No ports: nothing may start (store port 20050 is named so
# that a bug which does start one stays in weirctl's range).
set -euo pipefail
NAME=wctl_badmanifest
source "$(dirname "${BASH_SOURCE[0]}")/wctl_common.bash"

good_stream() {
  cat <<YAML
apiVersion: streaming.weir.dev/v1alpha1
kind: Stream
metadata: {name: $1}
spec: {name: $1, protocol: kafka}
YAML
}

# expect_bad NAME PATTERN: run on $WORK/NAME; exit 65 and PATTERN (grep -E) on stderr.
expect_bad() {
  local dir="$WORK/$1" rc=0
  "$WEIRCTL" run "$dir" --state-dir "$WORK/state-$1" --store-port 20050 >"$WORK/$1.out" \
    2>"$WORK/$1.err" || rc=$?
  ((rc == 65)) || fail "$1: exit $rc, expected 65 (stderr: $(cat "$WORK/$1.err"))"
  grep -qE -- "$2" "$WORK/$1.err" || fail "$1: stderr does not match /$2/: $(cat "$WORK/$1.err")"
  [[ ! -e "$WORK/state-$1/store" ]] || fail "$1: a store was started"
  pass "$1: exit 65: $(head -n 1 "$WORK/$1.err")"
}

mkdir -p "$WORK"/{syntax,nostream,noudf,apiversion,notmap,dup,empty,invalid,unknownkind,fsql}

printf 'apiVersion: streaming.weir.dev/v1alpha1\nkind: Stream\nmetadata: {name: a\nspec: [\n' \
  >"$WORK/syntax/broken.yaml"
expect_bad syntax 'syntax/broken.yaml: [0-9]+:[0-9]+: '

{
  good_stream in
  echo ---
  cat <<'YAML'
apiVersion: streaming.weir.dev/v1alpha1
kind: Processor
metadata: {name: p}
spec:
  inputs: [{name: in}]
  outputs: [{name: missing-out}]
YAML
} >"$WORK/nostream/p.yaml"
expect_bad nostream 'nostream/p.yaml: document 2: Processor p: StreamNotFound: .*missing-out'

{
  good_stream in
  echo ---
  good_stream out
  echo ---
  cat <<'YAML'
apiVersion: streaming.weir.dev/v1alpha1
kind: Processor
metadata: {name: p}
spec:
  inputs: [{name: in}]
  outputs: [{name: out}]
  template:
    spec:
      containers: [{name: enricher, image: example/enricher:1}]
YAML
} >"$WORK/noudf/p.yaml"
expect_bad noudf 'noudf/p.yaml: document 3: Processor p: UDF container "enricher" \(image example/enricher:1\) has no local command: add the annotation local.weir.dev/command.enricher'

{
  good_stream in
  echo ---
  printf 'apiVersion: streaming.weir.dev/v2\nkind: Processor\nmetadata: {name: p}\nspec: {}\n'
} >"$WORK/apiversion/p.yaml"
expect_bad apiversion 'apiversion/p.yaml: document 2: Processor has apiVersion streaming.weir.dev/v2; expected streaming.weir.dev/v1alpha1'

printf -- '- just\n- a list\n' >"$WORK/notmap/list.yaml"
expect_bad notmap 'notmap/list.yaml: document 1: not a mapping'

good_stream s >"$WORK/dup/a.yaml"
{
  good_stream t
  echo ---
  good_stream s
} >"$WORK/dup/b.yaml"
expect_bad dup 'dup/b.yaml: document 2: Stream s is defined twice \(first at .*dup/a.yaml: document 1\)'

expect_bad empty 'empty: no \*.yaml, \*.yml or \*.json manifest'

{
  good_stream in
  echo ---
  good_stream out
  echo ---
  cat <<'YAML'
apiVersion: streaming.weir.dev/v1alpha1
kind: Processor
metadata: {name: p}
spec:
  inputs: [{name: in}]
  outputs: [{name: out}]
  keyBy: payload.k
  window: {type: tumbling, size: soon}
  aggregations: [{name: n, function: count}]
YAML
} >"$WORK/invalid/p.yaml"
expect_bad invalid 'invalid/p.yaml: document 3: Processor p: InvalidSpec: '

printf 'apiVersion: streaming.weir.dev/v1alpha1\nkind: Pipeline\nmetadata: {name: x}\nspec: {}\n' \
  >"$WORK/unknownkind/x.yaml"
expect_bad unknownkind 'unknownkind/x.yaml: document 1: unknown kind Pipeline'

{
  good_stream in
  echo ---
  good_stream out
  echo ---
  printf 'apiVersion: streaming.weir.dev/v1alpha1\nkind: Processor\nmetadata: {name: q}\n'
  printf 'spec: {type: FSQL, inputs: [{name: in}], outputs: [{name: out}], inlineQuery: ["SELECT 1"]}\n'
} >"$WORK/fsql/q.yaml"
expect_bad fsql 'fsql/q.yaml: document 3: Processor q: type FSQL cannot run locally'

# A file that is not there, given directly.
rc=0
"$WEIRCTL" run "$WORK/nope.yaml" --state-dir "$WORK/state-nope" 2>"$WORK/nope.err" || rc=$?
((rc == 65)) && grep -q 'nope.yaml: No such file or directory' "$WORK/nope.err" ||
  fail "missing file: exit $rc: $(cat "$WORK/nope.err")"
pass "missing file: exit 65"

# streaming-runtimes' apiVersion: accepted, rendered, kind other than ours skipped.
mkdir -p "$WORK/ported"
cat >"$WORK/ported/p.yaml" <<'YAML'
apiVersion: streaming.tanzu.vmware.com/v1alpha1
kind: Stream
metadata: {name: data-in}
spec: {name: data-in, protocol: kafka}
---
apiVersion: streaming.tanzu.vmware.com/v1alpha1
kind: Stream
metadata: {name: data-out}
spec: {name: data-out, protocol: kafka}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: unrelated}
---
apiVersion: streaming.tanzu.vmware.com/v1alpha1
kind: Processor
metadata: {name: ported}
spec:
  inputs: [{name: data-in}]
  outputs: [{name: data-out}]
  attributes:
    srp.spel.expression: "payload"
YAML
"$WEIRCTL" render "$WORK/ported" >"$WORK/ported.json" 2>"$WORK/ported.err" ||
  fail "ported manifest refused: $(cat "$WORK/ported.err")"
python3 - "$WORK/ported.json" <<'PY' || fail "ported render"
import json, sys
plan = json.load(open(sys.argv[1]))
spec = plan["processors"][0]["replicas_plan"][0]["spec"]
assert spec["inputs"][0]["topic"] == "data-in", spec
assert spec["inputs"][0]["cluster"]["bootstrap"] == "127.0.0.1:20092", spec
assert [t["topic"] for t in plan["topics"]] == ["data-in", "data-out"], plan["topics"]
PY
pass "streaming.tanzu.vmware.com/v1alpha1 manifests render (other kinds skipped)"
