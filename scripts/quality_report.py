#!/usr/bin/env python3
"""The report of scripts/quality.sh: results.json, README.md (tables), fid.png and grids.png.

Reads only what the runs wrote: each run's metrics.jsonl (FID/KID of G_ema during training), its
train logs (images/s from the progress lines) and /usr/bin/time reports (peak memory, wall time),
the swap reports and the noise-floor reports of `longgan metrics`, and the final sample grids.
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


def fid_curve(run_dir):
    """[(step, fid, kid_mean, kid_std)] from metrics.jsonl, the last entry per step."""
    points = {}
    path = os.path.join(run_dir, "metrics.jsonl")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            entry = json.loads(line)
            if "fid" in entry:
                points[entry["step"]] = (entry["step"], entry["fid"], entry.get("kid_mean"), entry.get("kid_std"))
    return [points[s] for s in sorted(points)]


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


def collect(out, types, steps, eval_n):
    runs = []
    for spec in types:
        s = slug(spec)
        run_dir = os.path.join(out, "runs", s)
        curve = fid_curve(run_dir)
        logs = numbered(glob.glob(os.path.join(out, "logs", s + ".train.*.log")))
        times = numbered(glob.glob(os.path.join(out, "logs", s + ".train.*.time")))
        peak, wall = time_report(times)
        runs.append({
            "spec": spec,
            "type": type_of(spec),
            "run": os.path.relpath(run_dir, out),  # paths relative to --out: the folder can be moved
            "fid_curve": [{"step": p[0], "fid": p[1], "kid_mean": p[2], "kid_std": p[3]} for p in curve],
            "final_step": curve[-1][0] if curve else None,
            "final_fid": curve[-1][1] if curve else None,
            "final_kid": curve[-1][2] if curve else None,
            "best_fid": min(p[1] for p in curve) if curve else None,
            "images_per_second": training_images_per_second(logs),
            "peak_rss_mib": peak,
            "train_wall_seconds": wall,
            "train_parts": len(times),
            "grid": "grid_%s.png" % s,
        })
    swap = {}
    for spec in types:
        path = os.path.join(out, "logs", slug(spec) + ".swap.json")
        if not os.path.exists(path):
            continue
        with open(path) as f:
            report = json.load(f)
        row = {}
        for entry in report["attention"]:  # the checkpoint's own type first, then the others
            row[entry["attention"]] = {"fid": entry["fid"], "kid_mean": entry["kid_mean"],
                                       "mean_abs_pixel_difference": entry["mean_abs_pixel_difference"]}
        swap[spec] = row
    noise = {"checkpoint": os.path.join("runs", slug(types[0])), "seeds": [], "fids": []}
    for seed in (1, 2, 3):
        path = os.path.join(out, "logs", "%s.seed%d.json" % (slug(types[0]), seed))
        if os.path.exists(path):
            with open(path) as f:
                noise["seeds"].append(seed)
                noise["fids"].append(json.load(f)["fid"])
    if len(noise["fids"]) >= 2:
        noise["spread"] = max(noise["fids"]) - min(noise["fids"])
        noise["stdev"] = statistics.stdev(noise["fids"])
    _, swap_wall = time_report(glob.glob(os.path.join(out, "logs", "*.swap.time")))
    _, noise_wall = time_report(glob.glob(os.path.join(out, "logs", "*.seed[0-9]*.time")))
    wall = {"training_seconds": sum(r["train_wall_seconds"] for r in runs), "swap_matrix_seconds": swap_wall,
            "noise_floor_seconds": noise_wall}
    wall["total_seconds"] = sum(wall.values())
    return runs, swap, noise, wall


def relative_to_noise(difference, spread):
    """How a FID difference reads against the noise floor's spread."""
    if spread is None:
        return "no noise floor yet"
    if abs(difference) <= spread:
        return "within the noise floor (spread %.2f)" % spread
    return "%s by %.2f, %.1f times the noise floor's spread" % (
        "worse" if difference > 0 else "better", abs(difference), abs(difference) / max(spread, 1e-9))


def reading(runs, swap, noise):
    """Plain sentences: each type's final FID against the first's, each swap against the model's own type."""
    lines = []
    spread = noise.get("spread")
    base = runs[0]
    if base["final_fid"] is not None:
        for r in runs[1:]:
            if r["final_fid"] is None or r["final_step"] != base["final_step"]:
                continue
            d = r["final_fid"] - base["final_fid"]
            lines.append("- `%s` trained to step %d: FID %.2f against `%s`'s %.2f: %s." % (
                r["spec"], r["final_step"], r["final_fid"], base["spec"], base["final_fid"],
                relative_to_noise(d, spread)))
    for trained, row in swap.items():
        own = next(iter(row))  # the checkpoint's own type comes first
        for sampled, cell in row.items():
            if sampled == own:
                continue
            d = cell["fid"] - row[own]["fid"]
            lines.append("- `%s`-trained, sampled with `%s`: FID %.2f against %.2f with its own attention (%+.1f%%): %s." % (
                type_of(trained), type_of(sampled), cell["fid"], row[own]["fid"], 100.0 * d / row[own]["fid"],
                relative_to_noise(d, spread)))
    if lines:
        lines.append("- The noise floor is the sampling noise of one checkpoint; the training noise (another training "
                     "seed) is not measured, one seed per type, and is usually larger.")
    return lines


def fmt(value, digits=1):
    return "-" if value is None else ("%.*f" % (digits, value))


