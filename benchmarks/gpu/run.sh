#!/usr/bin/env bash
# Issue 25's GPU path in one run of at most ~10 minutes: set up, the fast tests, bench perf, bench corpus,
# bench serve and bench generator on one device, each step under its own timeout (a stuck step cannot
# eat the others' time); each step's JSON, one log and summary.json land in one results folder.
#
# Usage: benchmarks/gpu/run.sh [--device cuda|cpu] [--smoke] [--out DIR] [--data DIR] [--model SPEC]
#   --device   cuda (default, or $LORAMEM_DEVICE) or cpu: the same steps on this machine's CPU
#   --smoke    check the script, not the machine: set up, then parse each step's exact command line with
#              --help (every command and option name is checked, nothing is measured); seconds
#   --out      results folder (default: $OUT when set, else benchmarks/gpu/results)
#   --data     the seed paper's data folder, holding pb_cf/ and paperqa/ (default: $LORAMEM_DATA, else
#              shared/data/lora-knowledge-memory, else ../shared/data/lora-knowledge-memory)
#   --model    base model for perf, corpus and serve (default: $LORAMEM_MODEL, else the embedded SmolLM2)
#   --steps    a comma-separated subset of tests,perf,corpus,serve,generator (default: all), e.g. to rerun
#              one that failed within the device time left
# Environment: LORAMEM_PYTHON=PATH uses that interpreter as it is (no set-up); LORAMEM_WHEELS=DIR installs
#              from local wheels only (a machine without PyPI); LORAMEM_GPU_BUDGET=SECONDS overall deadline
#              (default 570).
set -uo pipefail
cd "$(dirname "$0")/../.."
START=$(date +%s)
DEVICE=${LORAMEM_DEVICE:-cuda}; SMOKE=0; RES=${OUT:-benchmarks/gpu/results}; DATA=${LORAMEM_DATA:-}
MODEL=${LORAMEM_MODEL:-}; ONLY=tests,perf,corpus,serve,generator
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE=${2:?--device needs cuda or cpu}; shift 2 ;;
    --smoke) SMOKE=1; shift ;;
    --out) RES=${2:?--out needs a folder}; shift 2 ;;
    --data) DATA=${2:?--data needs a folder}; shift 2 ;;
    --model) MODEL=${2:?--model needs a model folder or hub id}; shift 2 ;;
    --steps) ONLY=${2:?--steps needs names such as perf,serve}; shift 2 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$DEVICE" in cuda|cuda:*|cpu) ;; *) echo "--device must be cuda or cpu, got $DEVICE" >&2; exit 2 ;; esac
if [ -z "$DATA" ]; then
  for d in shared/data/lora-knowledge-memory ../shared/data/lora-knowledge-memory; do [ -d "$d" ] && DATA=$d && break; done
fi
[ -n "$DATA" ] && export LORAMEM_DATA=$DATA  # bench corpus reads its PhoneBook sectors there
M=(); [ -n "$MODEL" ] && M=(--model "$MODEL")
DEADLINE=$((START + ${LORAMEM_GPU_BUDGET:-570}))
mkdir -p "$RES"
LOG=$RES/log.txt; STEPS=$RES/.steps.tsv
: > "$LOG"; : > "$STEPS"
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false

record() { printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" >> "$STEPS"; }  # name status rc seconds note

# step NAME LIMIT_S JSON COMMAND...: run COMMAND under min(LIMIT_S, time left). JSON is - (none), >FILE
# (COMMAND prints JSON: stdout goes to FILE) or @FILE (COMMAND writes FILE); the step is ok only if FILE
# then parses as JSON. Everything else a step prints goes to the log.
step() {
  local name=$1 limit=$2 json=$3 file=; shift 3
  case ",$ONLY," in *",$name,"*) ;; *) return ;; esac
  local cmd="$*"
  if [ "$SMOKE" = 1 ] && [ "${cmd#"${LM[*]} "}" != "$cmd" ]; then  # a loramem command: checked with the others below
    "$SYS_PY" -c 'import json, sys; print(json.dumps(sys.argv[1:]))' "$name" "${@:4}" >> "$RES/.smoke.jsonl"; return
  fi
  local left=$((DEADLINE - $(date +%s)))
  if [ "$left" -lt 20 ]; then record "$name" skipped "" 0 "overall deadline reached"; return; fi
  [ "$limit" -gt "$left" ] && limit=$left
  [ "$SMOKE" = 1 ] && json=-
  printf '\n== %s (limit %ss): %s\n' "$name" "$limit" "$*" >> "$LOG"
  local t0 rc status
  t0=$(date +%s.%N)
  if [ "${json:0:1}" = ">" ]; then
    file=${json:1}; timeout -s INT -k 15 "$limit" "$@" > "$file" 2>> "$LOG"; rc=$?
  else
    [ "${json:0:1}" = "@" ] && file=${json:1} && rm -f "$file"
    timeout -s INT -k 15 "$limit" "$@" >> "$LOG" 2>&1; rc=$?
  fi
  local secs; secs=$(awk "BEGIN{printf \"%.1f\", $(date +%s.%N) - $t0}")
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then status=timeout
  elif [ "$rc" != 0 ]; then status=failed
  elif [ -n "$file" ] && ! "$SYS_PY" -c 'import json, sys; json.load(open(sys.argv[1]))' "$file" 2>> "$LOG"; then
    status=failed; rc=bad-json
  else status=ok; fi
  record "$name" "$status" "$rc" "$secs" ""
}

SYS_PY=$(command -v python3 || command -v python)
[ -n "$SYS_PY" ] || { echo "no python3 on this machine" >&2; exit 1; }

# `usable PYTHON`: it imports loramem and torch; their versions and the device go to .versions.json
usable() {
  [ -x "$1" ] && "$1" -c 'import json, sys, loramem, peft, torch, transformers
cuda = torch.cuda.is_available()
json.dump({"python": sys.version.split()[0], "torch": torch.__version__, "transformers": transformers.__version__,
           "peft": peft.__version__, "cuda": cuda, "gpu": torch.cuda.get_device_name(0) if cuda else None,
           "threads": torch.get_num_threads()}, open(sys.argv[1], "w"))' "$RES/.versions.json" 2>> "$LOG"
}

# -- set up: a carried .venv when it works here, else a venv over this machine's torch (a CUDA build there)
setup() {
  if [ -n "${LORAMEM_PYTHON:-}" ]; then PY=$LORAMEM_PYTHON; usable "$PY"; return; fi
  if usable .venv/bin/python; then
    PY=.venv/bin/python; echo "using .venv" >> "$LOG"; return 0
  fi
  local venv=benchmarks/gpu/.venv
  PY=$venv/bin/python
  if usable "$PY"; then echo "using $venv" >> "$LOG"; return 0; fi
  "$SYS_PY" -m venv --system-site-packages "$venv" >> "$LOG" 2>&1 || return 1
  local from=()
  [ -n "${LORAMEM_WHEELS:-}" ] && from=(--no-index --find-links "$LORAMEM_WHEELS")
  if ! timeout 240 "$PY" -m pip install -q ${from[@]+"${from[@]}"} -e '.[test]' >> "$LOG" 2>&1; then
    # no PyPI: the package itself over what this machine has; steps needing a missing package fail alone
    echo "pip install -e .[test] failed: installing loramem without its dependencies" >> "$LOG"
    timeout 120 "$PY" -m pip install -q --no-deps --no-build-isolation -e . >> "$LOG" 2>&1 || return 1
  fi
  usable "$PY"
}
t0=$(date +%s)
if setup; then record setup ok 0 $(($(date +%s) - t0)) "$PY"; else record setup failed 1 $(($(date +%s) - t0)) "see log.txt"; fi
if [ "$DEVICE" != cpu ] && ! grep -q '"cuda": true' "$RES/.versions.json" 2>/dev/null; then
  echo "no CUDA device visible to torch: use --device cpu" | tee -a "$LOG" >&2
  record device failed 1 0 "no CUDA device"
  DEVICE_OK=0
else
  DEVICE_OK=1
fi

