# Shared by the whole-process benchmark scripts (bench_step_vs_peer.sh, bench_biggan_sampling.sh,
# bench_builds.sh): timing a command, and the medians of their results.tsv. Sourced, not run.
#
# results.tsv: a header line, then one line per run: variant <TAB> repeat <TAB> wall_s <TAB>
# max_rss_kb, then any columns; one headed images_per_s gets medians too.

# bench_timer_init PYTHON: picks GNU /usr/bin/time -v, or (where it is missing, or TIMER=python) a
# Python wrapper reading resource.getrusage; sets bench_timer (its description) and bench_python.
bench_timer_init() {
  bench_python="${1:-python3}"
  if [[ "${TIMER:-}" != python ]] && [[ -x /usr/bin/time ]] && /usr/bin/time -v true 2>/dev/null; then
    bench_timer="/usr/bin/time -v"
  else
    bench_timer="$bench_python resource wrapper"
  fi
}

# timed LOG TIMES CMD...: runs CMD with its stdout and stderr in LOG, the timer's report in TIMES;
# prints "WALL_S MAX_RSS_KB". Fails (naming LOG) when CMD fails.
timed() {
  local log="$1" times="$2"
  shift 2
  if [[ "${bench_timer:-/usr/bin/time -v}" == /usr/bin/time* ]]; then
    /usr/bin/time -v -o "$times" "$@" > "$log" 2>&1 || { echo "failed: $* (log: $log)" >&2; tail -5 "$log" >&2; return 1; }
    awk -F': ' '
      /Elapsed \(wall clock\) time/ { n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; wall = s }
      /Maximum resident set size/ { rss = $2 }
      END { printf "%.2f %d\n", wall, rss }' "$times"
  else
    "$bench_python" - "$times" "$@" > "$log" 2>&1 <<'PY' || { echo "failed: $* (log: $log)" >&2; tail -5 "$log" >&2; return 1; }
import resource, subprocess, sys, time
start = time.perf_counter()
code = subprocess.call(sys.argv[2:])
wall = time.perf_counter() - start
with open(sys.argv[1], 'w') as f:
    f.write('Elapsed: %.3f\nMaximum resident set size (kbytes): %d\n' %
            (wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(code)
PY
    awk -F': ' '/Elapsed/ { wall = $2 } /Maximum resident/ { rss = $2 } END { printf "%.2f %d\n", wall, rss }' "$times"
  fi
}

# bench_record RESULTS VARIANT REPEAT WALL_S RSS_KB IMAGES_PER_S: appends the run to RESULTS
# (variant, repeat, wall_s, max_rss_kb, images_per_s) and prints it.
bench_record() {
  local results="$1" variant="$2" repeat="$3" wall="$4" rss="$5" ips="$6"
  printf '%s\t%d\t%s\t%s\t%s\n' "$variant" "$repeat" "$wall" "$rss" "$ips" >> "$results"
  printf '  %-14s repeat %d: %8.2f s  %8.2f images/s in-process  %8.0f MiB\n' "$variant" "$repeat" "$wall" "$ips" \
    "$(awk -v k="$rss" 'BEGIN { print k / 1024 }')"
}

# bench_medians RESULTS MEDIANS VARIANT...: prints, for each VARIANT in that order, the number of runs
# and the median, min and max wall seconds, the median peak RSS (MiB) and, where results.tsv has a
# fifth column, the median images/s; writes "variant <TAB> wall_s <TAB> rss_kb <TAB> images_per_s"
# medians to MEDIANS for the caller's ratios.
bench_medians() {
  local results="$1" medians="$2"
  shift 2
  awk -F'\t' -v order="$*" -v medians="$medians" '
    function median(a, n,   i, j, t) {
      for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
      return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    NR == 1 { for (i = 1; i <= NF; i++) if ($i == "images_per_s") ips = i; next }
    { k = $1; c[k]++; w[k, c[k]] = $3; m[k, c[k]] = $4; p[k, c[k]] = (ips ? $ips : "") }
    END {
      printf "%-24s %5s %12s %10s %10s %16s %16s\n", "variant", "runs", "median s", "min s", "max s", "median RSS MiB", "median img/s"
      printf "variant\twall_s\trss_kb\timages_per_s\n" > medians
      n = split(order, names, " ")
      for (v = 1; v <= n; v++) {
        k = names[v]
        delete a; delete b; delete q; lo = 1e30; hi = 0; has_ips = 1
        for (i = 1; i <= c[k]; i++) {
          a[i] = w[k, i]; b[i] = m[k, i]; q[i] = p[k, i]
          if (q[i] == "") has_ips = 0
          if (a[i] < lo) lo = a[i]; if (a[i] > hi) hi = a[i]
        }
        mw = median(a, c[k]); mr = median(b, c[k]); mp = has_ips ? median(q, c[k]) : ""
        printf "%-24s %5d %12.2f %10.2f %10.2f %16.0f %16s\n", k, c[k], mw, lo, hi, mr / 1024, mp == "" ? "-" : sprintf("%.2f", mp)
        printf "%s\t%s\t%s\t%s\n", k, mw, mr, mp > medians
      }
    }' "$results"
}

# bench_median_of MEDIANS VARIANT COLUMN: one value (wall_s, rss_kb or images_per_s) of MEDIANS.
bench_median_of() {
  awk -F'\t' -v k="$2" -v col="$3" '
    NR == 1 { for (i = 1; i <= NF; i++) if ($i == col) c = i; next }
    $1 == k { print $c }' "$1"
}
