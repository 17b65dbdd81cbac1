#!/usr/bin/env bash
# What the offline GPU machine lacks for bench/gpu_check.sh, fetched here (where pip reaches an index):
#
#   .whl/        wheels for Python 3.12 / manylinux x86_64 of the packages its image does not have
#                (or has in another version than we tested): TRL and datasets (the peers), their
#                dill / multiprocess, gymnasium (+ farama-notifications) and platformdirs (ours),
#                peft at the version we test with. transformers, accelerate, torch, tokenizers,
#                huggingface-hub, pyarrow, pandas, xxhash, fsspec ... are in the image
#                (/work/.library/device/KINDS.md) and are used as they are.
#   .gpu_data/   the benches' data (Wordle lists, GSM8K train split) and the tokenizer of the shaped
#                models (SmolLM2-135M-Instruct's, from the named-model cache: `python -m agents.models
#                pull smollm2-135m-instruct` once), since ../shared beside the checkout does not travel.
#
# Both folders are git-ignored (.git/info/exclude) and travel with `carry: [".whl", ".gpu_data"]`.
# Prints the sizes and what would travel in all (the limit is 64 MiB).
#
#   bench/fetch_gpu_wheels.sh            # DATA=../shared/data by default
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
PY=${PYTHON:-python3}

WHEELS=(
  trl==1.16.0
  datasets==5.2.0
  dill==0.4.1
  multiprocess==0.70.19
  peft==0.21.2
  gymnasium==1.4.0
  farama-notifications==0.0.6
  platformdirs==4.14.9
)
PLATFORMS=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
  PLATFORMS+=(--platform "$p")
done

exclude=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$exclude")"
for pattern in /.whl/ /.gpu_data/; do
  grep -qxF "$pattern" "$exclude" 2>/dev/null || echo "$pattern" >>"$exclude"
done

rm -rf .whl && mkdir -p .whl
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  "${PLATFORMS[@]}" -d .whl "${WHEELS[@]}"

rm -rf .gpu_data && mkdir -p .gpu_data/wordle .gpu_data/gsm8k
cp "$DATA/wordle/answers.txt" "$DATA/wordle/allowed_guesses.txt" .gpu_data/wordle/
cp "$DATA/gsm8k/train.jsonl" "$DATA/gsm8k/LICENSE" .gpu_data/gsm8k/
"$PY" -c "
import sys; sys.path.insert(0, '.')
from bench.model_shapes import DEFAULT_TOKENIZER, load_tokenizer
load_tokenizer(DEFAULT_TOKENIZER).save_pretrained('.gpu_data/tokenizer')
print('tokenizer:', DEFAULT_TOKENIZER, '-> .gpu_data/tokenizer')
"

ls -l .whl
du -sh .whl .gpu_data
# What a `run` call sends: tracked + untracked-not-ignored files, plus the carried folders.
tree_bytes=$( (git ls-files -z; git ls-files -z --others --exclude-standard) | xargs -0 -r stat -c %s 2>/dev/null \
  | awk '{s += $1} END {print s + 0}')
carried_bytes=$(du -sb .whl .gpu_data | awk '{s += $1} END {print s}')
echo "working tree ${tree_bytes} B + carried ${carried_bytes} B = $(( (tree_bytes + carried_bytes) / 1048576 )) MiB of 64 MiB"
