#!/bin/bash
# systemd/xenblkd.service passes `systemd-analyze verify` without a single
# message (unknown keys and bad values are only warnings there, exit 0),
# and carries the settings xenblkd(8) promises.
set -euo pipefail
command -v systemd-analyze >/dev/null ||
    { echo "SKIP: systemd-analyze not installed (Debian package systemd, tests/deps/systemd.txt)"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The unit as installed, but pointing at the binary of this build:
# verify checks that ExecStart= is executable.
sed -e "s|@sbindir@|$top_builddir/src|g" "$top_srcdir/systemd/xenblkd.service.in" > "$tmp/xenblkd.service"
[ -x "$top_builddir/src/xenblkd" ] || { echo "FAIL: $top_builddir/src/xenblkd not built"; exit 1; }
# --man=no: the pages are not installed yet (tests/man checks them).
if ! systemd-analyze verify --man=no "$tmp/xenblkd.service" > "$tmp/out" 2>&1 || [ -s "$tmp/out" ]; then
    echo "FAIL: systemd-analyze verify:"
    cat "$tmp/out"
    exit 1
fi
echo "ok: systemd-analyze verify is silent"
fail=0
for want in Type=notify "ExecReload=$top_builddir/src/xenblkctl reload" WatchdogSec=30s Restart=on-failure \
            KillMode=mixed TimeoutStopSec=60s RuntimeDirectory=xenblkd RuntimeDirectoryPreserve=yes \
            LimitNOFILE=524288 RestrictAddressFamilies=AF_UNIX NoNewPrivileges=yes \
            SystemCallArchitectures=native DevicePolicy=closed ProtectSystem=full; do
    if grep -qxF -- "$want" "$tmp/xenblkd.service"; then echo "ok: $want"; else echo "FAIL: no $want"; fail=1; fi
done
# The unit make install installs: fully substituted.
if [ -f "$top_builddir/systemd/xenblkd.service" ]; then
    if grep -n '@[a-z]*@' "$top_builddir/systemd/xenblkd.service"; then
        echo "FAIL: unsubstituted variable in the built unit"; fail=1
    fi
    grep -q '^ExecStart=/.*/xenblkd$' "$top_builddir/systemd/xenblkd.service" ||
        { echo "FAIL: built unit has no absolute ExecStart="; fail=1; }
fi
exit $fail
