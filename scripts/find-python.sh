#!/usr/bin/env bash
# Print the first Python 3.11 or 3.12 that actually runs (pyenv shims exist even for versions not enabled).
for candidate in python3.11 python3.12 python3; do
  if "$candidate" -c 'import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] < (3, 13) else 1)' 2>/dev/null; then
    command -v "$candidate"; exit 0
  fi
done
echo "no Python 3.11 or 3.12 found (pjsua2-python has wheels for 3.8-3.12 only); install python3.11" >&2
exit 1
