#!/usr/bin/env bash
# The GPU check of issue 18 in one script (about 8 minutes on one H100): on randomly initialised
# Qwen2.5-0.5B- and 1.5B-shaped models (bench/model_shapes.py), LoRA r16, bf16 compute,
#   1. SFT tokens/s, ours vs TRL's SFTTrainer          (bench/sft_throughput.py)
#   2. GRPO episodes/s, ours vs TRL's GRPOTrainer, G 8  (bench/grpo_throughput.py, 64-token completions)
#   3. transformers' generation options for GRPO sampling (bench/generation_options.py)
# with each side's peak GPU memory; then 1 and 2 again at the 1.5B shape while the budget lasts.
#
#   bench/fetch_gpu_wheels.sh          # here, once: .whl/ (TRL, datasets, ...) and .gpu_data/ (data, tokenizer)
#   bench/gpu_check.sh [OUTDIR]        # on the GPU machine; OUTDIR defaults to $OUT, else runs/gpu_check
#   SMOKE=1 bench/gpu_check.sh DIR     # on a CPU: tiny model, tiny batches, a few minutes (proves the script)
#
# Every step runs under `timeout` (its own cap, and never past the total BUDGET_S, default 510 s), so a
# slow step cannot eat the rest. After every step OUTDIR gets gpu_check.json (machine, versions, each
# step's exit status, seconds and JSON report) and gpu_check.log (each step's stderr, last lines).
# Environment: BUDGET_S, PYTHON (default python3), DATA (folder with wordle/ and gsm8k/; default
# .gpu_data, else ../shared/data), TOKENIZER (default .gpu_data/tokenizer, else smollm2-135m-instruct),
# INSTALL_WHEELS (auto: install .whl/*.whl when Python is 3.12, as on the GPU machine; 1 / 0 to force).
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SMOKE=${SMOKE:-0}
PY=${PYTHON:-python3}
OUTDIR=${1:-${OUT:-runs/gpu_check}}
mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")
START=$(date +%s)
if [ "$SMOKE" = 1 ]; then BUDGET_S=${BUDGET_S:-900}; else BUDGET_S=${BUDGET_S:-510}; fi
if [ -d .gpu_data ]; then DATA=${DATA:-.gpu_data}; else DATA=${DATA:-../shared/data}; fi
if [ -d .gpu_data/tokenizer ]; then TOKENIZER=${TOKENIZER:-.gpu_data/tokenizer}; else TOKENIZER=${TOKENIZER:-smollm2-135m-instruct}; fi
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1
export HF_HUB_DISABLE_TELEMETRY=1 DISABLE_MLFLOW_INTEGRATION=TRUE WANDB_DISABLED=true

