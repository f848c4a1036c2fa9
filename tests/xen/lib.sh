# Host side of the real-Xen tests (sourced by tests/xen/*.sh).
#
#   xen_setup NAME      check the host, build or find the cached images, make
#                       a private share dir with the dom0/domU scripts, the
#                       scenario tests/xen/NAME.dom0 and xenblkd installed
#                       from the build tree (make install DESTDIR=share/root)
#   xen_boot SECONDS    boot Xen + dom0 in QEMU (TCG) once, with a hard
#                       timeout; one QEMU at a time on the machine
#   check/fail/...      assertions on the result files dom0 left in the share
#
# The results are copied to $top_builddir/tests/xen/NAME.results for people
# to read; the private share is removed at exit.
set -u

: "${top_srcdir:?top_srcdir not set (run through make check-xen)}"
: "${top_builddir:?top_builddir not set (run through make check-xen)}"
XEN_SRC=$top_srcdir/tests/xen
# The tier a test boots (build-image.sh): 4.17 = Debian 12, Xen 4.17, Linux
# 6.1; 4.20 = Debian 13, Xen 4.20, Linux 6.12.  A test of the 4.20 tier sets
# XEN_TIER=4.20 before sourcing this file.
XEN_TIER=${XEN_TIER:-4.17}
XEN_CACHE=${XENBLKD_XEN_CACHE:-/var/cache/xenblkd-xen-test}
XEN_QEMU_MEM=${XENBLKD_XEN_QEMU_MEM:-2560}
XEN_DOM0_MEM=${XENBLKD_XEN_DOM0_MEM:-512M}
XEN_LOCK=${XENBLKD_XEN_LOCK:-/tmp/xenblkd-xen-qemu.lock}
# QEMU's CPU model and TCG threading.  With `-cpu max` (an AMD-like model
# with XSAVE, MPX and PKRU state, FSGSBASE, AVX2...) processes in both dom0
# and the guests kept dying at random under TCG: "segfault at 10" in
# glibc's malloc, ld.so assertions, SIGFPE, a program running with another
# one's arguments, QEMU's qdisk with "malloc(): corrupted top size" --
# about one crash a minute, with multi- or single-threaded TCG, with or
# without AVX/AVX2/FSGSBASE.  An older Intel model without XSAVE
# (Westmere: SSE4.2, no AVX/XSAVE/FSGSBASE/SMAP) ran a whole lifecycle boot
# with none, and faster.  Multi-threaded TCG uses both host cores.
# +invtsc (forced: TCG does not offer it by itself) lets Xen take the TSC
# as its platform timer (clocksource=tsc below), as on a real host with an
# invariant TSC: dom0 then keeps Linux's `tsc` clocksource and reads the
# clock in the vDSO.  On Xen's default HPET under TCG, Linux drops `tsc`
# within 30 s (0.2 % skew) and every clock_gettime() of dom0's processes
# (libev reads it twice per loop iteration) becomes a system call through
# Xen, a cost real hosts do not have and kernel blkback never pays:
# tests/xen/README.md, "Turning dom0's vDSO on".
XEN_QEMU_CPU=${XENBLKD_XEN_QEMU_CPU:-Westmere,+invtsc,x-force-features=on}
XEN_TCG_THREAD=${XENBLKD_XEN_TCG_THREAD:-multi}
# Speculation mitigations only cost time under TCG (and an Intel CPU model
# would turn on XPTI and L1TF shadowing for PV guests): off.  The TSC as
# Xen's clock source: see XEN_QEMU_CPU.
XEN_XEN_ARGS=${XENBLKD_XEN_XEN_ARGS:-spec-ctrl=no xpti=false pv-l1tf=false clocksource=tsc tsc=stable:socket}

xen_skip() { echo "SKIP: $*"; exit 77; }
xen_die() { echo "ERROR: $*"; exit 99; }

XEN_WORK=
XEN_QEMU_PID=
XEN_NAME=${XEN_NAME:-$(basename "$0" .sh)}
XEN_T0=$(date +%s)
xen_cleanup() {
    # The whole test (image, waiting for the QEMU lock, boot, checks):
    # tests/run-all.sh puts this line in its stage times.
    echo "xen test $XEN_NAME: $(( $(date +%s) - XEN_T0 ))s in all"
    if [ -n "$XEN_QEMU_PID" ] && kill -0 "$XEN_QEMU_PID" 2>/dev/null; then
        kill -KILL "$XEN_QEMU_PID" 2>/dev/null
        wait "$XEN_QEMU_PID" 2>/dev/null
    fi
    [ -n "$XEN_WORK" ] && rm -rf "$XEN_WORK"
    return 0
}
trap xen_cleanup EXIT
trap 'exit 1' INT TERM HUP

