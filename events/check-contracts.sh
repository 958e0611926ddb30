#!/usr/bin/env bash
# The evolution gate: buf lint, then buf breaking against the last commit of main (WIRE_JSON:
# the JSON on the bus and in the archive must stay readable). Run as `npm run check:contracts`.
set -euo pipefail
cd "$(dirname "$0")"
buf lint
if git cat-file -e main:events/proto/canon 2>/dev/null; then
  buf breaking --against "../.git#branch=main,subdir=events"
  echo "contracts: lint and breaking checks passed against main"
else
  echo "contracts: lint passed; main has no contracts yet, so there is nothing to break"
fi
