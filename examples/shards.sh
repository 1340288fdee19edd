#!/bin/sh
# Run a campaign as N shard processes on this machine and merge them, as
# a cluster would (what check --jobs N does by itself):
#   examples/shards.sh 4 --seed 1 --traces 2000 --profile linux-6.18
# The merged table equals `splicecheck check --traces 2000 ...`'s.
set -eu
n=$1; shift
bin=${SPLICECHECK:-bin/splicecheck}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT INT TERM
k=0
while [ "$k" -lt "$n" ]; do
	"$bin" check "$@" --jobs 1 --shard "$k/$n" --format json --out "" > "$dir/shard-$k.json" || [ $? -eq 1 ] &
	k=$((k + 1))
done
wait
"$bin" merge "$dir"/shard-*.json
