#!/usr/bin/env bash
# The main job: a crash-consistency sweep on the simulated disk, from a fresh
# machine (installs what is missing, builds, then sweeps). Arguments are
# passed to `thinp sim sweep`; the default sweeps seeds 1..500 of the pool
# scenario: the whole engine (thins, snapshots, concurrent IO, crashes and
# recovery), every sector checked against the reference model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release --target thinp
if [ $# -eq 0 ]; then set -- --scenario pool --seeds 1..500; fi
exec build/bin/thinp sim sweep "$@"