LM=("${PY:-$SYS_PY}" -m loramem.cli bench)
if [ "$DEVICE_OK" = 1 ] && grep -q $'^setup\tok' "$STEPS"; then
  if [ "$SMOKE" = 1 ]; then
    step tests 60 - "$PY" -m pytest -q --collect-only -p no:cacheprovider tests/test_options.py
  else
    # LORAMEM_KERNELS=0: the CPU decode kernel's ~40 s build does not fit this step; its tests skip here
    step tests 150 - env LORAMEM_KERNELS=0 "$PY" -m pytest -q -p no:cacheprovider \
      -m "not real_model and not real_generator and not browser" --ignore=tests/test_gpu_script.py tests
  fi
  step perf 130 "@$RES/perf.json" "${LM[@]}" perf --device "$DEVICE" --baseline-budget 90 --out "$RES/perf.json" \
    ${M[@]+"${M[@]}"}
  step corpus 110 ">$RES/corpus.json" "${LM[@]}" corpus --device "$DEVICE" --json ${M[@]+"${M[@]}"}
  step serve 130 "@$RES/serve.json" "${LM[@]}" serve --device "$DEVICE" --requests 25 --out "$RES/serve.json" \
    ${M[@]+"${M[@]}"}
  PAPERQA=${DATA:+$DATA/paperqa/paperQA_dev.json}
  if [ -n "$PAPERQA" ] && [ -f "$PAPERQA" ]; then  # the embedded generator runs on llama.cpp's CPU build: no --device
    step generator 70 ">$RES/generator.json" "${LM[@]}" generator --data "$PAPERQA" --plain-prompts 1 --json
  else
    case ",$ONLY," in *,generator,*) record generator skipped "" 0 "no paperqa/paperQA_dev.json in --data" ;; esac
  fi
fi

# -- smoke: every loramem command line above parsed with --help in one process (one import, not four)
if [ -s "$RES/.smoke.jsonl" ]; then
  "${PY:-$SYS_PY}" - "$RES/.smoke.jsonl" "$STEPS" >> "$LOG" 2>&1 <<'EOF'
import contextlib, io, json, sys, time

import typer

from loramem.cli import app

command = typer.main.get_command(app)
with open(sys.argv[2], "a") as steps:
    for line in open(sys.argv[1]):
        name, *args = json.loads(line)
        tick, out, rc = time.perf_counter(), io.StringIO(), "error"
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                rc = command.main([*args, "--help"], prog_name="loramem", standalone_mode=False)
        except Exception as e:  # an unknown command or option, a bad value
            out.write(f"{type(e).__name__}: {e}\n")
        print(f"\n== {name} (smoke): loramem {' '.join(args)} --help\n{out.getvalue()[-1500:]}")
        status = "ok" if rc in (0, None) else "failed"
        steps.write(f"{name}\t{status}\t{rc}\t{time.perf_counter() - tick:.1f}\tparsed with --help\n")
EOF
fi
rm -f "$RES/.smoke.jsonl"

# -- summary.json: the machine, the versions, and each step's status
"$SYS_PY" - "$RES" "$STEPS" "$DEVICE" "$SMOKE" "$(($(date +%s) - START))" "${PY:-$SYS_PY}" <<'EOF' 2>> "$LOG"
import json, re, subprocess, sys
res, steps, device, smoke, total, py = sys.argv[1:7]

def out(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""

try:
    versions = json.load(open(f"{res}/.versions.json"))
except (OSError, ValueError):
    versions = None
summary = {"device": device, "smoke": smoke == "1", "seconds": int(total), "commit": out("git", "rev-parse", "HEAD"),
           "dirty": bool(out("git", "status", "--porcelain", "--untracked-files=no")),
           "nvidia_smi": out("nvidia-smi", "-L"), "python_used": py, "versions": versions, "steps": {}}
for line in open(steps):
    name, status, rc, secs, note = line.rstrip("\n").split("\t")
    summary["steps"][name] = {"status": status, "rc": rc, "seconds": float(secs or 0), **({"note": note} if note else {})}
log = open(f"{res}/log.txt", errors="replace").read()
tests = log.split("== tests", 1)[1].split("\n== ", 1)[0] if "== tests" in log else ""
counts = dict((k, int(v)) for v, k in re.findall(r"(\d+) (passed|failed|errors?|skipped|deselected|xfailed|xpassed)", tests[-3000:]))
if "tests" in summary["steps"]:
    summary["steps"]["tests"]["counts"] = counts
json.dump(summary, open(f"{res}/summary.json", "w"), indent=2)
print(json.dumps({k: v["status"] for k, v in summary["steps"].items()}))
EOF
rm -f "$STEPS" "$RES/.versions.json"
! grep -q '"status": "\(failed\|timeout\)"' "$RES/summary.json"