def write_markdown(path, args, runs, swap, noise, wall):
    lines = ["# Does SMYRF train as well as dense? (scripts/quality.sh)", ""]
    lines.append("Command: `%s`  " % args.command)
    lines.append("Machine: %s, %d CPU cores; written %s." % (
        platform.platform(), os.cpu_count() or 0, datetime.date.today().isoformat()))
    lines.append("Wall time %.1f h in all calls: training %.1f h (evaluations included), swap matrix %.0f min, "
                 "noise floor %.0f min; this call %.0f min." % (
                     wall["total_seconds"] / 3600.0, wall["training_seconds"] / 3600.0,
                     wall["swap_matrix_seconds"] / 60.0, wall["noise_floor_seconds"] / 60.0, args.elapsed / 60.0))
    lines.append("FID/KID of G_ema on %d samples against the whole data set, one training seed per type." % args.eval_n)
    lines.append("")
    lines.append("| attention | final step | final FID | final KID | best FID | images/s (training) | peak RSS MiB | training wall min (parts) |")
    lines.append("|---|---|---|---|---|---|---|---|")
    for r in runs:
        lines.append("| `%s` | %s | %s | %s | %s | %s | %s | %s (%d) |" % (
            r["spec"], "-" if r["final_step"] is None else r["final_step"], fmt(r["final_fid"], 2), fmt(r["final_kid"], 4), fmt(r["best_fid"], 2),
            fmt(r["images_per_second"]), fmt(r["peak_rss_mib"], 0), fmt(r["train_wall_seconds"] / 60.0, 1),
            r["train_parts"]))
    lines.append("")
    lines.append("images/s: real images through D per second of training (batch x D steps per step), from the "
                 "last progress line before the first evaluation; training wall: evaluations included, interrupted parts too.")
    lines.append("")
    said = reading(runs, swap, noise)
    if said:
        lines.append("Reading:")
        lines.append("")
        lines.extend(said)
        lines.append("")
    if noise["fids"]:
        lines.append("Noise floor: the final `%s` checkpoint sampled with seeds %s: FID %s (spread %s)." % (
            runs[0]["spec"], ", ".join(str(s) for s in noise["seeds"]),
            ", ".join("%.2f" % f for f in noise["fids"]), fmt(noise.get("spread"), 2)))
        lines.append("")
    if swap:
        sampled = []
        for row in swap.values():
            for spec in row:
                if spec not in sampled:
                    sampled.append(spec)
        lines.append("Swap matrix: FID of each trained model (rows) sampled with each attention type (columns), same latents.")
        lines.append("")
        lines.append("| trained \\ sampled | " + " | ".join("`%s`" % type_of(s) for s in sampled) + " |")
        lines.append("|---|" + "---|" * len(sampled))
        for trained, row in swap.items():
            cells = [fmt(row[s]["fid"], 2) if s in row else "-" for s in sampled]
            lines.append("| `%s` | %s |" % (type_of(trained), " | ".join(cells)))
        lines.append("")
        lines.append("Sampled specs: " + ", ".join("`%s`" % s for s in sampled) + ".")
        lines.append("")
    lines.append("![FID against step](fid.png)")
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
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in runs:
        if r["fid_curve"]:
            ax.plot([p["step"] for p in r["fid_curve"]], [p["fid"] for p in r["fid_curve"]], marker="o", label=r["spec"])
    ax.set_xlabel("step")
    ax.set_ylabel("FID (G_ema)")
    ax.set_title("FID against training step")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "fid.png.tmp.png"), dpi=110)
    os.replace(os.path.join(out, "fid.png.tmp.png"), os.path.join(out, "fid.png"))
    plt.close(fig)

    grids = [r for r in runs if os.path.exists(os.path.join(out, r["grid"]))]
    if not grids:
        return
    fig, axes = plt.subplots(1, len(grids), figsize=(3.2 * len(grids), 3.6), squeeze=False)
    for ax, r in zip(axes[0], grids):
        ax.imshow(Image.open(os.path.join(out, r["grid"])))
        ax.set_title("%s\nFID %s" % (r["type"], fmt(r["final_fid"], 1)), fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "grids.png.tmp.png"), dpi=110)
    os.replace(os.path.join(out, "grids.png.tmp.png"), os.path.join(out, "grids.png"))
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True)
    parser.add_argument("--types", required=True, help="';'-separated attention specs, as quality.sh got them")
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--eval-n", type=int, required=True)
    parser.add_argument("--command", default="scripts/quality.sh")
    parser.add_argument("--elapsed", type=float, default=0.0)
    args = parser.parse_args()
    types = [t for t in args.types.split(";") if t]
    runs, swap, noise, wall = collect(args.out, types, args.steps, args.eval_n)
    result = {"command": args.command, "machine": platform.platform(), "cpus": os.cpu_count(),
              "date": datetime.date.today().isoformat(), "elapsed_seconds_this_call": args.elapsed,
              "steps": args.steps, "eval_n": args.eval_n, "wall": wall, "runs": runs, "swap": swap, "noise_floor": noise}
    path = os.path.join(args.out, "results.json")
    with open(path + ".tmp", "w") as f:
        json.dump(result, f, indent=2)
    os.replace(path + ".tmp", path)
    write_markdown(os.path.join(args.out, "README.md"), args, runs, swap, noise, wall)
    plot(args.out, runs)


if __name__ == "__main__":
    main()
