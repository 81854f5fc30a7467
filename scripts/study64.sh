#!/usr/bin/env bash
# The 64 px study (the project's headline result): the article's trick chain x 3 seeds, its classics,
# and an LR check, on a 2-core CPU, in the order that makes the article's claims testable earliest.
#
#   bash scripts/study64.sh [STEP...]     steps: pilot tricks0 tricks12 classics lrcheck classics12
#                                         (default: all)
#
# Every step is resumable: stop it at any moment (Ctrl-C, kill, reboot) and run the same command
# again; finished runs are skipped and a stopped run continues from its last epoch. Results, logs and
# per-image predictions go to reports/ (committed as runs finish); checkpoints stay outside the
# repository, in $CHECKPOINTS (default ../paddle-cnns-checkpoints/study64).
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
CHECKPOINTS="${CHECKPOINTS:-../paddle-cnns-checkpoints/study64}"
DATA=()
[ -n "${CALTECH101_ARCHIVE:-}" ] && DATA=(--data-dir "$CALTECH101_ARCHIVE")
COMMON=(--recipe cpu64 --results reports/results.csv --logdir reports/logs --checkpoint-dir "$CHECKPOINTS"
        --resume "${DATA[@]}")
TRICKS=baseline,leaky_relu,gap,dropout,conv3x3,concat_conv,all_tricks
# Longest first, so that two at a time end together (the VGG13s take ~1.2 process-hours each at
# 64 px, the others minutes): the claims' six (all but the full-BN vgg13_bn, googlenet_bn) are done
# after about two of the step's ~2.5 hours.
CLASSICS=vgg13,vgg13_bn_article,vgg13_bn,googlenet_bn_article,googlenet,googlenet_bn,alexnet,lenet

run() {  # exit 1 (some run diverged or failed) goes on to the next step; usage errors and Ctrl-C stop
  echo "+ ablations.run $*" >&2
  "$PY" -m ablations.run "$@" "${COMMON[@]}"
  local code=$?
  if [ "$code" -ne 0 ] && [ "$code" -ne 1 ]; then exit "$code"; fi
}

both_lrs() {  # one process per learning rate, one thread each, side by side: baseline and all_tricks
  # differ 4x in cost, so two runs of one command at a time would leave a core idle for half the step
  local pids=() code=0 lr
  for lr in 0.003 0.03; do
    local args=(--variants baseline,all_tricks --seed 0 --lr "$lr" --tag "lr$lr" --jobs 1 --threads 1)
    echo "+ ablations.run ${args[*]}" >&2
    "$PY" -m ablations.run "${args[@]}" "${COMMON[@]}" &  # the trainer itself, so the stop reaches it
    pids+=("$!")
  done
  trap 'kill -TERM "${pids[@]}" 2>/dev/null' INT TERM  # background jobs ignore Ctrl-C: pass the stop on
  for pid in "${pids[@]}"; do
    wait "$pid"
    local c=$?
    if [ "$c" -ne 0 ] && [ "$c" -ne 1 ] && [ "$code" -eq 0 ]; then code=$c; fi
  done
  wait  # a stop interrupts the waits above: reap both before going on
  trap - INT TERM
  if [ "$code" -ne 0 ]; then exit "$code"; fi
}

step() {
  case "$1" in
    pilot)    run --variant baseline --seed 0 ;;                       # is 15 epochs long enough? (README)
    tricks0)  run --variant tricks --seed 0 ;;                         # the chain, sigmoid and all_tricks+lrdecay
    tricks12) run --variants "$TRICKS" --seeds 1,2
              run --variant all_tricks --lr-decay --seeds 1,2 ;;
    classics) run --variants "$CLASSICS" --seed 0 ;;
    lrcheck)  both_lrs ;;
    classics12) run --variants "$CLASSICS" --seeds 1,2 ;;             # the issue's "as time allows"
    *) echo "error: unknown step $1 (steps: pilot tricks0 tricks12 classics lrcheck classics12)" >&2; exit 2 ;;
  esac
}

for s in "${@:-pilot tricks0 tricks12 classics lrcheck classics12}"; do
  for one in $s; do step "$one"; done
done
