#!/usr/bin/env bash
# A/B of the working tree against a commit (default HEAD), both ways round to cancel the bias of
# the slot each build runs in: prints the geometric mean of new/old over the two runs.
#   bash bench/profile/ab.sh [commit] [--unlimited | --concurrency=N] [--rounds=N] [--wall]
set -euo pipefail
base=${1:-HEAD}; shift || true
build() { npx esbuild "$1/src/index.ts" --bundle --platform=node --format=esm --loader:.lua=text --external:ioredis --log-level=warning --outfile="$2"; }
mkdir -p .tmp/ab && rm -rf .tmp/ab/base-tree && git worktree add -q --detach .tmp/ab/base-tree "$base"
trap 'git worktree remove --force .tmp/ab/base-tree' EXIT
build .tmp/ab/base-tree .tmp/ab/old.mjs && build . .tmp/ab/new.mjs
cp .tmp/ab/old.mjs .tmp/ab/a.mjs && cp .tmp/ab/new.mjs .tmp/ab/b.mjs
one=$(node --expose-gc --import tsx bench/profile/ab.ts "$@" | tail -1 | awk '{print $3}')
cp .tmp/ab/new.mjs .tmp/ab/a.mjs && cp .tmp/ab/old.mjs .tmp/ab/b.mjs
two=$(node --expose-gc --import tsx bench/profile/ab.ts "$@" | tail -1 | awk '{print $3}')
node -e "const [x, y] = [${one}, ${two}]; console.log('new/old: ' + x.toFixed(3) + ' and 1/' + y.toFixed(3) + ' → ' + Math.sqrt(x / y).toFixed(3))"
