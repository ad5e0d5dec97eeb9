#!/usr/bin/env bash
# Starts (installing them first when missing) the servers the tests need, each bound to
# 127.0.0.1. One file per service in scripts/services/, defining `start_<name>`; a service
# already listening is left as it is. Usage: scripts/services.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

python_env
for file in scripts/services/*.sh; do
    [[ -e $file ]] || continue
    name=$(basename "$file" .sh)
    source "$file"
    say "service $name"
    "start_$name"
done
