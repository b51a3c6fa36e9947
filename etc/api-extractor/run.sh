#!/usr/bin/env bash
# API reports, one per entry point of package.json "exports" (configs: etc/api-extractor/*.json,
# reports: etc/*.api.md). Reads the built .d.ts in dist/, so build first.
#   bash etc/api-extractor/run.sh --local   rewrite the reports (`npm run api` builds, then this)
#   bash etc/api-extractor/run.sh           fail when a built surface differs from its committed
#                                           report, and show the difference (`npm run api:check`, CI)
set -uo pipefail
cd "$(dirname "$0")/../.."
mode=()
[ "${1:-}" = "--local" ] && mode=(--local)
scratch=node_modules/.cache/api-extractor
mkdir -p "$scratch"
status=0
for entry in weft server testing admin grpc; do
  report=weft
  [ "$entry" = weft ] || report="weft-$entry"
  log="$scratch/$entry.log"
  if npx --no-install api-extractor run "${mode[@]}" --config "etc/api-extractor/$entry.json" >"$log" 2>&1; then
    # In --local mode a changed report is rewritten and said so here.
    grep -hE "Warning|ERROR" "$log" | sed "s/^/$entry: /"
    echo "api-extractor: etc/$report.api.md ok"
  else
    status=1
    cat "$log"
    [ -f "$scratch/$report.api.md" ] && diff -u "etc/$report.api.md" "$scratch/$report.api.md"
    echo "etc/$report.api.md: the built API differs from it (diff above, - committed + built)." \
      "If the change is meant, run \`npm run api\` and commit the report." >&2
  fi
done
exit $status
