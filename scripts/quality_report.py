#!/usr/bin/env python3
"""The report of scripts/quality.sh: results.json, README.md (tables and a plain reading), fid.png
and grids.png.

Reads only what the runs wrote: each run's metrics.jsonl (FID/KID and structure scores of G_ema
during training, the attention weight gamma and branch ratio every --log-every steps), its train
logs (images/s from the progress lines) and /usr/bin/time reports (peak memory, wall time), the swap
reports (with the ablation `none`) and the noise-floor reports of `longgan metrics`, and the final
sample grids. Fields that older builds did not write are shown as '-'.
"""
import argparse
import datetime
import glob
import json
import os
import platform
import re
import statistics
import sys


def slug(spec):
    """The run's folder name, as quality.sh makes it."""
    return spec.replace(":", "_").replace("=", "_").replace(",", "_")


def type_of(spec):
    return spec.split(":", 1)[0]


STRUCTURE = ("mirror_error", "mirror_kept", "corner_error", "corner_kept")
ATTENTION_KEY = re.compile(r"^attention/([GD])/(.+)/(gamma|branch_ratio)$")


def read_metrics(run_dir):
    """From metrics.jsonl: the evaluations [{step, fid, kid_mean, kid_std, mirror_error, ...}] (the
    last entry per step; structure scores None where the build did not write them) and the attention
    readings {"G/attention.3": [{step, gamma, branch_ratio}]} (every --log-every steps)."""
    points, attention = {}, {}
    path = os.path.join(run_dir, "metrics.jsonl")
    if not os.path.exists(path):
        return [], {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            entry = json.loads(line)
            step = entry.get("step")
            if "fid" in entry:
                point = {"step": step, "fid": entry["fid"], "kid_mean": entry.get("kid_mean"),
                         "kid_std": entry.get("kid_std")}
                for key in STRUCTURE:
                    point[key] = entry.get(key)
                points[step] = point
            for key, value in entry.items():
                m = ATTENTION_KEY.match(key)
                if m:
                    block = attention.setdefault("%s/%s" % (m.group(1), m.group(2)), {})
                    block.setdefault(step, {"step": step})[m.group(3)] = value
    curves = {name: [steps[s] for s in sorted(steps)] for name, steps in sorted(attention.items())}
    return [points[s] for s in sorted(points)], curves


# "step 50/3000 (1%)  25.0 img/s ..." (and the form without the percentage of earlier builds).
PROGRESS = re.compile(r"^step (\d+)/(\d+)(?: \(\d+%\))?\s+([0-9.]+) img/s")


def training_images_per_second(logs):
    """img/s of the first part that printed a progress line, its last one before its first
    evaluation (a line averages the training time of its part; logs of builds before the
    evaluations were left out of it counted them in, so reading before the first one works for
    both). A part stopped before its first line is passed over."""
    for log in logs:
        last = None
        with open(log) as f:
            for line in f:
                if line.startswith("step ") and ": FID " in line:
                    break
                m = PROGRESS.match(line)
                if m:
                    last = float(m.group(3))
        if last is not None:
            return last
    return None


def time_report(paths):
    """(peak RSS in MiB, wall seconds summed) over the calls behind /usr/bin/time -v reports. A call
    stopped before its report was written left the file empty, created when it started; its log
    was last written when it stopped, so that span counts (its work after the last checkpoint was
    done twice: real time spent)."""
    peak, wall = 0.0, 0.0
    for path in paths:
        with open(path) as f:
            text = f.read()
        m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
        if m:
            peak = max(peak, int(m.group(1)) / 1024.0)
        m = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([0-9:.]+)", text)
        if m:
            seconds = 0.0
            for p in m.group(1).split(":"):
                seconds = seconds * 60 + float(p)
            wall += seconds
        else:
            log = path[:-len(".time")] + ".log"
            if os.path.exists(log):
                wall += max(0.0, os.path.getmtime(log) - os.path.getmtime(path))
    return (peak or None), wall


def numbered(paths):
    return sorted(paths, key=lambda p: int(re.search(r"\.(\d+)\.[a-z]+$", p).group(1)))


def seeds_of(spec, seeds, seed_types):
    """The training seeds of a type, as quality.sh gives them: all for the types named in
    --seed-types (by type name or whole spec), else the first."""
    return seeds if any(t and (t == spec or t == type_of(spec)) for t in seed_types) else seeds[:1]


def run_name(spec, seed, seeds):
    """The run's folder and log prefix, as quality.sh makes it: the first seed's as before seeds."""
    return slug(spec) if seed == seeds[0] else "%s_seed%d" % (slug(spec), seed)


def run_label(spec, seed, seeds):
    return spec if seed == seeds[0] else "%s (seed %d)" % (spec, seed)


def short_label(label):
    """A run label's type name and seed: "smyrf:hashes=2 (seed 2)" -> "smyrf (seed 2)"."""
    m = re.search(r" \(seed \d+\)$", label)
    return type_of(label[:m.start()]) + m.group(0) if m else type_of(label)


def structure_of(report_part):
    """A metrics JSON's "structure" object as {mirror_error, ...}; None where absent (older builds)."""
    if not report_part:
        return None
    return {key: report_part.get(key) for key in STRUCTURE}


def spread_of(values):
    values = [v for v in values if v is not None]
    return (max(values) - min(values)) if len(values) >= 2 else None


def collect_runs(out, types, seeds, seed_types):
    runs = []
    planned = [(spec, seeds[0]) for spec in types]
    for seed in seeds[1:]:
        planned += [(spec, seed) for spec in types if seed in seeds_of(spec, seeds, seed_types)]
    for spec, seed in planned:
        name = run_name(spec, seed, seeds)
        run_dir = os.path.join(out, "runs", name)
        logs = numbered(glob.glob(os.path.join(out, "logs", name + ".train.*.log")))
        times = numbered(glob.glob(os.path.join(out, "logs", name + ".train.*.time")))
        if seed != seeds[0] and not os.path.isdir(run_dir) and not logs:
            continue  # a later seed not started (or a result folder from before seeds)
        curve, attention = read_metrics(run_dir)
        peak, wall = time_report(times)
        final = curve[-1] if curve else {}
        final_attention = {block: points[-1] for block, points in attention.items() if points}
        g_blocks = [block for block in final_attention if block.startswith("G/")]
        runs.append({
            "spec": spec,
            "type": type_of(spec),
            "seed": seed,
            "label": run_label(spec, seed, seeds),
            "run": os.path.relpath(run_dir, out),  # paths relative to --out: the folder can be moved
            "fid_curve": curve,
            "attention_curve": attention,
            "final_step": final.get("step"),
            "final_fid": final.get("fid"),
            "final_kid": final.get("kid_mean"),
            "final_structure": {key: final.get(key) for key in STRUCTURE},
            "best_fid": min(p["fid"] for p in curve) if curve else None,
            "final_attention": final_attention,
            # G's attention weight and branch ratio at the last reading (the first G block's; all in final_attention)
            "final_gamma": final_attention[g_blocks[0]].get("gamma") if g_blocks else None,
            "final_branch_ratio": final_attention[g_blocks[0]].get("branch_ratio") if g_blocks else None,
            "images_per_second": training_images_per_second(logs),
            "peak_rss_mib": peak,
            "train_wall_seconds": wall,
            "train_parts": len(times),
            "grid": ("grid_%s.png" % slug(spec)) if seed == seeds[0] else None,
        })
    return runs


def collect_swap(out, runs, seeds):
    """{run label: {sampled spec: cell}}, the run's own type first, the ablation `none` among them;
    and the real images' structure scores where a report has them."""
    swap, real = {}, None
    for r in runs:
        path = os.path.join(out, "logs", run_name(r["spec"], r["seed"], seeds) + ".swap.json")
        if not os.path.exists(path):
            continue
        with open(path) as f:
            report = json.load(f)
        real = real or structure_of(report.get("real_structure"))
        row = {}
        for entry in report["attention"]:  # the checkpoint's own type first, then the others, none last
            row[entry["attention"]] = {"fid": entry["fid"], "kid_mean": entry["kid_mean"],
                                       "mean_abs_pixel_difference": entry["mean_abs_pixel_difference"],
                                       "max_abs_pixel_difference": entry.get("max_abs_pixel_difference"),
                                       "structure": structure_of(entry.get("structure"))}
        swap[r["label"]] = row
    return swap, real


def noise_spec(types):
    """The noise floor's type: the dense one, else the first (as quality.sh picks it)."""
    return next((t for t in types if type_of(t) == "dense"), types[0])


def collect_noise(out, types):
    spec = noise_spec(types)
    noise = {"checkpoint": os.path.join("runs", slug(spec)), "spec": spec, "seeds": [], "fids": [], "structures": []}
    real = None
    for seed in (1, 2, 3):
        path = os.path.join(out, "logs", "%s.seed%d.json" % (slug(spec), seed))
        if os.path.exists(path):
            with open(path) as f:
                report = json.load(f)
            noise["seeds"].append(seed)
            noise["fids"].append(report["fid"])
            noise["structures"].append(structure_of(report.get("structure")))
            real = real or structure_of(report.get("real_structure"))
    if len(noise["fids"]) >= 2:
        noise["spread"] = max(noise["fids"]) - min(noise["fids"])
        noise["stdev"] = statistics.stdev(noise["fids"])
        noise["structure_spread"] = {key: spread_of([s[key] for s in noise["structures"] if s]) for key in STRUCTURE}
    return noise, real


def collect_seed_spread(runs):
    """Training noise: per spec trained with two or more seeds (to the same final step), the final
    FID and structure scores of each seed and their spread (max - min)."""
    spread = {}
    for spec in dict.fromkeys(r["spec"] for r in runs):
        mine = [r for r in runs if r["spec"] == spec and r["final_step"] is not None]
        if len(mine) < 2 or len({r["final_step"] for r in mine}) != 1:
            continue
        entry = {"seeds": [r["seed"] for r in mine], "final_step": mine[0]["final_step"],
                 "fid": [r["final_fid"] for r in mine]}
        entry["fid_spread"] = spread_of(entry["fid"])
        for key in STRUCTURE:
            entry[key] = [r["final_structure"][key] for r in mine]
            entry[key + "_spread"] = spread_of(entry[key])
        spread[spec] = entry
    return spread


def collect(out, types, steps, eval_n, seeds=(1,), seed_types=()):
    seeds = list(seeds)
    runs = collect_runs(out, types, seeds, list(seed_types))
    swap, real = collect_swap(out, runs, seeds)
    noise, noise_real = collect_noise(out, types)
    _, swap_wall = time_report(glob.glob(os.path.join(out, "logs", "*.swap.time")))
    _, noise_wall = time_report(glob.glob(os.path.join(out, "logs", "*.seed[0-9]*.time")))
    wall = {"training_seconds": sum(r["train_wall_seconds"] for r in runs), "swap_matrix_seconds": swap_wall,
            "noise_floor_seconds": noise_wall}
    wall["total_seconds"] = sum(wall.values())
    return runs, swap, noise, wall, collect_seed_spread(runs), real or noise_real


def relative_to_noise(difference, spread):
    """How a FID difference reads against the noise floor's spread."""
    if spread is None:
        return "no noise floor yet"
    if abs(difference) <= spread:
        return "within the noise floor (spread %.2f)" % spread
    return "%s by %.2f, %.1f times the noise floor's spread" % (
        "worse" if difference > 0 else "better", abs(difference), abs(difference) / max(spread, 1e-9))


# The scores compared between types: (key, name, lower is better, scale, unit)
SCORES = (("fid", "FID", True, 1.0, ""), ("mirror_error", "mirror error", True, 1.0, " levels"),
          ("corner_error", "corner error", True, 1.0, " levels"),
          ("mirror_kept", "mirror kept", False, 100.0, " points"), ("corner_kept", "corner kept", False, 100.0, " points"))


def final_value(run, key):
    return run["final_fid"] if key == "fid" else run["final_structure"].get(key)


def compare_types(a_runs, b_runs, noise, seed_spread, eval_n=None):
    """Scores of type B against type A (final values, mean over each type's seeds): a list of
    (name, phrase, verdict). The spread a difference is read against is the largest of the
    sample-noise spread and both types' training-seed spreads (for the kept shares at least one image
    in eval_n: the shares move in such steps). Verdict, of B against A: "better"/"worse" beyond
    twice that spread; "better?"/"worse?" beyond it but within twice it (a hint: two seeds give a
    rough spread); "within"; None where no spread is measured."""
    out = []
    for key, name, lower_better, scale, unit in SCORES:
        a = [final_value(r, key) for r in a_runs]
        b = [final_value(r, key) for r in b_runs]
        if not a or not b or any(v is None for v in a + b):
            continue
        ma, mb = statistics.mean(a) * scale, statistics.mean(b) * scale
        floors = []
        sample = noise.get("spread") if key == "fid" else (noise.get("structure_spread") or {}).get(key)
        if sample is not None:
            floors.append(("sample noise", sample * scale))
        for runs_ in (a_runs, b_runs):
            spread = seed_spread.get(runs_[0]["spec"], {}).get(key + "_spread" if key != "fid" else "fid_spread")
            if spread is not None:
                floors.append(("`%s`'s seeds" % runs_[0]["type"], spread * scale))
        d = mb - ma
        digits = 2 if key == "fid" else 1
        pct = "%" if scale == 100 else ""
        text = "%s %.*f%s against %.*f%s" % (name, digits, mb, pct, digits, ma, pct)
        if not floors:
            out.append((name, text + " (no spread measured)", None))
            continue
        if key.endswith("_kept") and eval_n:
            floors.append(("one image in %d" % eval_n, 100.0 / eval_n))
        floor_name, floor = max(floors, key=lambda f: f[1])
        if abs(d) <= floor:
            out.append((name, text + " (within the spread, %.*f%s of %s)" % (digits, floor, unit, floor_name), "within"))
            continue
        word = "better" if (d < 0) == lower_better else "worse"
        times = abs(d) / max(floor, 1e-9)
        out.append((name, text + " (%s by %.*f%s, %.1f times the largest spread, %.*f of %s%s)" % (
            word, digits, abs(d), unit, times, digits, floor, floor_name, "" if times > 2 else ": a hint"),
            word if times > 2 else word + "?"))
    return out


def seeds_text(runs_):
    return "seed %s" % runs_[0]["seed"] if len(runs_) == 1 else "mean of seeds %s" % ", ".join(str(r["seed"]) for r in runs_)


def verdict_summary(compared, subject):
    """'dense is better on FID (beyond twice the spreads); ...' from compare_types' verdicts."""
    groups = [("better", "%s is better on %%s (beyond twice the spreads)" % subject),
              ("worse", "%s is worse on %%s (beyond twice the spreads)" % subject),
              ("better?", "a hint that %s is better on %%s (beyond the spreads, within twice them)" % subject),
              ("worse?", "a hint that %s is worse on %%s (beyond the spreads, within twice them)" % subject),
              ("within", "no difference beyond the spreads on %s"),
              (None, "no spread measured for %s")]
    parts = []
    for verdict, words in groups:
        names = [n for n, _, v in compared if v == verdict]
        if names:
            parts.append(words % ", ".join(names))
    return "; ".join(parts) or "no scores"


def answer_of(compared, yes, no, neither, mixed="mixed"):
    verdicts = {v for _, _, v in compared}
    good, bad = "better" in verdicts, "worse" in verdicts
    if good and not bad:
        return yes
    if bad and not good:
        return no
    if good and bad:
        return mixed
    if verdicts & {"better?", "worse?"}:
        return neither + " (only hints beyond the spreads)"
    return neither


def reading(runs, swap, noise, seed_spread=None, eval_n=None):
    """Plain sentences: does attention help (dense against none), does SMYRF keep it (SMYRF against
    dense and none), the other types against dense, and what each swap and the ablation change."""
    seed_spread = seed_spread or {}
    lines = []
    spread = noise.get("spread")
    by_type = {}
    for r in runs:
        if r["final_step"] is not None:
            by_type.setdefault(r["type"], {}).setdefault(r["spec"], []).append(r)

    def runs_of(type_name):
        specs = by_type.get(type_name)
        return next(iter(specs.values())) if specs else None

    def same_step(x, y):
        return len({r["final_step"] for r in x + y}) == 1

    none, dense, smyrf = runs_of("none"), runs_of("dense"), runs_of("smyrf")
    helped = None
    if none and dense and same_step(none, dense):
        compared = compare_types(none, dense, noise, seed_spread, eval_n)
        gamma = [r["final_gamma"] for r in dense if r["final_gamma"] is not None]
        ratio = [r["final_branch_ratio"] for r in dense if r["final_branch_ratio"] is not None]
        weight = ""
        if gamma:
            weight = " `dense`'s G attention weight gamma ends at %s" % ", ".join(fmt_small(g) for g in gamma)
            if ratio:
                weight += " (its branch %s of the block's input)" % ", ".join("%.2g%%" % (100 * x) for x in ratio)
            weight += "."
        answer = answer_of(compared, "yes, beyond twice the spreads", "no: the control does better",
                           "not shown", "mixed: better on some scores, worse on others")
        helped = answer.startswith("yes")
        lines.append("- **Does attention help?** %s. `dense` against `none` (the control), step %d, %s against %s: %s.%s" % (
            answer, dense[0]["final_step"], seeds_text(dense), seeds_text(none),
            "; ".join(text for _, text, _ in compared) or "no scores", weight))
        lines.append("  In short: %s." % verdict_summary(compared, "dense"))
    if smyrf and dense and same_step(smyrf, dense):
        compared = compare_types(dense, smyrf, noise, seed_spread, eval_n)
        lost = [n for n, _, v in compared if v == "worse"]
        if helped is None:
            answer = "no control (`none`) to say whether there is help to keep"
        elif not helped:
            answer = "there is no help shown to keep"
        else:
            answer = "no, it falls behind dense on %s" % ", ".join(lost) if lost else "yes, within twice the spreads of dense"
        lines.append("- **Does SMYRF keep that help?** %s. `%s` against `dense`, step %d, %s against %s: %s." % (
            answer, smyrf[0]["spec"], smyrf[0]["final_step"], seeds_text(smyrf), seeds_text(dense),
            "; ".join(text for _, text, _ in compared) or "no scores"))
        lines.append("  In short: %s." % verdict_summary(compared, "SMYRF"))
        if none and same_step(smyrf, none):
            vs_none = compare_types(none, smyrf, noise, seed_spread, eval_n)
            lines.append("  SMYRF against `none`: %s (%s)." % (
                verdict_summary(vs_none, "SMYRF"), "; ".join(text for _, text, _ in vs_none)))
    base = dense or (runs_of(runs[0]["type"]) if runs and runs[0]["final_step"] is not None else None)
    if base:
        said = {base[0]["spec"]} | ({x[0]["spec"] for x in (none, smyrf) if x} if dense else set())
        for specs in by_type.values():
            for spec, mine in specs.items():
                if spec in said or not same_step(mine, base):
                    continue
                compared = compare_types(base, mine, noise, seed_spread, eval_n)
                lines.append("- `%s` against `%s`, step %d, %s against %s: %s (%s)." % (
                    spec, base[0]["spec"], mine[0]["final_step"], seeds_text(mine), seeds_text(base),
                    verdict_summary(compared, "`%s`" % type_of(spec)), "; ".join(text for _, text, _ in compared)))
    for trained, row in swap.items():
        own = next(iter(row))  # the checkpoint's own type comes first
        swaps = [(sampled, cell) for sampled, cell in row.items() if sampled != own]
        if swaps and all(cell.get("max_abs_pixel_difference") == 0 for _, cell in swaps):
            lines.append("- `%s`-trained: every other attention gives the same images (pixel difference 0): "
                         "its attention branch is 0." % short_label(trained))
            continue
        for sampled, cell in swaps:
            d = cell["fid"] - row[own]["fid"]
            what = ("ablation (`none`, attention blocks skipped)" if type_of(sampled) == "none"
                    else "sampled with `%s`" % type_of(sampled))
            rules = []
            s, o = cell.get("structure") or {}, row[own].get("structure") or {}
            for key, name in (("mirror_error", "mirror error"), ("corner_error", "corner error")):
                if s.get(key) is None or o.get(key) is None:
                    continue
                floor = (noise.get("structure_spread") or {}).get(key)
                change = s[key] - o[key]
                rules.append("%s %.1f against %.1f (%s)" % (
                    name, s[key], o[key], "no noise floor yet" if floor is None else
                    "within the noise floor, %.1f" % floor if abs(change) <= floor else
                    "%s by %.1f, %.1f times the noise floor's spread" % (
                        "worse" if change > 0 else "better", abs(change), abs(change) / max(floor, 1e-9))))
            rules = ("; " + ", ".join(rules)) if rules else ""
            lines.append("- `%s`-trained, %s: FID %.2f against %.2f with its own attention (%+.1f%%): %s; "
                         "pixels move by %.2f levels on average%s." % (
                             short_label(trained),
                             what, cell["fid"], row[own]["fid"], 100.0 * d / row[own]["fid"],
                             relative_to_noise(d, spread), cell["mean_abs_pixel_difference"], rules))
    if lines:
        if seed_spread:
            lines.append("- Spreads: the sample noise is one checkpoint's spread over three sample seeds; the training "
                         "noise is the spread over %s training seeds of the same type, measured for %s. Two seeds "
                         "give a rough, usually low, estimate of the training noise: a difference a little beyond it "
                         "is a hint, not a result." % (
                             " / ".join(sorted({str(len(e["seeds"])) for e in seed_spread.values()})),
                             ", ".join("`%s`" % type_of(spec) for spec in seed_spread)))
        else:
            lines.append("- The noise floor is the sampling noise of one checkpoint; the training noise (another training "
                         "seed) is not measured, one seed per type, and is usually larger.")
    return lines


def fmt(value, digits=1):
    return "-" if value is None else ("%.*f" % (digits, value))


def fmt_small(value):
    """gamma: 3 decimals, in exponent form below 0.001 (early in training)."""
    if value is None:
        return "-"
    return "%.3f" % value if value == 0 or abs(value) >= 0.001 else "%.1e" % value


def fmt_share(value):
    return "-" if value is None else "%.0f%%" % (100 * value)


def write_markdown(path, args, runs, swap, noise, wall, seed_spread, real):
    lines = ["# Does attention help, and does SMYRF keep it? (scripts/quality.sh)", ""]
    lines.append("Command: `%s`  " % args.command)
    lines.append("Machine: %s, %d CPU cores; written %s." % (
        platform.platform(), os.cpu_count() or 0, datetime.date.today().isoformat()))
    lines.append("Wall time %.1f h in all calls: training %.1f h (evaluations included), swap matrix %.0f min, "
                 "noise floor %.0f min; this call %.0f min." % (
                     wall["total_seconds"] / 3600.0, wall["training_seconds"] / 3600.0,
                     wall["swap_matrix_seconds"] / 60.0, wall["noise_floor_seconds"] / 60.0, args.elapsed / 60.0))
    lines.append("FID/KID of G_ema on %d samples against the whole data set; the long-range rules of the same "
                 "samples: mirror error (mean |left - mirrored right|, levels of 255) and corner error (mean "
                 "|bottom-right motif - top-left motif|), kept = share of images within the tolerance%s. "
                 "gamma: G's attention weight at the last reading; branch: ||gamma o(attn)|| / ||x||." % (
                     args.eval_n, "" if not real else " (real images: mirror error %s, corner error %s)" % (
                         fmt(real.get("mirror_error"), 1), fmt(real.get("corner_error"), 1))))
    lines.append("")
    lines.append("| attention | seed | final step | final FID | final KID | best FID | mirror error | mirror kept | "
                 "corner error | corner kept | G gamma | G branch | images/s (training) | peak RSS MiB | "
                 "training wall min (parts) |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in runs:
        st = r["final_structure"]
        lines.append("| `%s` | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s (%d) |" % (
            r["spec"], r["seed"], "-" if r["final_step"] is None else r["final_step"], fmt(r["final_fid"], 2),
            fmt(r["final_kid"], 4), fmt(r["best_fid"], 2), fmt(st["mirror_error"], 1), fmt_share(st["mirror_kept"]),
            fmt(st["corner_error"], 1), fmt_share(st["corner_kept"]), fmt_small(r["final_gamma"]),
            "-" if r["final_branch_ratio"] is None else "%.2g%%" % (100 * r["final_branch_ratio"]),
            fmt(r["images_per_second"]), fmt(r["peak_rss_mib"], 0), fmt(r["train_wall_seconds"] / 60.0, 1),
            r["train_parts"]))
    lines.append("")
    lines.append("images/s: real images through D per second of training (batch x D steps per step), from the "
                 "last progress line before the first evaluation; training wall: evaluations included, interrupted parts too.")
    lines.append("")
    if seed_spread or noise["fids"]:
        lines.append("Noise floors: the spread (max - min) of the final scores over training seeds (training noise) "
                     "and of one checkpoint over sample seeds (sample noise).")
        lines.append("")
        lines.append("| noise | runs | FID | mirror error | corner error | mirror kept | corner kept |")
        lines.append("|---|---|---|---|---|---|---|")
        for spec, e in seed_spread.items():
            lines.append("| training: `%s` | seeds %s, step %d | %s | %s | %s | %s | %s |" % (
                spec, ", ".join(str(s) for s in e["seeds"]), e["final_step"], fmt(e["fid_spread"], 2),
                fmt(e["mirror_error_spread"], 1), fmt(e["corner_error_spread"], 1),
                fmt(None if e["mirror_kept_spread"] is None else 100 * e["mirror_kept_spread"], 0) + (
                    "" if e["mirror_kept_spread"] is None else " points"),
                fmt(None if e["corner_kept_spread"] is None else 100 * e["corner_kept_spread"], 0) + (
                    "" if e["corner_kept_spread"] is None else " points")))
        if noise["fids"]:
            ss = noise.get("structure_spread") or {}
            lines.append("| sample: `%s` final checkpoint | sample seeds %s | %s | %s | %s | %s | %s |" % (
                noise["spec"], ", ".join(str(s) for s in noise["seeds"]), fmt(noise.get("spread"), 2),
                fmt(ss.get("mirror_error"), 1), fmt(ss.get("corner_error"), 1),
                fmt(None if ss.get("mirror_kept") is None else 100 * ss["mirror_kept"], 0) + (
                    "" if ss.get("mirror_kept") is None else " points"),
                fmt(None if ss.get("corner_kept") is None else 100 * ss["corner_kept"], 0) + (
                    "" if ss.get("corner_kept") is None else " points")))
        lines.append("")
    said = reading(runs, swap, noise, seed_spread, args.eval_n)
    if said:
        lines.append("Reading:")
        lines.append("")
        lines.extend(said)
        lines.append("")
    if noise["fids"]:
        lines.append("Noise floor: the final `%s` checkpoint sampled with seeds %s: FID %s (spread %s)." % (
            noise["spec"], ", ".join(str(s) for s in noise["seeds"]),
            ", ".join("%.2f" % f for f in noise["fids"]), fmt(noise.get("spread"), 2)))
        lines.append("")
    if swap:
        sampled = []
        for row in swap.values():
            for spec in row:
                if type_of(spec) != "none" and spec not in sampled:
                    sampled.append(spec)
        sampled.append("none")  # the ablation column, last
        def cell_of(row, spec):
            return next((c for s, c in row.items() if s == spec or (spec == "none" and type_of(s) == "none")), None)
        lines.append("Swap matrix: FID of each trained model (rows) sampled with each attention type (columns) and "
                     "with none (the ablation: attention blocks skipped), same latents; in brackets the mean pixel "
                     "difference (levels of 255) against the model's own attention.")
        lines.append("")
        lines.append("| trained \\ sampled | " + " | ".join(
            "`%s`%s" % (type_of(s), " (ablation)" if s == "none" else "") for s in sampled) + " |")
        lines.append("|---|" + "---|" * len(sampled))
        for trained, row in swap.items():
            own = next(iter(row))
            cells = []
            for s in sampled:
                c = cell_of(row, s)
                if c is None:
                    cells.append("-")
                elif s == own or (s == "none" and type_of(own) == "none"):
                    cells.append(fmt(c["fid"], 2))
                else:
                    cells.append("%s (%s)" % (fmt(c["fid"], 2), fmt(c["mean_abs_pixel_difference"], 2)))
            lines.append("| `%s` | %s |" % (short_label(trained),
                                            " | ".join(cells)))
        lines.append("")
        if any(c.get("structure") for row in swap.values() for c in row.values()):
            lines.append("The same samples' long-range rules: mirror error / corner error (levels of 255).")
            lines.append("")
            lines.append("| trained \\ sampled | " + " | ".join("`%s`" % type_of(s) for s in sampled) + " |")
            lines.append("|---|" + "---|" * len(sampled))
            for trained, row in swap.items():
                cells = []
                for s in sampled:
                    c = cell_of(row, s)
                    st = c.get("structure") if c else None
                    cells.append("-" if not st else "%s / %s" % (fmt(st.get("mirror_error"), 1), fmt(st.get("corner_error"), 1)))
                lines.append("| `%s` | %s |" % (short_label(trained),
                                                " | ".join(cells)))
            lines.append("")
        lines.append("Sampled specs: " + ", ".join("`%s`" % s for s in dict.fromkeys(
            s for row in swap.values() for s in row)) + ".")
        lines.append("")
    lines.append("![FID, long-range rules and attention weight against step](fid.png)")
    lines.append("")
    lines.append("![Final sample grids](grids.png)")
    with open(path + ".tmp", "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(path + ".tmp", path)


def plot(out, runs):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from PIL import Image
    except ImportError as e:
        print("quality_report: no plots (%s); scripts/quality.sh installs matplotlib" % e, file=sys.stderr)
        return
    plot_fid(out, runs, plt)
    plot_grids(out, runs, plt, Image)


def plot_fid(out, runs, plt):
    """fid.png: 2x2 curves against step: FID, mirror error, corner error, G's attention weight gamma.
    One colour per attention type, one line style per training seed."""
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5), layout="constrained")
    colours, styles = {}, {}
    for r in runs:  # the control in black, drawn wide beneath the others (it can coincide with them)
        if r["type"] == "none":
            colours.setdefault(r["spec"], "black")
        colours.setdefault(r["spec"], "C%d" % (len([c for c in colours.values() if c != "black"]) % 10))
        styles.setdefault(r["seed"], ["-", "--", ":", "-."][len(styles) % 4])
    panels = [(axes[0][0], "fid", "FID (G_ema)"), (axes[0][1], "mirror_error", "mirror error (levels)"),
              (axes[1][0], "corner_error", "corner error (levels)"), (axes[1][1], "gamma", "G attention gamma")]
    several = {spec for spec in colours if sum(r["spec"] == spec for r in runs) > 1}
    for ax, key, title in panels:
        drawn = False
        for r in runs:
            label = r["type"] + (" seed %d" % r["seed"] if r["spec"] in several else "")
            style = dict(color=colours[r["spec"]], linestyle=styles[r["seed"]], label=label)
            if r["type"] == "none":
                style.update(linewidth=3, alpha=0.45, zorder=1)
            if key == "gamma":
                g = [(block, pts) for block, pts in r["attention_curve"].items() if block.startswith("G/")]
                for i, (block, pts) in enumerate(g):
                    pts = [p for p in pts if p.get("gamma") is not None]
                    if pts:
                        ax.plot([p["step"] for p in pts], [p["gamma"] for p in pts],
                                **dict(style, label=label + ("" if len(g) == 1 else " " + block)))
                        drawn = True
            else:
                pts = [p for p in r["fid_curve"] if p.get(key) is not None]
                if pts:
                    ax.plot([p["step"] for p in pts], [p[key] for p in pts], marker="o", markersize=3, **style)
                    drawn = True
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step")
        ax.grid(True, alpha=0.3)
        if not drawn:
            ax.text(0.5, 0.5, "not recorded by these runs", ha="center", va="center", transform=ax.transAxes)
        elif key == "fid" or key == "gamma" and any(
                len([b for b in r["attention_curve"] if b.startswith("G/")]) > 1 for r in runs):
            ax.legend(fontsize=7)  # the colours and styles are the same in every panel
    fig.suptitle("FID, the long-range rules of the samples (lower is better) and G's attention weight, against step",
                 fontsize=11)
    fig.savefig(os.path.join(out, "fid.png.tmp.png"), dpi=110)
    os.replace(os.path.join(out, "fid.png.tmp.png"), os.path.join(out, "fid.png"))
    plt.close(fig)


def plot_grids(out, runs, plt, Image):
    """grids.png: each run's final grid under a two-line title, its type and final FID and rules.

    Reads only the grid images and the runs' "type", "final_fid", "final_structure" and "grid" fields,
    so plot_grids_only() redraws it from a report folder alone (the runs need not exist):
        python3 -c 'import sys; sys.path.insert(0, "scripts"); import quality_report; quality_report.plot_grids_only("bench/quality")'
    """
    grids = [r for r in runs if r.get("grid") and os.path.exists(os.path.join(out, r["grid"]))]
    if not grids:
        return
    # The constrained layout keeps both title lines inside the figure (with tight_layout the first was cut
    # off at the top).
    fig, axes = plt.subplots(1, len(grids), figsize=(3.2 * len(grids), 3.8), squeeze=False, layout="constrained")
    for ax, r in zip(axes[0], grids):
        ax.imshow(Image.open(os.path.join(out, r["grid"])))
        st = r.get("final_structure") or {}
        rules = ""
        if st.get("mirror_error") is not None:
            rules = ", mirror %s" % fmt(st["mirror_error"], 1)
            if st.get("corner_error") is not None:
                rules += ", corner %s" % fmt(st["corner_error"], 1)
        ax.set_title("%s\nFID %s%s" % (r["type"], fmt(r["final_fid"], 1), rules), fontsize=9)
        ax.axis("off")
    fig.savefig(os.path.join(out, "grids.png.tmp.png"), dpi=110)
    os.replace(os.path.join(out, "grids.png.tmp.png"), os.path.join(out, "grids.png"))
    plt.close(fig)


def plot_grids_only(out):
    """Redraws out/grids.png from out/results.json and the grid images beside it (no runs needed)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image
    with open(os.path.join(out, "results.json")) as f:
        runs = json.load(f)["runs"]
    plot_grids(out, runs, plt, Image)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True)
    parser.add_argument("--types", required=True, help="';'-separated attention specs, as quality.sh got them")
    parser.add_argument("--seeds", default="1,2", help="','-separated training seeds, as quality.sh got them")
    parser.add_argument("--seed-types", default="none;dense;smyrf",
                        help="';'-separated types trained with every seed, as quality.sh got them")
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--eval-n", type=int, required=True)
    parser.add_argument("--command", default="scripts/quality.sh")
    parser.add_argument("--elapsed", type=float, default=0.0)
    args = parser.parse_args()
    types = [t for t in args.types.split(";") if t]
    seeds = [int(s) for s in args.seeds.split(",") if s]
    seed_types = [t for t in args.seed_types.split(";") if t]
    runs, swap, noise, wall, seed_spread, real = collect(args.out, types, args.steps, args.eval_n, seeds, seed_types)
    result = {"command": args.command, "machine": platform.platform(), "cpus": os.cpu_count(),
              "date": datetime.date.today().isoformat(), "elapsed_seconds_this_call": args.elapsed,
              "steps": args.steps, "eval_n": args.eval_n, "seeds": seeds, "seed_types": seed_types, "wall": wall,
              "runs": runs, "seed_spread": seed_spread, "real_structure": real, "swap": swap, "noise_floor": noise}
    path = os.path.join(args.out, "results.json")
    with open(path + ".tmp", "w") as f:
        json.dump(result, f, indent=2)
    os.replace(path + ".tmp", path)
    write_markdown(os.path.join(args.out, "README.md"), args, runs, swap, noise, wall, seed_spread, real)
    plot(args.out, runs)


if __name__ == "__main__":
    main()
