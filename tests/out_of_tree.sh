#!/usr/bin/env bash
# Installs bevt to a temporary prefix, builds examples/plugin_template out of tree with find_package(bevt),
# and runs the unchanged installed bevt-run on it (--list-plugins, --help-plugin, --dry-run).
set -euo pipefail
build=${1:?build folder}
src=${2:?source folder}
work=$build/test-tmp/out_of_tree
rm -rf "$work" && mkdir -p "$work"
cmake --install "$build" --prefix "$work/prefix" >/dev/null
cmake -S "$src/examples/plugin_template" -B "$work/tpl" -G Ninja -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/tpl" >/dev/null
run="$work/prefix/bin/bevt-run"
export BEVT_PLUGIN_PATH="$work/tpl"
"$run" --list-plugins | tee "$work/list.txt"
grep -q "template_backbone.*libbevt_template_backbone.so" "$work/list.txt"
if grep -q "not loaded" "$work/list.txt"; then echo "a library failed to load"; exit 1; fi
"$run" --help-plugin template_backbone | grep -q "embed_dim"
"$run" "$src/examples/plugin_template/experiment.toml" --dry-run | tee "$work/dry.txt"
grep -q "model.backbone.*template_backbone" "$work/dry.txt"
echo "out-of-tree plugin: ok"
