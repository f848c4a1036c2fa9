#!/bin/bash
# Every operation in every ring ABI, with persistent grants on and off and
# indirect descriptors on and off, through the reference frontend, with the
# data checked on both sides:
# - fill: sequential writes of a new generation (all indirect with
#   indirect on, at most 11 segments with it off), then the backing file is
#   read directly and must hold exactly that generation;
# - readcheck (indirect on): full-size reads, every one of them indirect,
#   each sector checked;
# - mixed: reads (checked against the fill), writes, FLUSH_DISKCACHE and
#   DISCARD at random;
# - WRITE_BARRIER carrying data, then a flush, read back, and the file
#   checked.
# The x86_32 and x86_64 layouts (which differ for indirect and discard
# requests) get all four grant modes; native (= x86_64 here) and no protocol
# key (= x86_32, as Linux blkback and QEMU assume) get two each.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
source "$top_srcdir/tests/daemon/matrix-lib.sh"
xsim_start
xsim_daemon --kinds vbd3
img=$(make_disk datapath.img 8)
vbd3_disk 5 51712 "$img"
span=2097152

gen=0
config() {  # config PROTOCOL persistent|copy indirect|direct
    local proto=$1 grants=$2 ind=$3 name abi key bs nreq
    local -a args=(--vdev 51712 --protocol "$proto")
    gen=$((gen + 1))
    name=$proto-$grants-$ind
    [ "$grants" = copy ] && args+=(--no-persistent)
    bs=128k
    [ "$ind" = direct ] && args+=(--no-indirect) && bs=44k
    nreq=$(((span / 1024 + ${bs%k} - 1) / ${bs%k}))
    # The protocol key written (Xen's protocols.h: "native" is the
    # host's own name, x86_64-abi here) and the layout used.
    case $proto in
    none) key=None abi=x86_32-abi ;;
    native) key=x86_64-abi abi=x86_64-abi ;;
    *) key=$proto abi=$proto ;;
    esac
    fe "$name-fill" 5 "${args[@]}" --workload fill --gen "$gen" --span "$span" --bs "$bs" --close
    js_defer "$name-fill" "d['negotiated']['persistent']" "$([ "$grants" = copy ] && echo False || echo True)" \
        "d['negotiated']['indirect']" "$([ "$ind" = direct ] && echo False || echo True)" \
        "d['negotiated']['protocol']" "$key" \
        "d['requests']['write']" "$nreq" \
        "d['requests']['indirect']" "$([ "$ind" = direct ] && echo 0 || echo "$nreq")"
    pattern_check "$img" "$gen" --span "$span"
    if [ "$ind" = indirect ]; then
        xfe "$name-readcheck" readcheck --domid 5 "${args[@]}" --gens "$gen" --span "$span" --bs "$bs"
        check "$name: every read indirect" \
            [ "$(xfe_count "$name-readcheck" indirect)" = "$(xfe_count "$name-readcheck" read)" ]
        check "$name: reads made" [ "$(xfe_count "$name-readcheck" read)" = 16 ]
    fi
    fe "$name-mixed" 5 "${args[@]}" --workload mixed --expect-gen "$gen" --span "$span" --bs "$bs" \
        --count 120 --seed "$gen" --close
    js_defer "$name-mixed" "d['negotiated']['ring_abi']" "$abi" \
        "min(d['requests'][op] for op in ('read', 'write', 'flush', 'discard')) > 0" True \
        "d['responses']['okay'] == sum(d['requests'][op] for op in ('read', 'write', 'flush', 'discard'))" True
}

for proto in x86_32-abi x86_64-abi; do
    for grants in persistent copy; do
        for ind in indirect direct; do
            config "$proto" "$grants" "$ind"
        done
    done
done
config native persistent indirect
config native copy direct
config none persistent direct
config none copy indirect

# WRITE_BARRIER with data (11 segments at most: never indirect), in both
# layouts, with and without persistent grants.
for proto in x86_32-abi x86_64-abi; do
    gen=$((gen + 1))
    xfe "barrier-$proto" barrier --domid 5 --vdev 51712 --protocol "$proto" --gen "$gen" --span "$span"
    check "barriers sent ($proto)" [ "$(xfe_count "barrier-$proto" barrier)" -ge $((span / 45056)) ]
    pattern_check "$img" "$gen" --span "$span"
done
gen=$((gen + 1))
xfe barrier-copy barrier --domid 5 --vdev 51712 --no-persistent --gen "$gen" --span "$span"
pattern_check "$img" "$gen" --span "$span"
js_check_all
exit 0
