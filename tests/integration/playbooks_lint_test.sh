#!/usr/bin/env bash
# Every shipped playbook passes `ansible-playbook --syntax-check` and `ansible-lint` (Debian's
# ansible-core 2.14 and ansible-lint 6.13, installed by scripts/bootstrap). Offline: ansible-lint
# must not try to install collections or check versions over the network.
set -euo pipefail
src=${CONTINUUM_SOURCE_DIR:?}
command -v ansible-playbook >/dev/null || { echo "SKIP: ansible-playbook missing"; exit 0; }
command -v ansible-lint >/dev/null || { echo "SKIP: ansible-lint missing"; exit 0; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# An inventory with every group the playbooks target, so a typo in a group name shows up as a
# "Could not match supplied host pattern" warning, which fails this test.
cat >"$tmp/inventory.yml" <<'INV'
all:
  hosts:
    node_a: {}
  children:
    cloudcontroller: {hosts: {node_a: null}}
    clouds: {hosts: {node_a: null}}
    edges: {hosts: {node_a: null}}
    endpoints: {hosts: {node_a: null}}
    base: {hosts: {node_a: null}}
    base_cloud: {hosts: {node_a: null}}
    base_edge: {hosts: {node_a: null}}
    base_endpoint: {hosts: {node_a: null}}
    workers: {hosts: {node_a: null}}
    brokers: {hosts: {node_a: null}}
INV

# playbooks/versions.yml is the playbooks' shared variables (vars_files), not a playbook: it is
# linted as vars (.ansible-lint `kinds`), not syntax-checked as a play.
mapfile -t books < <(cd "$src" && find playbooks -name '*.yml' ! -path playbooks/versions.yml | sort)
((${#books[@]} >= 10)) || { echo "FAIL: expected at least 10 playbooks, found ${#books[@]}"; exit 1; }
[[ -f "$src/playbooks/versions.yml" ]] || { echo "FAIL: playbooks/versions.yml missing"; exit 1; }
fail=0
for b in "${books[@]}"; do
  out=$(cd "$src" && ANSIBLE_NOCOLOR=1 ANSIBLE_LOCAL_TEMP="$tmp/ansible-tmp" \
        ansible-playbook --syntax-check -i "$tmp/inventory.yml" "$b" 2>&1) || { echo "FAIL syntax: $b"; echo "$out"; fail=1; continue; }
  if grep -q 'WARNING' <<<"$out"; then echo "FAIL syntax warnings: $b"; echo "$out"; fail=1; fi
done
echo "syntax-check: ${#books[@]} playbooks"

if ! (cd "$src" && ANSIBLE_LOCAL_TEMP="$tmp/ansible-tmp" ansible-lint --offline --nocolor "${books[@]}" playbooks/versions.yml); then
  echo "FAIL: ansible-lint"; fail=1
fi
exit $fail
