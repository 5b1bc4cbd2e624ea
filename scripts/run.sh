#!/usr/bin/env bash
# scripts/run.sh - installs what is missing, builds, and starts wagate with
# config/wagate.json (or the file given as $1). With no API key configured
# it also starts wagate-sandbox on 127.0.0.1:8090, points the gateway at it
# and says so. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
conf=${1:-$top/config/wagate.json}
. scripts/lib.sh
scripts/deps.sh
build_tree "$top/_build/run"
bin=$top/_build/run
"$bin/wagate" --check-config -c "$conf" >/dev/null 2>&1 ||
    { "$bin/wagate" --check-config -c "$conf" >/dev/null; exit 2; }

key_env=$(config_get "$bin" "$conf" .upstream.api_key_env)
key_env=${key_env:-AUTOCALLS_API_KEY}
key_file=$(config_get "$bin" "$conf" .upstream.api_key_file)

sandbox_pid=
cleanup() { [ -n "$sandbox_pid" ] && kill "$sandbox_pid" 2>/dev/null || true; }
trap cleanup EXIT INT TERM

if [ -z "${!key_env:-}" ] && [ -z "$key_file" ]; then
    sb_port=${SANDBOX_PORT:-8090}
    export SANDBOX_API_KEY=sandbox-demo-key
    "$bin/wagate-sandbox" --listen "127.0.0.1:$sb_port" >"$top/_build/sandbox.log" 2>&1 &
    sandbox_pid=$!
    for _ in $(seq 1 200); do
        grep -q "listening on" "$top/_build/sandbox.log" 2>/dev/null && break
        kill -0 "$sandbox_pid" 2>/dev/null || { cat "$top/_build/sandbox.log"; exit 1; }
        sleep 0.05
    done
    # the demo recipient wrote to sender 12, so a freeform send is allowed
    curl -fsS -X POST "http://127.0.0.1:$sb_port/_sandbox/inbound" \
        -H 'Content-Type: application/json' \
        -d '{"sender_id":12,"recipient_phone":"+14155550123"}' >/dev/null
    demo_conf=$top/_build/wagate-demo.json
    sed "s|\"base_url\": *\"[^\"]*\"|\"base_url\": \"http://127.0.0.1:$sb_port\"|" "$conf" >"$demo_conf"
    conf=$demo_conf
    export "$key_env"=sandbox-demo-key
    cat <<MSG
run: no API key in \$$key_env and no upstream.api_key_file, so this is a demo:
run:   wagate-sandbox (a local simulator of the Autocalls API) listens on 127.0.0.1:$sb_port
run:   (log: _build/sandbox.log); the gateway forwards to it with the sandbox's key.
run:   The recipient +14155550123 has an open 24-hour window with sender 12.
run:   Open http://127.0.0.1:$sb_port/ in a browser: the sandbox's inbox page shows
run:   every message sent, live; reply there as the customer, flip senders, arm faults.
MSG
fi

listen=$(config_get "$bin" "$conf" '.listen[0]')
listen=${listen:-127.0.0.1:8080}
cat <<MSG
run: starting wagate with $conf on $listen. Try:

  curl -i http://$listen/api/user/whatsapp/send-freeform \\
    -H 'Content-Type: application/json' \\
    -d '{"sender_id": 12, "recipient_phone": "+14155550123", "message": "Hello from wagate"}'

MSG
"$bin/wagate" -c "$conf"