# last_line COMMAND...: the last line COMMAND prints, with COMMAND's exit
# status (a pipe into tail would report tail's: a build that skipped (77)
# or failed would become an empty image path).
last_line() {
    local out rc=0
    out=$("$@") || rc=$?
    printf '%s\n' "$out" | tail -1
    return "$rc"
}

xen_setup() {
    XEN_NAME=$1
    command -v qemu-system-x86_64 >/dev/null ||
        xen_skip "qemu-system-x86_64 is missing (Debian package qemu-system-x86; tests/install-deps.sh)"
    command -v flock >/dev/null || xen_skip "flock is missing (util-linux)"
    if ! mkdir -p "$XEN_CACHE" 2>/dev/null || [ ! -w "$XEN_CACHE" ]; then
        XEN_CACHE=$top_builddir/tests/xen/cache
        mkdir -p "$XEN_CACHE"
    fi
    local rc=0
    local b0
    b0=$(date +%s)
    XEN_IMG=$(last_line env XENBLKD_XEN_TIER="$XEN_TIER" bash "$XEN_SRC/build-image.sh" "$XEN_CACHE") || rc=$?
    [ "$rc" -eq 77 ] && exit 77
    [ "$rc" -eq 0 ] || xen_die "building the dom0 image failed (rc=$rc)"
    echo "image (tier $XEN_TIER): $XEN_IMG, ready in $(( $(date +%s) - b0 ))s"
    xen_profile_image

    XEN_WORK=$(mktemp -d "$top_builddir/tests/xen/$XEN_NAME.XXXXXX")
    XEN_SHARE=$XEN_WORK/share
    XEN_RES=$XEN_SHARE/results
    mkdir -p "$XEN_RES"
    # The guest's /init is appended as a second cpio archive: the kernel
    # unpacks concatenated archives in order.  The guest kernel and the
    # initramfs base are in dom0's image (/var/lib/xbd, build-image.sh):
    # only this small archive goes through the share; dom0-init.sh joins it
    # to the base.
    local init=$XEN_WORK/initcpio
    mkdir -p "$init"
    cp "$XEN_SRC/domU-init.sh" "$init/init"
    chmod 755 "$init/init"
    ( cd "$init" && echo init | cpio -o -H newc --quiet ) >"$XEN_SHARE/domU-init.cpio"
    cp "$XEN_SRC/dom0-init.sh" "$XEN_SRC/dom0-lib.sh" "$XEN_SHARE/"
    cp "$XEN_SRC/$XEN_NAME.dom0" "$XEN_SHARE/scenario.dom0"
    [ "$XEN_PROFILE" = 1 ] && cp "$XEN_SRC/dom0-profile.sh" "$XEN_SHARE/"

    # The xenblkd under test, installed the way a user would.  When that
    # fails the boot still runs (the kernel blkback and qdisk baselines stay
    # useful) and every xenblkd check fails.
    if ! make -s -C "$top_builddir" install DESTDIR="$XEN_SHARE/root" >"$XEN_RES/install.log" 2>&1; then
        tail -20 "$XEN_RES/install.log"
        echo "make install DESTDIR=... failed in $top_builddir: xenblkd checks will fail"
        rm -rf "$XEN_SHARE/root"
    fi
}

# The profile mode (XENBLKD_XEN_PROFILE=1, README "Profile mode"): dom0's
# image gets perf and strace (profile-image.sh, a layer over the default
# entry, which stays as it is) and the share dom0-profile.sh, which a
# scenario that knows it (backends.dom0) sources.  Off, nothing changes.
XEN_PROFILE=${XENBLKD_XEN_PROFILE:-0}
xen_profile_image() {
    [ "$XEN_PROFILE" = 1 ] || return 0
    local rc=0 b0
    b0=$(date +%s)
    XEN_IMG=$(last_line bash "$XEN_SRC/profile-image.sh" "$XEN_CACHE" "$XEN_IMG") || rc=$?
    [ "$rc" -eq 77 ] && exit 77
    [ "$rc" -eq 0 ] || xen_die "adding the profile tools to the dom0 image failed (rc=$rc)"
    echo "profile mode: image $XEN_IMG, ready in $(( $(date +%s) - b0 ))s"
}

