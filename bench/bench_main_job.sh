#!/usr/bin/env bash
# Main job from clean on the default config (target: <= 10 min wall on 2 cores), and the time of
# `snakemake -n` on the full DAG (target: <= 3 s). Runs in a temporary copy of the workflow.
#   bash bench/bench_main_job.sh            # main job + dry run
#   bash bench/bench_main_job.sh --dry-only # only the dry-run timing
#   KEEP=1 bash bench/bench_main_job.sh     # keep the run's folder (python bench/profile_paper.py --root it)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
wd=$(mktemp -d)
if [ "${KEEP:-0}" = 1 ]; then echo "run folder (kept): $wd"; else trap 'rm -rf "$wd"' EXIT; fi
cp -rL "$root"/{Snakefile,rules,config,profiles,paper,envs} "$wd"/
[ -d "$root/report" ] && cp -r "$root/report" "$wd"/
cd "$wd"

t0=$(date +%s.%N)
snakemake all -n --cores 2 >/dev/null
t1=$(date +%s.%N)
python -c "print(f'snakemake -n (full DAG, nothing built): {$t1 - $t0:.2f} s')"

[ "${1:-}" = "--dry-only" ] && exit 0

t_main0=$(date +%s.%N)
snakemake figures/r2_vs_snr.pdf --cores 2 >snakemake.log 2>&1 || { tail -40 snakemake.log; exit 1; }
t_main1=$(date +%s.%N)
python -c "print(f'main job (figures/r2_vs_snr.pdf from clean): {$t_main1 - $t_main0:.0f} s wall')"
python - <<'PY'
import json, glob
for f in sorted(glob.glob("results/cells/*/*.json")) + sorted(glob.glob("results/track_c/*.json")) + ["results/data/test.json"]:
    m = json.load(open(f))["metrics"]
    o = m.get("overall", {})
    print(f"{f:44s}", {k: round(v, 3) for k, v in o.items() if isinstance(v, float)} or
          {k: round(m[k], 2) for k in ("snr_median", "snr_p05", "snr_p95")})
PY
t2=$(date +%s.%N)
snakemake all -n --cores 2 >/dev/null
t3=$(date +%s.%N)
python -c "print(f'snakemake -n (full DAG, figure built): {$t3 - $t2:.2f} s')"
