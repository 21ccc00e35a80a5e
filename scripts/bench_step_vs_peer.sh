#!/usr/bin/env bash
# Times LongGAN's training steps against BigGAN-PyTorch with the official SMYRF layer (issue 33).
#
# What: on the CPU, at 64x64, ch 16, batch 16, G attention at 64x64 (4,096 queries), no D
# attention, STEPS (35) steps, 2 D steps per G step, runs four whole processes per repeat:
#   longgan train --data OUT/D.lgd --out OUT/runs/<variant>_rN --resolution 64 --ch 16 --batch 16 \
#       --g-attn 64 --d-attn= --attention dense|smyrf:SMYRF --steps STEPS --device cpu
#   scripts/peer_step.py BIGGAN SMYRF_DIR --attention dense|smyrf --steps STEPS \
#       --hashes 2 --q-cluster 512 --k-cluster 128
# (longgan_dense, peer_dense, longgan_smyrf, peer_smyrf), REPEATS (3) times, interleaved: the order
# rotates by one each repeat, so that a drift of the machine falls on every variant. Each runs
# under /usr/bin/time -v. The data (`longgan prepare --synthetic 2048 --resolution 64`) is made
# once, before the first timed run. Prints per run and as medians: the whole process's wall
# seconds; images/s as each reports it in-process (real images through D per second, batch x
# D steps x steps over the training steps' time: LongGAN's last metrics.jsonl line's
# images_per_second, the peer's images_per_s=); the whole-process images/s (batch x 2 x STEPS over
# the wall seconds); peak RSS; and the LongGAN/peer ratios of each (attention type by attention
# type). The whole-process times include start-up: LongGAN's final checkpoint, the peer's Python
# imports and model construction; the in-process images/s leave them out.
#
# Why: issue 33 asks how LongGAN's step speed compares with the SMYRF paper's own code.
# scripts/peer_step.py documents how faithfully the peer is BigGAN-PyTorch's training step and the
# fork's SMYRF wiring.
#
# How to run it (not run by CI; it fetches nothing: the two checkouts are fetched for the purpose;
# run it on a quiet machine, the timings are the point):
#   git clone https://github.com/ajbrock/BigGAN-PyTorch /tmp/biggan-pytorch
#   git clone https://github.com/giannisdaras/smyrf /tmp/smyrf
#   scripts/bench_step_vs_peer.sh /tmp/biggan-pytorch /tmp/smyrf [OUT]
#       OUT  where the data, runs, logs and results.tsv go (default: a new directory under /tmp)
#   Environment: REPEATS (3), STEPS (35), LONGGAN (build/bin/longgan of this checkout),
#   PYTHON (the peer's interpreter: /root/.cache/longgan/venv/bin/python where it exists, else
#   python3; it needs torch, numpy and tqdm, which smyrf imports), SMYRF
#   (hashes=2,q_cluster=512,k_cluster=128), LONGGAN_ARGS (extra `longgan train` flags, none).
#   LibTorch and torch use every core unless OMP_NUM_THREADS says otherwise; the output records it.
# A quick check of the script itself (a minute): STEPS=2 REPEATS=1 OMP_NUM_THREADS=1 scripts/...
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ $# -lt 2 || $# -gt 3 || "$1" == -h || "$1" == --help ]]; then
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
  exit 2
fi
biggan="$1"
smyrf_dir="$2"
out="${3:-$(mktemp -d /tmp/bench_step_vs_peer.XXXXXX)}"
repeats="${REPEATS:-3}"
steps="${STEPS:-35}"
longgan="${LONGGAN:-$here/../build/bin/longgan}"
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x /root/.cache/longgan/venv/bin/python ]]; then PYTHON=/root/.cache/longgan/venv/bin/python; else PYTHON=python3; fi
fi
smyrf_spec="${SMYRF:-hashes=2,q_cluster=512,k_cluster=128}"
read -r -a longgan_args <<< "${LONGGAN_ARGS:-}"

# The peer's SMYRF flags from the same spec.
hashes="$(sed -n 's/.*hashes=\([0-9]*\).*/\1/p' <<< "$smyrf_spec")"
q_cluster="$(sed -n 's/.*q_cluster=\([0-9]*\).*/\1/p' <<< "$smyrf_spec")"
k_cluster="$(sed -n 's/.*k_cluster=\([0-9]*\).*/\1/p' <<< "$smyrf_spec")"
[[ -n "$hashes" && -n "$q_cluster" && -n "$k_cluster" ]] \
  || { echo "SMYRF must give hashes, q_cluster and k_cluster (e.g. hashes=2,q_cluster=512,k_cluster=128)" >&2; exit 2; }