# xen_build_variant SUFFIX DEST: a second xenblkd for upgrade tests, built
# from the same sources as the tree under test but released as version
# "<version>SUFFIX": a copy of the tree (make distdir) whose AC_INIT names
# the new version, autoreconf'd, configured with the build tree's own
# options (config.status --config: a sanitizer build gets a sanitizer
# variant), only the daemon built.  Its log: results/variant-build.log.
xen_build_variant() {
    local suffix=$1 dest=$2 dir=$XEN_WORK/variant t0
    t0=$(date +%s)
    ( set -e
      mkdir -p "$dir"
      make -s -C "$top_builddir" distdir distdir="$dir/src"
      sed -i "s/^AC_INIT(\[xenblkd\], \[\([^]]*\)\]/AC_INIT([xenblkd], [\1$suffix]/" "$dir/src/configure.ac"
      grep "^AC_INIT" "$dir/src/configure.ac"
      grep -q "^AC_INIT(.*$suffix\]" "$dir/src/configure.ac"
      cd "$dir/src"
      autoreconf -fi
      mkdir -p "$dir/build"
      cd "$dir/build"
      eval "\"$dir/src/configure\" $("$top_builddir/config.status" --config)"
      make -j"$(nproc)" src/xenblkd
      cp src/xenblkd "$dest"
    ) >"$XEN_RES/variant-build.log" 2>&1
    local rc=$?
    echo "variant xenblkd (version suffix $suffix): rc=$rc in $(( $(date +%s) - t0 ))s"
    [ "$rc" -eq 0 ] || tail -20 "$XEN_RES/variant-build.log"
    return "$rc"
}

# xen_boot SECONDS: one boot; returns when dom0 powered off or the timeout hit.
xen_boot() {
    local secs=$1 t0 rc
    exec 8>"$XEN_LOCK"
    echo "waiting for the QEMU lock $XEN_LOCK"
    flock 8
    t0=$(date +%s)
    echo "booting Xen (timeout ${secs}s), serial log: $XEN_RES/serial.log"
    # conring_size=1M: Xen's console ring holds a whole grant table dump
    # (`xl debug-keys g`, restart.dom0) even when a guest's ~1000
    # persistent grants are mapped; the default 16 KiB would lose its
    # start.  Not part of the image: the cache key does not change.
    qemu-system-x86_64 -accel "tcg,thread=$XEN_TCG_THREAD" -cpu "$XEN_QEMU_CPU" -M pc -m "$XEN_QEMU_MEM" -smp 2 \
        -display none -monitor none -serial "file:$XEN_RES/serial.log" -no-reboot -net none \
        -kernel "$XEN_IMG/xen" \
        -append "console=com1 com1=115200,8n1 dom0_mem=$XEN_DOM0_MEM,max:$XEN_DOM0_MEM dom0_max_vcpus=2 smap=0 bootscrub=false conring_size=1M $XEN_XEN_ARGS" \
        -initrd "$XEN_IMG/vmlinuz root=/dev/vda rw console=hvc0 earlyprintk=xen init=/sbin/xbd-init,$XEN_IMG/initrd.img" \
        -drive "file=$XEN_IMG/rootfs.ext4,if=virtio,format=raw,cache=unsafe,snapshot=on" \
        -virtfs "local,path=$XEN_SHARE,mount_tag=share,security_model=none" \
        </dev/null >"$XEN_WORK/qemu.out" 2>&1 &
    XEN_QEMU_PID=$!
    local end=$(( t0 + secs )) beat last_beat= since=$t0
    while kill -0 "$XEN_QEMU_PID" 2>/dev/null; do
        if [ "$(date +%s)" -ge "$end" ]; then
            echo "TIMEOUT: QEMU still running after ${secs}s: killed"
            kill -KILL "$XEN_QEMU_PID"
            echo timeout >"$XEN_RES/boot-timeout"
            break
        fi
        # dom0's heartbeat: its scenario runs under `set -x` into dom0.log,
        # and every wait loop traces at least once a second.  dom0 was seen
        # to wedge under TCG (nothing more on the serial line or the share,
        # QEMU spinning): a boot silent for XEN_WEDGE seconds is killed at
        # once instead of at the hard timeout.
        beat=$(stat -c %s "$XEN_RES/dom0.log" "$XEN_RES/serial.log" 2>/dev/null | tr '\n' ' ')
        [ "$beat" = "$last_beat" ] || { last_beat=$beat; since=$(date +%s); }
        if [ $(( $(date +%s) - since )) -ge "${XENBLKD_XEN_WEDGE:-600}" ]; then
            echo "WEDGED: dom0 silent for ${XENBLKD_XEN_WEDGE:-600}s: QEMU killed"
            kill -KILL "$XEN_QEMU_PID"
            echo wedged >"$XEN_RES/boot-timeout"
            break
        fi
        sleep 1
    done
    wait "$XEN_QEMU_PID"
    rc=$?
    XEN_QEMU_PID=
    flock -u 8
    exec 8>&-
    XEN_BOOT_SECS=$(( $(date +%s) - t0 ))
    echo "QEMU exited with status $rc after ${XEN_BOOT_SECS}s"
    cat "$XEN_WORK/qemu.out"
    # Keep the results beside the test's log for people to read.
    local keep=$top_builddir/tests/xen/$XEN_NAME.results
    rm -rf "$keep"
    cp -a "$XEN_RES" "$keep"
    # From here on the checks read, and perf_table writes, the kept copy.
    XEN_RES=$keep
    echo "results: $keep"
    [ -f "$XEN_RES/scenario.rc" ] || { tail -40 "$XEN_RES/serial.log"; tail -40 "$XEN_RES/dom0.log" 2>/dev/null; }
    env_crashes
}

