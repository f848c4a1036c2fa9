#!/bin/bash
# tests/dist-files.sh TARBALL: every file git tracks under the directories
# the build and the tests need is in the release tarball.
#
# Why: CI runs `make distcheck` with a few unit tests only (the whole suite
# has run twice before it, tests/run-all.sh), so a test script or helper
# missing from EXTRA_DIST would no longer fail there.  This check catches
# it in a second: `git ls-files` against `tar tf`.  A file that is tracked
# but rightly not shipped goes into EXCLUDE below, with the reason.
#
# Run from the source tree (a git work tree); prints the missing files and
# exits 1 if any, 77 when there is no git work tree to compare with (a
# build from a tarball).
set -euo pipefail
tarball=${1:?usage: tests/dist-files.sh TARBALL}
[ -f "$tarball" ] || { echo "dist-files: no such tarball: $tarball"; exit 1; }
tarball=$(cd "$(dirname "$tarball")" && pwd)/$(basename "$tarball")
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
git rev-parse --is-inside-work-tree >/dev/null 2>&1 ||
    { echo "dist-files: $top is not a git work tree: nothing to compare"; exit 77; }

DIRS=(src include man systemd conf tests)
# Tracked files that are not part of the release (shell glob patterns,
# matched against the path from the top of the tree):
EXCLUDE=(
    # Python bytecode: a cache the interpreter rebuilds, never a source.
    '*/__pycache__/*'
    '*.pyc'
)

excluded() {
    local p
    for p in "${EXCLUDE[@]}"; do
        # shellcheck disable=SC2053  # $p is a glob on purpose
        [[ $1 == $p ]] && return 0
    done
    return 1
}

# The tarball's paths without their leading "<package>-<version>/".
shipped=$(tar tf "$tarball" | sed 's|^[^/]*/||' | sort -u)
missing=0 tracked=0
while IFS= read -r f; do
    tracked=$((tracked + 1))
    excluded "$f" && continue
    if ! grep -qxF -- "$f" <<<"$shipped"; then
        echo "dist-files: tracked but not in $(basename "$tarball"): $f (add it to EXTRA_DIST or to EXCLUDE in $0)"
        missing=$((missing + 1))
    fi
done < <(git ls-files -- "${DIRS[@]}")
echo "dist-files: $tracked tracked files under ${DIRS[*]}, $missing missing from $(basename "$tarball")"
[ "$missing" -eq 0 ]