# (a) wheels the machine lacks (bench/fetch_gpu_wheels.sh), into a folder ahead of the image's packages
install=${INSTALL_WHEELS:-auto}
if [ "$install" = auto ]; then
  install=0
  if ls .whl/*.whl >/dev/null 2>&1 && "$PY" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))'; then install=1; fi
fi
if [ "$install" = 1 ]; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$WORK/site" .whl/*.whl \
    >"$WORK/wheels.log" 2>&1 || echo "wheel install failed: $(tail -3 "$WORK/wheels.log")" >&2
  export PYTHONPATH="$WORK/site${PYTHONPATH:+:$PYTHONPATH}"
fi

# (b) the machine and the versions
{
  echo "date: $(date -u +%FT%TZ)  smoke: $SMOKE  budget_s: $BUDGET_S  wheels installed: $install"
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv 2>&1 || echo "no nvidia-smi"
  "$PY" - <<'EOF' 2>&1
import importlib, platform
print("python", platform.python_version())
for name in ("torch", "transformers", "trl", "datasets", "peft", "accelerate", "tokenizers", "huggingface_hub",
             "gymnasium", "pyarrow", "numpy"):
    try:
        module = importlib.import_module(name)
        print(f"{name} {getattr(module, '__version__', '?')} {module.__file__}")
    except Exception as err:  # report and go on: the steps say what they could not do
        print(f"{name} MISSING: {type(err).__name__}: {err}")
import torch
print("cuda", torch.cuda.is_available(), torch.version.cuda, torch.cuda.get_device_name() if torch.cuda.is_available() else "")
EOF
} >"$WORK/machine.txt"
cat "$WORK/machine.txt" >&2

: >"$WORK/steps.tsv"
merge() {  # gpu_check.json + gpu_check.log in OUTDIR from what the steps left in WORK
  "$PY" - "$WORK" "$OUTDIR" "$BUDGET_S" "$SMOKE" <<'EOF'
import json, sys
from pathlib import Path
work, out, budget, smoke = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
report = {"smoke": smoke, "budget_s": budget, "machine": (work / "machine.txt").read_text(), "steps": []}
log = []
for line in (work / "steps.tsv").read_text().splitlines():
    name, rc, seconds, command = line.split("\t", 3)
    step = {"name": name, "exit_status": int(rc), "seconds": int(seconds), "command": command,
            "timed_out": int(rc) in (124, 137)}
    text = (work / f"{name}.json").read_text() if (work / f"{name}.json").is_file() else ""
    partial = work / f"{name}.partial.json"
    start = text.find("{\n")  # the report is the indented JSON at the end of stdout
    try:
        step["report"] = json.loads(text[max(start, 0):])
    except json.JSONDecodeError:
        if partial.is_file():  # generation_options writes its report after every option
            step["report"] = json.loads(partial.read_text())
            step["report_is_partial"] = True
    err = work / f"{name}.log"
    lines = err.read_text(errors="replace").splitlines() if err.is_file() else []
    step["log_tail"] = lines[-15:]
    log += [f"===== {name} (exit {rc}, {seconds} s): {command}", *lines[-300:]]
    report["steps"].append(step)
(out / "gpu_check.json").write_text(json.dumps(report, indent=2))
(out / "gpu_check.log").write_text(report["machine"] + "\n" + "\n".join(log) + "\n")
EOF
}

step() {  # step NAME CAP_S ARGS...: run ARGS under a timeout of min(CAP_S, what is left of BUDGET_S)
  local name=$1 cap=$2
  shift 2
  local left=$(( BUDGET_S - ($(date +%s) - START) ))
  local limit=$(( cap < left ? cap : left ))
  if [ "$limit" -lt 20 ]; then
    printf '%s\t%s\t%s\t%s\n' "$name" 125 0 "skipped: budget spent" >>"$WORK/steps.tsv"
    merge
    return
  fi
  echo "== $name (up to $limit s): $*" >&2
  local began=$(date +%s)
  timeout --signal=TERM --kill-after=15 "$limit" "$@" >"$WORK/$name.json" 2>"$WORK/$name.log"
  local rc=$?
  printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$(( $(date +%s) - began ))" "$*" >>"$WORK/steps.tsv"
  echo "   exit $rc after $(( $(date +%s) - began )) s" >&2
  merge
}

if [ "$SMOKE" = 1 ]; then
  DEVICE=cpu
  SHAPES=(tiny)
  SFT_ARGS=(--answers 20 --batch-size 8 --warmup 1 --steps 2 --rounds 1)
  GRPO_ARGS=(--prompts-per-step 2 --group-size 2 --micro-batch-size 4 --max-new-tokens 8 --rounds 1 --warmup 1 --steps 1)
  GEN_ARGS=(--prompts 2 --group-size 2 --max-new-tokens 8 --calls 1 --option-budget-s 30)
  CAPS=(240 240 300)
else
  DEVICE=cuda
  SHAPES=(qwen2.5-0.5b qwen2.5-1.5b)
  SFT_ARGS=(--answers 300 --batch-size 64 --warmup 3 --steps 10 --rounds 2)
  GRPO_ARGS=(--prompts-per-step 8 --group-size 8 --micro-batch-size 32 --max-new-tokens 64 --rounds 2 --warmup 1 --steps 3)
  GEN_ARGS=(--prompts 8 --group-size 8 --max-new-tokens 64 --calls 3 --option-budget-s 40)
  CAPS=(100 150 200)
fi
COMMON=(--device "$DEVICE" --shape-tokenizer "$TOKENIZER" --lora-r 16)

for shape in "${SHAPES[@]}"; do
  tag=${shape#qwen2.5-}
  step "sft_$tag" "${CAPS[0]}" "$PY" bench/sft_throughput.py --model-shape "$shape" "${COMMON[@]}" \
    --data "$DATA/wordle" --skip-batch-epochs "${SFT_ARGS[@]}"
  step "grpo_$tag" "${CAPS[1]}" "$PY" bench/grpo_throughput.py --model-shape "$shape" "${COMMON[@]}" \
    --data "$DATA/gsm8k/train.jsonl" --skip-memory "${GRPO_ARGS[@]}"
  if [ "$shape" = "${SHAPES[0]}" ]; then  # the generation options once, at the first (smaller) shape
    step "generation_$tag" "${CAPS[2]}" "$PY" bench/generation_options.py --model-shape "$shape" "${COMMON[@]}" \
      --data "$DATA/gsm8k/train.jsonl" --out "$WORK/generation_$tag.partial.json" "${GEN_ARGS[@]}"
  fi
done

merge
echo "done in $(( $(date +%s) - START )) s: $OUTDIR/gpu_check.json, $OUTDIR/gpu_check.log" >&2
"$PY" - "$OUTDIR/gpu_check.json" <<'EOF' >&2
import json, sys
report = json.load(open(sys.argv[1]))
for step in report["steps"]:
    r, line = step.get("report") or {}, f"{step['name']}: exit {step['exit_status']}, {step['seconds']} s"
    versus = r.get("vs_trl", {})
    for key in ("ratio_tokens_per_s", "ratio_episodes_per_s", "ours_cuda_peak_allocated_mb", "trl_cuda_peak_allocated_mb"):
        if key in versus:
            line += f", {key} {versus[key]:.3g}"
    if "options" in r:
        line += ", " + ", ".join(f"{n} {o.get('tokens_per_s') or o['status']}" for n, o in r["options"].items())
    print(line)
EOF
rm -rf "$WORK"
