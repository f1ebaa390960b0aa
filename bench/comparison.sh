#!/bin/bash
# The same-budget runs behind docs/models.md "Comparison" (#6) and docs/repr.md "Results" (#7),
# exactly as run on 2026-11-25 on the 2-core CPU: two lanes, one thread each (about 100 minutes).
# Needs data/manifest.tsv (vcconv data synth + vcconv data prepare, see docs/data.md).
set -e
cd "$(dirname "$0")/.."
V=.venv/bin/vcconv
P=.venv/bin/python
mkdir -p runs/cmp runs/cmp-heldout runs/repr
vc() { $V train --model "$1" --data data/manifest.tsv --out "runs/cmp/$1" --time-budget 20 --max-steps 100000 \
         --set num_threads=1 "${@:2}" > "runs/cmp/$1.log" 2>&1; }
heldout() { $P bench/heldout_protocol.py --model "runs/cmp/$1" --vocoder griffinlim --no-baselines \
              --out "$PWD/runs/cmp-heldout/$1" > "runs/cmp-heldout/$1.log" 2>&1; }
rtrain() { $V repr train --data data/manifest.tsv --out "runs/repr/$1" --time-budget 8 --max-steps 100000 \
             --set num_threads=1 "${@:2}" > "runs/repr/$1.log" 2>&1; }

vc plain & vc adain & wait
laneA() {
  vc adversarial --set ae_warmup_steps=1000 --set clf_warmup_steps=200 --set clf_steps=2 --set adv_anneal_steps=500
  heldout plain
  rtrain dim --method dim
  rtrain quick-thought --method quick-thought
  rtrain seq --method seq
  heldout adversarial
}
laneB() {
  vc vq
  heldout adain
  rtrain cpc --method cpc
  rtrain binary --method binary
  rtrain skip-thought --method quick-thought --set skip_thought=true
  heldout vq
}
laneA & laneB & wait

$P bench/compare_models.py plain=runs/cmp/plain adain=runs/cmp/adain adversarial=runs/cmp/adversarial vq=runs/cmp/vq \
    adain-base=pretrained/adain-base.safetensors --heldout-root runs/cmp-heldout --out runs/cmp-table
$P bench/compare_models.py dim=runs/repr/dim cpc=runs/repr/cpc quick-thought=runs/repr/quick-thought \
    skip-thought=runs/repr/skip-thought binary=runs/repr/binary seq=runs/repr/seq \
    adain-base=pretrained/adain-base.safetensors --out runs/repr-table
$P bench/repr_figures.py dim=runs/repr/dim cpc=runs/repr/cpc quick-thought=runs/repr/quick-thought \
    skip-thought=runs/repr/skip-thought binary=runs/repr/binary seq=runs/repr/seq --out docs/figures
