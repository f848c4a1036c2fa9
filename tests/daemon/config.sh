#!/bin/bash
# The configuration file (man xenblkd.conf) through --check-config: every
# key set to a value other than its default, booleans in every spelling,
# the output read back as a file, the shipped conf/xenblkd.conf equal to
# the defaults, the command line over the file, and every invalid case
# with its exact "FILE:LINE: reason".  No xenstored needed: --check-config
# touches neither xenstore nor any device.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"

bin=$top_builddir/src/xenblkd
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# If a case wrongly got past the configuration, it must not reach a real
# xenstored.
export XENSTORED_PATH=$tmp/no-such-socket

# check_config FILE [ARGS...]: --check-config output without its header.
check_config() {
    local f=$1
    shift
    "$bin" --config "$f" "$@" --check-config >"$tmp/out" 2>"$tmp/err" ||
        { cat "$tmp/err"; xsim_fail "--check-config $f $*: exit status $?"; }
    [ -s "$tmp/err" ] && { cat "$tmp/err"; xsim_fail "--check-config $f $*: wrote to stderr"; }
    head -n 1 "$tmp/out" | grep -q "^# xenblkd .*$f" ||
        xsim_fail "--check-config: first line '$(head -n 1 "$tmp/out")' does not name $f"
    tail -n +2 "$tmp/out"
}

