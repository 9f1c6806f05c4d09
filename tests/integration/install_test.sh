#!/usr/bin/env bash
# `cmake --install` into a temporary prefix gives a continuum that works from there alone: its
# playbooks, configurations and guest programs are where it looks (util/paths.h), and with the
# source and build trees hidden (a tmpfs over them in a private mount namespace, so the source path
# baked into the binary leads nowhere), `validate` and `plan` succeed on a shipped configuration
# and `--version` names the installed directories. Needs root (mount namespace).
set -euo pipefail
src=${CONTINUUM_SOURCE_DIR:?}
build=${CONTINUUM_BUILD_DIR:?}
prefix=$(mktemp -d /tmp/continuum-install.XXXXXX)
trap 'rm -rf "$prefix"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

cmake --install "$build" --prefix "$prefix" >"$prefix.log" 2>&1 || { cat "$prefix.log"; fail "cmake --install"; }
rm -f "$prefix.log"

# The layout: every shipped playbook file, the shipped configurations, both guest programs.
[[ -x $prefix/bin/continuum ]] || fail "no bin/continuum"
[[ -d $prefix/share/continuum/playbooks ]] || fail "no share/continuum/playbooks"
want=$(cd "$src/playbooks" && find . -type f | sort)
got=$(cd "$prefix/share/continuum/playbooks" && find . -type f | sort)
[[ "$want" == "$got" ]] || fail "installed playbooks differ from the source tree's: $(diff <(echo "$want") <(echo "$got"))"
for cfg in "$src"/configuration/*.cfg; do
  cmp -s "$cfg" "$prefix/share/continuum/configuration/$(basename "$cfg")" || fail "configuration/$(basename "$cfg") not installed"
done
for p in continuum-endpoint continuum-worker; do
  [[ -x $prefix/libexec/continuum/$p ]] || fail "no libexec/continuum/$p"
done
[[ -f $prefix/share/doc/continuum/LICENSE ]] || fail "no share/doc/continuum/LICENSE"

# From the prefix alone. The script given to the namespace first proves the trees are hidden.
out=$(unshare --mount --propagation private env -u CONTINUUM_HOME -u CONTINUUM_GUEST_APP_DIR \
        SRC="$src" BUILD="$build" PREFIX="$prefix" bash -euo pipefail -c '
  mount -t tmpfs continuum-hidden "$SRC"
  case "$BUILD/" in "$SRC"/*) ;; *) mount -t tmpfs continuum-hidden "$BUILD" ;; esac
  [[ ! -e $SRC/CMakeLists.txt && ! -e $BUILD/CMakeCache.txt ]] || { echo "trees still visible"; exit 1; }
  cd /
  bin=$PREFIX/bin/continuum
  cfg=$PREFIX/share/continuum/configuration/quickstart.cfg
  "$bin" --version
  "$bin" validate "$cfg"
  "$bin" plan "$cfg"
  "$bin" plan --format json "$cfg" >/dev/null
') || { echo "$out"; fail "continuum from the installed prefix"; }
echo "$out"
grep -qx "data directory: $prefix/share/continuum" <<<"$out" || fail "--version does not name the installed data directory"
grep -qx "guest programs: $prefix/libexec/continuum" <<<"$out" || fail "--version does not name the installed guest programs"
grep -q "cloud_controller_" <<<"$out" || fail "plan output names no cloud_controller VM"
echo "PASS: installed into $prefix; validate, plan and --version work from there alone"