# env_crashes: the processes that died of a signal in dom0 or a guest during
# the boot (kernel "segfault at" lines, ld.so assertions, glibc aborts),
# written to results/env-crashes.txt and shown.  Under TCG they happen in
# programs that have nothing to do with the test (sleep, awk, xl, QEMU's
# qdisk): they are the environment's, and the checks say which step they
# broke, if any.  A crash of xenblkd itself is called out.
env_crashes() {
    local f=$XEN_RES/env-crashes.txt
    grep -haE 'segfault at|general protection|Inconsistency detected by ld.so|malloc\(\)|double free|corrupted|XBD-CRASH|XBD-DONE crashed|invalid opcode' \
        "$XEN_RES/serial.log" "$XEN_RES"/*/console.log "$XEN_RES"/xen-logs/qemu-dm-*.log 2>/dev/null |
        sed 's/^ *//' | sort -u >"$f"
    echo "--- processes that crashed during the boot: $(wc -l <"$f")"
    sed 's/^/    /' "$f"
    if grep -q 'xenblkd\[' "$f"; then
        echo "    ^^^ xenblkd itself crashed"
    fi
}

# --- assertions on the results ------------------------------------------------
XEN_FAILS=0
XEN_FAILED=
pass() { echo "PASS: $*"; }
# Failed checks are listed again at the end (xen_finish): CI shows only a
# log's tail, and the checks come long before it.
fail() {
    echo "FAIL: $*"
    XEN_FAILS=$((XEN_FAILS + 1))
    XEN_FAILED+="    $*"$'\n'
}
# check DESCRIPTION COMMAND...: pass when COMMAND succeeds.
check() {
    local what=$1
    shift
    if "$@"; then pass "$what"; else fail "$what"; fi
}
# has FILE EXTENDED-REGEX: the result file exists and matches.
has() { [ -f "$XEN_RES/$1" ] && grep -qE "$2" "$XEN_RES/$1"; }
hasnt() { [ -f "$XEN_RES/$1" ] && ! grep -qE "$2" "$XEN_RES/$1"; }
# show FILE: put a result file into the test log.
show() { echo "--- $1"; sed 's/^/    /' "$XEN_RES/$1" 2>/dev/null || echo "    (missing)"; }

# The boot itself reached the end of the scenario.
check_boot() {
    check "dom0 ran the scenario to the end" test -f "$XEN_RES/scenario.rc"
    check "no boot timeout" test ! -f "$XEN_RES/boot-timeout"
}

# check_verified GUEST DISK: the guest's fio verify of DISK passed.
check_verified() {
    check "$1: fio verify of $2 passed" has "$1/events.txt" "^XBD-VERIFY disk=$2 rc=0"
    grep -hE 'err=|verify:|IOPS=|crc32c' "$XEN_RES/$1/fio-verify-$2.txt" 2>/dev/null | sed 's/^/    /' | head -12
}

