#!/usr/bin/env bash
# The evolution gate: buf lint, the personal data marks (check-marks.ts: a marked field is a string
# or bytes, its subject field a string field of the same message), then buf breaking against the
# last commit of main (WIRE_JSON: the JSON on the bus and in the archive must stay readable).
# Run as `npm run check:contracts`.
set -euo pipefail
cd "$(dirname "$0")"
buf lint
node check-marks.ts
if git cat-file -e main:events/proto/canon 2>/dev/null; then
  buf breaking --against "../.git#branch=main,subdir=events"
  echo "contracts: lint and breaking checks passed against main"
else
  echo "contracts: lint passed; main has no contracts yet, so there is nothing to break"
fi
