# Sourced by tools/cross_conformance.sh and tools/web_check.sh.
# `bound N`: a step's time bound in seconds, N, or less where .ci/run's deadline
# (WGCONV_CI_DEADLINE, seconds since the epoch) leaves less (at least 30), so that a slow or
# hung step fails with its log before CI's own limit kills the whole run without one.
bound() {
    local n="$1"
    if [ -n "${WGCONV_CI_DEADLINE:-}" ]; then
        local left=$((WGCONV_CI_DEADLINE - $(date +%s)))
        [ "$left" -ge "$n" ] || n=$((left > 30 ? left : 30))
    fi
    echo "$n"
}