# blkfront_line GUEST DISK: what blkfront printed when DISK connected.
blkfront_line() { grep -hE "blkfront: $2: " "$XEN_RES/$1/describe-$2.txt" 2>/dev/null | tail -1; }

# summary: per guest, what blkfront printed about its disks and the fio
# summaries of its verify runs, in results/summary.txt (the evidence a
# person reads first; the full files stay beside it).
summary() {
    local g
    for g in "$XEN_RES"/*/; do
        [ -f "$g/events.txt" ] || continue
        echo "== $(basename "$g")"
        grep -hE 'blkfront: xvd|blkfront.*still in use|xen_blkfront|blkif' "$g"/dmesg.txt "$g"/describe-*.txt 2>/dev/null |
            sed 's/^ *\[[ 0-9.]*\] //' | sort -u | sed 's/^/  dmesg: /'
        grep -h '^XBD-' "$g/events.txt" | grep -v '^XBD-PERF' | sed 's/^/  event: /'
        local f
        for f in "$g"/fio-verify-*.txt; do
            [ -f "$f" ] || continue
            grep -hE '^ *(READ|WRITE):|err=|verify' "$f" | sed "s|^ *|  $(basename "$f"): |"
        done
    done >"$XEN_RES/summary.txt"
}

xen_finish() {
    summary
    echo "boot took ${XEN_BOOT_SECS:-?}s"
    if [ "$XEN_FAILS" -gt 0 ]; then
        echo "$XEN_FAILS check(s) failed:"
        printf '%s' "$XEN_FAILED"
        grep -h 'timeout waiting\|gone or shut down\|still present' "$XEN_RES/events.txt" 2>/dev/null | sed 's/^/    dom0: /'
        # what the guests said about runs that failed, and any disk given up
        local g
        for g in "$XEN_RES"/*/console.log; do
            [ -f "$g" ] || continue
            grep -hE '^XBD-(ROUND|VERIFY|PERF) .*rc=[1-9]|abandoned|declared dead|XBD-CRASH' "$g" |
                head -8 | sed "s|^|    $(basename "$(dirname "$g")"): |"
        done
        exit 1
    fi
    exit 0
}

# perf_table GUEST:DISK:BACKEND...: one Markdown table of the XBD-PERF lines
# the guests printed: per backend and job the mean IOPS and MiB/s over the
# repetitions, and the ratio to the reference disk (qdisk) measured in the
# same guest, alternating with it.  TCG distorts absolute numbers; the
# ratios are what can be compared.  Written to results/perf-table.md.
perf_table() {
    local spec g d b
    for spec in "$@"; do
        IFS=: read -r g d b <<<"$spec"
        sed -n "s/^XBD-PERF disk=$d /guest=$g backend=$b /p" "$XEN_RES/$g/events.txt" 2>/dev/null
    done | awk '
        { for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
          k = v["backend"] SUBSEP v["job"]
          if (v["rc"] != 0) { bad[k]++; next }
          n[k]++; iops[k] += v["iops"]; kib[k] += v["kib_s"]
          guest[v["backend"]] = v["guest"]; jobs[v["job"]] = 1; be[v["backend"]] = 1 }
        END {
          print "| backend | guest | job | IOPS | MiB/s | IOPS / qdisk in the same guest |"
          print "|---|---|---|---:|---:|---:|"
          for (b in be) for (j in jobs) {
              k = b SUBSEP j
              if (!n[k]) { printf "| %s | %s | %s | failed | failed | |\n", b, guest[b], j; continue }
              # the reference is the qdisk disk of the same guest
              r = "qdisk@" guest[b]; rk = r SUBSEP j
              ratio = (n[rk] && iops[rk]) ? sprintf("%.2f", (iops[k] / n[k]) / (iops[rk] / n[rk])) : "-"
              printf "| %s | %s | %s | %d | %.1f | %s |\n", b, guest[b], j, iops[k] / n[k], kib[k] / n[k] / 1024, ratio
          }
        }' | { read -r h1; read -r h2; echo "$h1"; echo "$h2"; sort; } >"$XEN_RES/perf-table.md"
    cat "$XEN_RES/perf-table.md"
}