# expect_error WHAT WANT FILE-CONTENT [ARGS...]: a file holding
# FILE-CONTENT is refused by --check-config and by the daemon's start-up,
# both exiting 1 with exactly WANT on stderr (FILE stands for the path).
n_err=0
expect_error() {
    local what=$1 want=$2 content=$3 f rc
    shift 3
    n_err=$((n_err + 1))
    f=$tmp/bad$n_err.conf
    printf '%b' "$content" >"$f"
    want=${want//FILE/$f}
    for mode in --check-config --foreground; do
        rc=0
        "$bin" --config "$f" "$@" "$mode" >"$tmp/out" 2>"$tmp/err" || rc=$?
        [ "$rc" = 1 ] || { cat "$tmp/out" "$tmp/err"; xsim_fail "$what ($mode): exit status $rc, want 1"; }
        [ "$(cat "$tmp/err")" = "$want" ] ||
            xsim_fail "$what ($mode): stderr is '$(cat "$tmp/err")', want '$want'"
    done
    xsim_log "ok: $what: $want"
}

# ---- every key, none at its default ----
group=$(getent group 1 | cut -d: -f1)
[ -n "$group" ] || xsim_fail "no group with gid 1 on this host"
cat >"$tmp/all.conf" <<EOF
# every key of xenblkd.conf, none at its default
[daemon]
kinds = qdisk , vbd3
domid = 7
state-directory = /var/lib/xenblkd-test

[log]
  level=debug
target = stderr
rate-limit = 0
rate-burst = 5

; the control socket
[control]
socket = /tmp/xenblkd-test/control.sock
group = $group

[disks]
direct-io = no
discard = FALSE
max-queues = 3
max-ring-page-order = 2
max-indirect-segments = 32
max-persistent-grants = 0
persistent-grant-idle = 5
disk-memory = 8
disk-grant-mappings = 100
disk-fds = 9
max-inflight-per-device = 32
max-inflight-per-ring = 16
EOF
cat >"$tmp/all.want" <<EOF

[daemon]
kinds = qdisk,vbd3
domid = 7
state-directory = /var/lib/xenblkd-test

[log]
level = debug
target = stderr
rate-limit = 0
rate-burst = 5

[control]
socket = /tmp/xenblkd-test/control.sock
group = $group

[disks]
direct-io = no
discard = no
max-queues = 3
max-ring-page-order = 2
max-indirect-segments = 32
max-persistent-grants = 0
persistent-grant-idle = 5
disk-memory = 8
disk-grant-mappings = 100
disk-fds = 9
max-inflight-per-device = 32
max-inflight-per-ring = 16
EOF
check_config "$tmp/all.conf" >"$tmp/all.got"
diff -u "$tmp/all.want" "$tmp/all.got" || xsim_fail "--check-config does not show every key of the file"
xsim_log "ok: every key set through the file, none at its default"

# The output is a configuration file that gives the same configuration.
cp "$tmp/out" "$tmp/again.conf"
check_config "$tmp/again.conf" >"$tmp/again.got"
diff -u "$tmp/all.got" "$tmp/again.got" || xsim_fail "--check-config output read back differs"
xsim_log "ok: --check-config output read back as a file gives the same configuration"

# The shipped file: every key, commented out at its default, with a comment.
check_config /dev/null >"$tmp/defaults"
sed -n 's/^#\([a-z][a-z-]* = .*\)$/\1/p; /^\[/p' "$top_srcdir/conf/xenblkd.conf" >"$tmp/shipped"
grep -v -e '^$' "$tmp/defaults" | diff -u - "$tmp/shipped" ||
    xsim_fail "conf/xenblkd.conf (+) does not list every key at its default (-)"
check_config "$top_srcdir/conf/xenblkd.conf" | diff -u "$tmp/defaults" - ||
    xsim_fail "conf/xenblkd.conf as shipped is not the default configuration"
awk '/^#[a-z][a-z-]* = / && prev !~ /^#/ { print "no comment above " $0; bad = 1 }
     { prev = $0 } END { exit bad }' "$top_srcdir/conf/xenblkd.conf" ||
    xsim_fail "a key of conf/xenblkd.conf has no comment"
xsim_log "ok: conf/xenblkd.conf has every key at its default, each with a comment"

# Booleans: yes/no/true/false/1/0 in any case; CRLF line ends; a section
# may come back.
for v in yes true 1 YES True; do
    printf '[disks]\r\ndiscard = no\r\n[log]\r\n[disks]\r\ndirect-io = %s\r\n' "$v" >"$tmp/b.conf"
    check_config "$tmp/b.conf" | grep -qx 'direct-io = yes' || xsim_fail "direct-io = $v is not yes"
done
for v in no false 0 NO False; do
    printf '[disks]\ndirect-io = %s\n' "$v" >"$tmp/b.conf"
    check_config "$tmp/b.conf" | grep -qx 'direct-io = no' || xsim_fail "direct-io = $v is not no"
done
xsim_log "ok: booleans yes/no/true/false/1/0, CRLF, a section given twice"

# ---- the command line over the file ----
printf '[disks]\nmax-queues = 2\ndirect-io = yes\n[log]\nlevel = debug\ntarget = syslog\n' >"$tmp/o.conf"
check_config "$tmp/o.conf" --max-queues 5 --no-direct-io --foreground --log-level warn \
    --max-queues 4 --state-dir /srv/xb --control-socket /srv/xb/c.sock --control-group root \
    --kinds vbd --domid auto --discard no --max-ring-page-order 0 --max-indirect-segments 0 \
    --max-persistent-grants 7 --persistent-grant-idle 0 --log-rate-limit 3 --log-rate-burst 4 \
    --disk-memory 2 --disk-grant-mappings 0 --disk-fds 3 >"$tmp/o.got"
for kv in 'max-queues = 4' 'direct-io = no' 'level = warning' 'target = stderr' \
          'state-directory = /srv/xb' 'socket = /srv/xb/c.sock' 'group = root' 'kinds = vbd' \
          'domid = auto' 'discard = no' 'max-ring-page-order = 0' 'max-indirect-segments = 0' \
          'max-persistent-grants = 7' 'persistent-grant-idle = 0' 'rate-limit = 3' \
          'rate-burst = 4' 'disk-memory = 2' 'disk-grant-mappings = 0' 'disk-fds = 3'; do
    grep -qx -- "$kv" "$tmp/o.got" || { cat "$tmp/o.got"; xsim_fail "command line: no '$kv'"; }
done
check_config "$tmp/o.conf" --direct-io no --log-target stderr | grep -qx 'direct-io = no' ||
    xsim_fail "--direct-io no does not override the file"
xsim_log "ok: every option overrides the file (the last of a repeated option wins)"
# A bad value on the command line is named by its option (usage error: 2).
rc=0
"$bin" --config "$tmp/o.conf" --max-ring-page-order 5 --check-config >"$tmp/out" 2>"$tmp/err" || rc=$?
[ "$rc" = 2 ] && [ "$(cat "$tmp/err")" = "xenblkd: --max-ring-page-order: 5 is out of range (0..4)" ] ||
    xsim_fail "bad option value: exit $rc, '$(cat "$tmp/err")'"
xsim_log "ok: a bad option value names the option"

# A missing default file is fine (only when this host has none installed).
default=$("$bin" --help | sed -n 's/.*(default: \(.*xenblkd\.conf\))$/\1/p')
[ -n "$default" ] || xsim_fail "--help does not name the default configuration file"
if [ ! -e "$default" ]; then
    "$bin" --check-config >"$tmp/out" || xsim_fail "missing default $default: exit status $?"
    head -n 1 "$tmp/out" | grep -qF "$default (absent)" || xsim_fail "header: $(head -n 1 "$tmp/out")"
    tail -n +2 "$tmp/out" | diff -u "$tmp/defaults" - || xsim_fail "missing default file: not the defaults"
    xsim_log "ok: a missing default file ($default) gives the defaults"
else
    xsim_log "note: $default exists on this host: missing-default case not run"
fi

# ---- every invalid case ----
expect_error "bad number" "FILE:3: max-queues: 'many' is not a number or auto (1..64)" \
    '# queues\n[disks]\nmax-queues = many\n'
expect_error "negative number" "FILE:2: persistent-grant-idle: '-1' is not a number (0..86400)" \
    '[disks]\npersistent-grant-idle = -1\n'
expect_error "number with a unit" "FILE:2: max-persistent-grants: '10k' is not a number (0..1048576)" \
    '[disks]\nmax-persistent-grants = 10k\n'
expect_error "out of range (above)" "FILE:3: max-ring-page-order: 5 is out of range (0..4)" \
    '[disks]\n\nmax-ring-page-order = 5\n'
expect_error "out of range (below)" "FILE:2: max-queues: 0 is out of range (1..64)" \
    '[disks]\nmax-queues = 0\n'
expect_error "out of range (overflow)" \
    "FILE:2: max-indirect-segments: 99999999999999999999999 is out of range (0..256)" \
    '[disks]\nmax-indirect-segments = 99999999999999999999999\n'
expect_error "bad domid" "FILE:2: domid: '32752' is not a domain id (0..32751 or auto)" \
    '[daemon]\ndomid = 32752\n'
expect_error "bad bool" "FILE:2: discard: 'maybe' is not a boolean (yes, no, true, false, 1, 0)" \
    '[disks]\ndiscard = maybe\n'
expect_error "bad level" "FILE:2: level: unknown level 'loud' (error, warning, info, debug)" \
    '[log]\nlevel = loud\n'
expect_error "no comment after a value" \
    "FILE:2: level: unknown level 'info # quiet' (error, warning, info, debug)" \
    '[log]\nlevel = info # quiet\n'
expect_error "bad log target" "FILE:2: target: unknown log target 'journal' (syslog, stderr)" \
    '[log]\ntarget = journal\n'
expect_error "unknown kind" "FILE:2: kinds: unknown backend kind 'tap' (known: vbd3, qdisk, vbd)" \
    '[daemon]\nkinds = vbd3,tap\n'
expect_error "kind twice" "FILE:2: kinds: backend kind 'vbd3' given twice" \
    '[daemon]\nkinds = vbd3,qdisk,vbd3\n'
expect_error "empty kind" "FILE:2: kinds: empty backend kind in 'vbd3,,qdisk'" \
    '[daemon]\nkinds = vbd3,,qdisk\n'
expect_error "relative path" "FILE:2: state-directory: 'run/xenblkd' is not an absolute path" \
    '[daemon]\nstate-directory = run/xenblkd\n'
long=/$(printf 'x%.0s' {1..107})
expect_error "socket path too long" "FILE:2: socket: path too long (at most 107 bytes)" \
    "[control]\nsocket = $long\n"
expect_error "unknown group" "FILE:2: group: unknown group 'no-such-group-xenblkd'" \
    '[control]\ngroup = no-such-group-xenblkd\n'
# 75 bytes: <dir>/nbd/qdisk-32751-4294967295.sock fills a socket address.
expect_error "state directory too long" "FILE:2: state-directory: path too long (at most 75 bytes: the disks' NBD sockets below it must fit in a socket address)" \
    "[daemon]\nstate-directory = /$(printf 'z%.0s' {1..75})\n"
expect_error "empty value" "FILE:2: level: no value" '[log]\nlevel =\n'
expect_error "unknown key" "FILE:2: unknown key 'max-queue' in [disks]" '[disks]\nmax-queue = 2\n'
expect_error "key in the wrong section" "FILE:2: unknown key 'level' in [disks] (it belongs in [log])" \
    '[disks]\nlevel = debug\n'
expect_error "key outside any section" "FILE:2: 'level' outside any section (it belongs in [log])" \
    '# no section yet\nlevel = debug\n'
expect_error "unknown key outside any section" "FILE:1: unknown key 'colour' outside any section" \
    'colour = blue\n'
expect_error "unknown section" \
    "FILE:4: unknown section [disk] (known: [daemon], [log], [control], [disks])" \
    '[log]\nlevel = info\n\n[disk]\nmax-queues = 2\n'
expect_error "unclosed section" "FILE:1: '[' without a closing ']'" '[log\nlevel = info\n'
expect_error "duplicate key" "FILE:5: duplicate key 'level' (already set on line 2)" \
    '[log]\nlevel = info\ntarget = stderr\n# again\nlevel = debug\n'
expect_error "duplicate key across a repeated section" \
    "FILE:5: duplicate key 'max-queues' (already set on line 2)" \
    '[disks]\nmax-queues = 2\n[log]\n[disks]\nmax-queues = 3\n'
expect_error "missing =" \
    "FILE:3: expected 'key = value', '[section]' or a comment, got 'target stderr'" \
    '[log]\nlevel = info\ntarget stderr\n'
expect_error "no key" "FILE:2: no key before '='" '[log]\n= info\n'
expect_error "NUL byte" "FILE:2: NUL byte in line" '[log]\nlevel = in\0fo\n'
expect_error "line too long" "FILE:2: line too long (more than 4096 bytes)" \
    "[daemon]\nstate-directory = /$(printf 'y%.0s' {1..4100})\n"
# A file error stays an error whatever the command line sets.
expect_error "file error under an option" "FILE:2: max-queues: 'many' is not a number or auto (1..64)" \
    '[disks]\nmax-queues = many\n' --max-queues 2

# The file itself.
for mode in --check-config --foreground; do
    rc=0
    "$bin" --config "$tmp/missing.conf" "$mode" >"$tmp/out" 2>"$tmp/err" || rc=$?
    [ "$rc" = 1 ] && [ "$(cat "$tmp/err")" = "$tmp/missing.conf: cannot open: No such file or directory" ] ||
        xsim_fail "missing explicit file ($mode): exit $rc, '$(cat "$tmp/err")'"
    mkdir -p "$tmp/dir.conf"
    rc=0
    "$bin" --config "$tmp/dir.conf" "$mode" >"$tmp/out" 2>"$tmp/err" || rc=$?
    [ "$rc" = 1 ] && [ "$(cat "$tmp/err")" = "$tmp/dir.conf: cannot read: Is a directory" ] ||
        xsim_fail "directory as file ($mode): exit $rc, '$(cat "$tmp/err")'"
done
xsim_log "ok: a missing explicit file and a directory are errors naming the file"
printf '[log]\nlevel = info\n' >"$tmp/secret.conf"
chmod 000 "$tmp/secret.conf"
run_as=()
if [ "$(id -u)" = 0 ]; then
    # root reads anything: be nobody for this one.
    command -v setpriv >/dev/null || xsim_fail "setpriv (util-linux) is needed to run as nobody"
    chmod 755 "$tmp"
    run_as=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
fi
rc=0
"${run_as[@]}" "$bin" --config "$tmp/secret.conf" --check-config >"$tmp/out" 2>"$tmp/err" || rc=$?
[ "$rc" = 1 ] && [ "$(cat "$tmp/err")" = "$tmp/secret.conf: cannot open: Permission denied" ] ||
    xsim_fail "unreadable file: exit $rc, '$(cat "$tmp/err")'"
xsim_log "ok: an unreadable file: $(cat "$tmp/err")"
exit 0
