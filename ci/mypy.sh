#!/usr/bin/env bash
# mypy over the package as it is installed: featuresql/ plus adapters/ as
# featuresql.adapters (pyproject's package-dir mapping, which mypy cannot read).
# The repository's own layout keeps adapters/ at the top level; a throwaway tree
# with a symlink gives mypy the installed one, so the adapters are checked too.
set -euo pipefail
cd "$(dirname "$0")/.."
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
cp -r featuresql "$tree/featuresql"
ln -s "$PWD/adapters" "$tree/featuresql/adapters"
(cd "$tree" && mypy --config-file "$OLDPWD/pyproject.toml" -p featuresql)
