#!/usr/bin/env bash
# The inspection page in Debian's chromium, headless, driven by playwright-core
# (tests/browser/ui.mjs; npm ci'd into tests/browser/node_modules on first
# use): GET / loads, a photo uploaded through the page shows the reference's
# top-1 label (tests/fixtures/inspect/default_model.json), one bar per block
# in each chart, and a heat map with non-blank pixels; nothing is fetched
# from elsewhere and the page logs no error. Then the same on an INT8 model.
# Skips only where chromium cannot start. SCREENSHOT=FILE also saves the page (the README's picture).
. "$(dirname "$0")/lib.sh"
cd "$ROOT" || exit 1
MODEL=models/resnet50.safetensors
REF=tests/fixtures/inspect/default_model.json
PHOTO=/usr/share/darknet/data/dog.jpg
daemon_scratch

if [ ! -x /usr/bin/chromium ]; then
    not_ok "/usr/bin/chromium is missing: scripts/install-deps.sh installs Debian's chromium"
    tap_done
fi
if [ ! -d tests/browser/node_modules/playwright-core ]; then
    if ! (cd tests/browser && npm ci --no-audit --no-fund >"$TMP/npm.log" 2>&1); then
        sed 's/^/# /' "$TMP/npm.log"
        not_ok "npm ci in tests/browser (playwright-core) failed; this test needs the npm registry"
        tap_done
    fi
fi
if ! BUILD=$BUILD models/fetch_default.sh >"$TMP/fetch.log" 2>&1 || [ ! -s "$MODEL" ]; then
    sed 's/^/# /' "$TMP/fetch.log"
    not_ok "default model: models/fetch_default.sh failed (see above)"
    tap_done
fi
read -r LABEL BLOCKS < <(jq -r '."dog.jpg" | "\(.labels[0]) \(.blocks | length)"' "$REF")

PORT=$(free_port)
URL=http://127.0.0.1:$PORT
"$RESNETD" --model "$MODEL" --listen 127.0.0.1:$PORT 2>"$TMP/log" &
PID=$!
check "the daemon starts with the default model" wait_ready "$URL"
# a HOME of its own: chromium writes its profile there, even headless
HOME=$TMP timeout 300 node tests/browser/ui.mjs "$URL" "$PHOTO" "$LABEL" "$BLOCKS" ${SCREENSHOT:+"$SCREENSHOT"}
rc=$?
[ $rc -ne 0 ] && _tap_failed=1
kill "$PID" 2>/dev/null
wait "$PID" 2>/dev/null

# the same page on an INT8 model (a fixture: bottleneck blocks, 12 classes,
# no labels); its top-1 is resnet classify's
QMODEL=tests/fixtures/int8/bottleneck.int8.safetensors
QLABEL=$("$BUILD/resnet" classify -m "$QMODEL" --topk 1 --json "$PHOTO" 2>/dev/null | jq -r '.predictions[0].label')
QBLOCKS=$("$BUILD/resnet" info --json "$QMODEL" 2>/dev/null | jq '.blocks | add')
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
"$RESNETD" --model "$QMODEL" --listen 127.0.0.1:$PORT 2>"$TMP/qlog" &
PID=$!
check "the daemon starts with an INT8 model" wait_ready "$URL"
echo "# the page on the INT8 model (top-1 $QLABEL, $QBLOCKS blocks)"
HOME=$TMP timeout 300 node tests/browser/ui.mjs "$URL" "$PHOTO" "$QLABEL" "$QBLOCKS" | sed 's/^\(\(not \)\?ok - \)/\1INT8: /'
[ "${PIPESTATUS[0]}" -ne 0 ] && _tap_failed=1
kill "$PID" 2>/dev/null
wait "$PID" 2>/dev/null
PID=
tap_done
