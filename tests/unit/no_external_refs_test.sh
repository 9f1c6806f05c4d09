#!/usr/bin/env bash
# No file of the repository (code, docs, README, playbooks, configurations, scripts) cites a
# document that is not in the repository:
# the design notes, the study of the original and the lab notes the code was written from live
# in docs/ (design.md, original.md, exporters.md); a comment that points elsewhere points at
# nothing in a user's clone.
set -euo pipefail
src=${CONTINUUM_SOURCE_DIR:?}
cd "$src"
self=tests/unit/no_external_refs_test.sh
# Which names count as such citations is documented in docs/design.md ("Documents"); the pattern
# spells none of them out, so that rewriting the citations leaves this file alone.
pattern='DESIGN[.]md|DESIGN[[:space:]]§|upstream[- ]spec|(^|[^/[:alnum:]_.-])(lab|scaphandre|seed|style)\.md|\.\.[/]shared|/work[/]shared'
hits=$(grep -rnE --exclude-dir=.git "$pattern" src app tests bench docs README.md playbooks configuration \
  scripts .ci CMakeLists.txt | grep -v "^$self:" || true)
if [[ -n $hits ]]; then
  echo "$hits"
  echo "FAIL: $(wc -l <<<"$hits") line(s) cite documents outside the repository; cite docs/design.md," \
       "docs/original.md or docs/exporters.md instead" >&2
  exit 1
fi
echo "PASS: no citation of a document outside the repository"