[[ -x "$longgan" ]] || { echo "no longgan at $longgan (set LONGGAN or build it)" >&2; exit 1; }
[[ -f "$biggan/BigGAN.py" ]] || { echo "$biggan: no BigGAN.py; give a BigGAN-PyTorch checkout" >&2; exit 1; }
[[ -f "$smyrf_dir/smyrf/torch/attn.py" ]] || { echo "$smyrf_dir: no smyrf/torch/attn.py; give a smyrf checkout" >&2; exit 1; }
[[ "$repeats" =~ ^[1-9][0-9]*$ ]] || { echo "REPEATS must be a positive integer" >&2; exit 2; }
[[ "$steps" =~ ^[1-9][0-9]*$ ]] || { echo "STEPS must be a positive integer" >&2; exit 2; }
mkdir -p "$out/runs" "$out/logs"
results="$out/results.tsv"
printf 'variant\trepeat\twall_s\tmax_rss_kb\timages_per_s\n' > "$results"

source "$here/bench_lib.sh"
bench_timer_init "$PYTHON"

echo "longgan: $longgan"
echo "peer: $PYTHON $here/peer_step.py $biggan $smyrf_dir ($(git -C "$biggan" rev-parse --short HEAD 2>/dev/null || echo '?'), smyrf $(git -C "$smyrf_dir" rev-parse --short HEAD 2>/dev/null || echo '?'))"
echo "64x64, ch 16, batch 16, G attention at 64, no D attention, $steps steps, SMYRF $smyrf_spec; $repeats repeat(s), interleaved"
if [[ -n "${OMP_NUM_THREADS:-}" ]]; then threads="$OMP_NUM_THREADS"; else threads="unset (all $(nproc) cores)"; fi
echo "OMP_NUM_THREADS: $threads; out: $out"

data="$out/D.lgd"
[[ -f "$data" ]] || "$longgan" prepare --synthetic 2048 --resolution 64 --output "$data" > "$out/logs/prepare.log" 2>&1 \
  || { echo "prepare failed; see $out/logs/prepare.log" >&2; exit 1; }

variants=(longgan_dense peer_dense longgan_smyrf peer_smyrf)
for ((r = 1; r <= repeats; r++)); do
  for ((i = 0; i < 4; i++)); do
    variant="${variants[(i + r - 1) % 4]}"
    attention="${variant#*_}"
    base="$out/logs/${variant}_r$r"
    if [[ $variant == longgan_* ]]; then
      spec=dense; [[ $attention == smyrf ]] && spec="smyrf:$smyrf_spec"
      run="$out/runs/${variant}_r$r"
      rm -rf "$run"
      cmd=("$longgan" train --data "$data" --out "$run" --resolution 64 --ch 16 --batch 16 --g-attn 64 --d-attn= \
           --attention "$spec" --steps "$steps" --device cpu "${longgan_args[@]}")
    else
      cmd=("$PYTHON" "$here/peer_step.py" "$biggan" "$smyrf_dir" --attention "$attention" --steps "$steps" \
           --hashes "$hashes" --q-cluster "$q_cluster" --k-cluster "$k_cluster")
    fi
    read -r wall rss < <(timed "$base.log" "$base.time" "${cmd[@]}") \
      || { echo "run $variant r$r failed; see $base.log" >&2; exit 1; }
    [[ -n "${wall:-}" && -n "${rss:-}" ]] || { echo "run $variant r$r: no timing in $base.time" >&2; exit 1; }
    if [[ $variant == longgan_* ]]; then
      ips="$(tail -n 1 "$run/metrics.jsonl" | sed -n 's/.*"images_per_second":\([0-9.eE+-]*\).*/\1/p')"
    else
      ips="$(sed -n 's/.*peer_step: .* images_per_s=\([0-9.]*\).*/\1/p' "$base.log" | tail -n 1)"
    fi
    [[ -n "$ips" ]] || { echo "run $variant r$r: no images/s in its output (see $base.log)" >&2; exit 1; }
    bench_record "$results" "$variant" "$r" "$wall" "$rss" "$ips"
  done
done

echo
bench_medians "$results" "$out/medians.tsv" "${variants[@]}"
echo "(img/s: in-process, as each reports it; whole-process: $((16 * 2 * steps)) images over the median wall seconds)"
echo
echo "LongGAN/peer (medians; wall < 1 and images/s > 1 mean LongGAN is faster):"
for attention in dense smyrf; do
  get() { bench_median_of "$out/medians.tsv" "$1_$attention" "$2"; }
  awk -v t="$attention" -v wl="$(get longgan wall_s)" -v wp="$(get peer wall_s)" -v pl="$(get longgan images_per_s)" \
      -v pp="$(get peer images_per_s)" -v rl="$(get longgan rss_kb)" -v rp="$(get peer rss_kb)" \
      'BEGIN { printf "  %-5s wall %.3f  img/s (wall) %.3f  img/s (in-process) %.3f  peak RSS %.3f\n", t, wl / wp, wp / wl, pl / pp, rl / rp }'
done
echo "raw: $results"
