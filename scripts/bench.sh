#!/usr/bin/env bash
# scripts/bench.sh - measures wagate against nginx in the same run, on
# loopback, and prints ratios (SPEC section 10). Not a test: numbers only.
#
#   forwarding: wrk -> wagate -> fake upstream  vs  wrk -> nginx proxy_pass
#               (keep-alive, header injection) -> the same fake upstream;
#               throughput ratio, the latency each adds at p50 and p99,
#               and each server's CPU time per request.
#   short-circuit: wagate answering a send itself (a window known closed;
#               an over-length message) vs nginx returning a static answer
#               of the same size.
#   cache memory: tests/bench_cache fills 1,000,000 entries.
#   shaping: 100 queued sends against the sandbox's 5/s, with one gateway
#               and with three sharing a Redis (span, worst window, 429s);
#               the p50 a Redis round trip adds to forwarding and to a
#               short-circuit, against the memory backend.
#   learned refusals: 200 queued sends, half from an offline sender, at
#               5/s: how long the online sender's 100 take with learned
#               refusals on and off.
#
#   system calls: strace -c -f over BENCH_STRACE_S (3) seconds of forwarding
#               load, per request served, wagate and nginx proxy_pass.
#
# Usage: scripts/bench.sh [seconds-per-run]   (default 10)
#   BENCH_FORWARD_ONLY=1 stops after the forwarding path and its system
#   calls (to measure one change to that path).
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
dur=${1:-10}
conns=${BENCH_CONNS:-64}
. scripts/lib.sh
scripts/deps.sh nginx-light wrk python3 redis-server strace

dir=$top/_build/bench
build_tree "$dir" CFLAGS="-O2 -g"
make -C "$dir" tests/bench_cache >/dev/null

pick_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
UP=$(pick_port); NGX=$(pick_port); GW=$(pick_port)
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

answer='{"success":true,"conversation_id":1234,"message_id":567,"whatsapp_message_id":890,"message_sid":"SMxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx","session_status":{"is_open":true,"can_send_freeform":true,"requires_template":false,"message":"Session open (23 hr 45 min remaining). Unlimited free-form messages allowed.","minutes_remaining":1425,"expires_at":"2099-02-25T10:30:00+00:00"}}'
# Two nginx processes, one worker each: the fake upstream, and the reference
# proxy (with the static twins added below), so that the proxy has a worker
# of its own as wagate has its loop, and its system calls are its own.
cat >"$work/nginx-up.conf" <<NGINX
worker_processes 1;
daemon off;
pid $work/nginx-up.pid;
error_log $work/nginx-up-error.log warn;
events { worker_connections 20000; }
http {
    access_log off;
    keepalive_requests 1000000;
    server {  # the fake upstream
        listen 127.0.0.1:$UP;
        location / { default_type application/json; return 200 '$answer'; }
    }
}
NGINX
cat >"$work/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 20000; }
http {
    access_log off;
    keepalive_requests 1000000;
    upstream fake { server 127.0.0.1:$UP max_conns=${BENCH_UPSTREAM_CONNS:-64}; keepalive ${BENCH_UPSTREAM_CONNS:-64}; }
    server {  # the reference proxy
        listen 127.0.0.1:$NGX;
        location / {
            proxy_pass http://fake;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Authorization "Bearer bench-key";
            proxy_set_header Cookie "";
        }
        location = /_status { stub_status; }  # its request count
    }
}
NGINX

# admin token "bench-admin"
cat >"$work/wagate.json" <<JSON
{"listen": ["127.0.0.1:$GW"],
 "upstream": {"base_url": "http://127.0.0.1:$UP", "max_connections": ${BENCH_UPSTREAM_CONNS:-64},
              "rate_limit_rps": 1000000, "rate_limit_burst": 1000000},
 "admin": {"token_sha256": "$(printf bench-admin | sha256sum | cut -d' ' -f1)"},
 "log": {"level": "warn"}}
JSON
AUTOCALLS_API_KEY=bench-key "$dir/wagate" -c "$work/wagate.json" 2>"$work/wagate.log" &
gw_pid=$!
pids+=($gw_pid)
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$GW/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
# the gateway's own answers, byte for byte, for nginx to serve statically
closed_phone=+14155550999
curl -fs -X POST "http://127.0.0.1:$GW/admin/sessions/inbound" -H 'Authorization: Bearer bench-admin' \
    -H 'Content-Type: application/json' \
    -d "{\"sender_id\":12,\"recipient_phone\":\"$closed_phone\",\"received_at\":\"2020-01-01T00:00:00Z\"}"
sc_body=$(curl -s -X POST "http://127.0.0.1:$GW/api/user/whatsapp/send-freeform" -H 'Content-Type: application/json' \
    -d "{\"sender_id\":12,\"recipient_phone\":\"$closed_phone\",\"message\":\"Hello from the benchmark\"}")
long_msg=$(head -c 4100 /dev/zero | tr '\0' 'x')
tl_body=$(curl -s -X POST "http://127.0.0.1:$GW/api/user/whatsapp/send-freeform" -H 'Content-Type: application/json' \
    -d "{\"sender_id\":12,\"recipient_phone\":\"+14155550123\",\"message\":\"$long_msg\"}")
NGS=$(pick_port)
# static twins of the gateway's answers, same status, same bytes
sed -i "s|^}\$||" "$work/nginx.conf"
cat >>"$work/nginx.conf" <<NGINX
    server {
        listen 127.0.0.1:$NGS;
        location /closed { default_type application/json; return 403 '$sc_body'; }
        location /long { default_type application/json; return 422 '$tl_body'; }
    }
}
NGINX
nginx -c "$work/nginx-up.conf" -p "$work" &
pids+=($!)
nginx -c "$work/nginx.conf" -p "$work" &
ngx_pid=$!
pids+=($ngx_pid)
for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$GW/healthz" >/dev/null 2>&1 &&
        curl -fs -X POST "http://127.0.0.1:$UP/" >/dev/null 2>&1 &&
        curl -fs "http://127.0.0.1:$NGX/_status" >/dev/null 2>&1 && break
    sleep 0.1
done
ngx_worker=$(pgrep -P "$ngx_pid" | head -n 1) # worker_processes 1

cat >"$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"sender_id":12,"recipient_phone":"+14155550123","message":"Hello from the benchmark"}'
wrk.headers["Content-Type"] = "application/json"
LUA
cat >"$work/closed.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"sender_id":12,"recipient_phone":"$closed_phone","message":"Hello from the benchmark"}'
wrk.headers["Content-Type"] = "application/json"
LUA
cat >"$work/long.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"sender_id":12,"recipient_phone":"+14155550123","message":"$long_msg"}'
wrk.headers["Content-Type"] = "application/json"
LUA

# wrk's latency at a percentile ("50%", "99%") in ms
percentile_ms() { # wrk-output percentile
    echo "$1" | awk -v p="$2" '$1==p {v=$2; if (v ~ /us$/) {sub("us","",v); v/=1000} else if (v ~ /ms$/) {sub("ms","",v)} else if (v ~ /s$/) {sub("s","",v); v*=1000}; print v}'
}

# user + system CPU time of a process, in clock ticks
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# run URL [SCRIPT [CONNECTIONS [PID]]] -> "rps p50_ms p99_ms", then with
# PID the server's CPU time per request in microseconds (equal CPU: one
# wagate loop against one nginx worker, each on the machine's own cores)
run() {
    local out c=${3:-$conns} t0 t1 cpu=""
    [ -n "${4:-}" ] && t0=$(cpu_ticks "$4")
    out=$(wrk -t"$(( c < 2 ? 1 : 2 ))" -c"$c" -d"${dur}s" --latency -s "$work/${2:-post}.lua" "$1" 2>&1)
    local rps n
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    if [ -n "${4:-}" ]; then
        t1=$(cpu_ticks "$4")
        n=$(echo "$out" | awk '/requests in/ {print $1}')
        cpu=$(awk -v a="$t0" -v b="$t1" -v n="$n" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.1f", (b - a) * 1e6 / hz / n}')
    fi
    bad=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
    [ -n "$bad" ] && echo "bench: note: $1 answered $bad non-2xx responses (expected only for the short-circuit runs)" >&2
    echo "$rps $(percentile_ms "$out" 50%) $(percentile_ms "$out" 99%) $cpu"
}

path=/api/user/whatsapp/send-freeform
echo "bench: $dur s per run, $conns connections, wrk -t2, loopback, $(nproc) cores"
read -r d_rps d_p50 d_p99 < <(run "http://127.0.0.1:$UP$path")
read -r n_rps n_p50 n_p99 n_cpu < <(run "http://127.0.0.1:$NGX$path" post "$conns" "$ngx_worker")
read -r w_rps w_p50 w_p99 w_cpu < <(run "http://127.0.0.1:$GW$path" post "$conns" "$gw_pid")
printf '%-34s %12s %10s %10s %12s\n' "forwarding path" "req/s" "p50 ms" "p99 ms" "CPU us/req"
printf '%-34s %12s %10s %10s\n' "fake upstream direct" "$d_rps" "$d_p50" "$d_p99"
printf '%-34s %12s %10s %10s %12s\n' "nginx proxy_pass (keep-alive)" "$n_rps" "$n_p50" "$n_p99" "$n_cpu"
printf '%-34s %12s %10s %10s %12s\n' "wagate" "$w_rps" "$w_p50" "$w_p99" "$w_cpu"
awk -v w="$w_rps" -v n="$n_rps" -v wp="$w_p50" -v dp="$d_p50" -v np="$n_p50" \
    -v wq="$w_p99" -v dq="$d_p99" -v nq="$n_p99" 'BEGIN {
    printf "ratio wagate/nginx throughput: %.2f\n", w / n;
    printf "p50 added over direct: wagate %.3f ms, nginx %.3f ms\n", wp - dp, np - dp;
    printf "p99 added over direct: wagate %.3f ms, nginx %.3f ms\n", wq - dq, nq - dq }'

# ---- system calls per forwarded request ----
# strace -c -f attached over a fixed window of wrk load counts every call
# (counts, not times: a loaded machine does not change them), divided by
# the requests the server itself says it served in that window: wagate's
# wagate_requests_total for the route, nginx's stub_status.
sys_s=${BENCH_STRACE_S:-3}
wagate_served() {
    curl -fs "http://127.0.0.1:$GW/metrics" |
        awk '/^wagate_requests_total\{route="send_freeform"/ {n += $NF} END {print n + 0}'
}
nginx_served() { curl -fs "http://127.0.0.1:$NGX/_status" | awk 'NR == 3 {print $3}'; }
# count_syscalls LABEL PID SERVED-FUNCTION URL: "$work/sys-LABEL" gets one
# "syscall calls-per-request" line per call, then "total", then "requests"
count_syscalls() {
    local label=$1 pid=$2 served=$3 url=$4 a b st wp
    wrk -t2 -c"$conns" -d"$((sys_s + 3))s" -s "$work/post.lua" "$url" >/dev/null 2>&1 &
    wp=$!
    sleep 1 # past the connects: the steady state
    strace -c -U name,calls -S calls -f -p "$pid" -o "$work/strace-$label.txt" 2>/dev/null &
    st=$!
    until awk '/^TracerPid/ {exit !($2 != 0)}' "/proc/$pid/status"; do sleep 0.02; done
    a=$($served)
    sleep "$sys_s"
    b=$($served)
    kill -INT "$st"
    wait "$st" || true
    wait "$wp" || true
    awk -v n=$((b - a)) 'NR > 2 && $1 != "total" && $1 !~ /^-/ {printf "%s %.3f\n", $1, $2 / n}
        $1 == "total" {printf "total %.3f\nrequests %d\n", $2 / n, n}' \
        "$work/strace-$label.txt" >"$work/sys-$label"
}
count_syscalls wagate "$gw_pid" wagate_served "http://127.0.0.1:$GW$path"
count_syscalls nginx "$ngx_worker" nginx_served "http://127.0.0.1:$NGX$path"
echo
echo "system calls per forwarded request (strace -c -f over $sys_s s of wrk load, counts)"
awk 'FNR == 1 {f++}
    $1 == "requests" {req[f] = $2; next}
    {v[f, $1] = $2; if (!($1 in seen)) {seen[$1] = 1; if ($1 != "total") name[++k] = $1}}
    END {
        printf "%-34s %12s %10s\n", "per request", "wagate", "nginx"
        for (i = 1; i <= k; i++)
            if (v[1, name[i]] >= 0.005 || v[2, name[i]] >= 0.005)
                printf "%-34s %12.2f %10.2f\n", name[i], v[1, name[i]], v[2, name[i]]
        printf "%-34s %12.2f %10.2f\n", "total", v[1, "total"], v[2, "total"]
        printf "requests in the window: wagate %d, nginx %d\n", req[1], req[2]
        printf "ratio wagate/nginx system calls per request: %.2f\n", v[1, "total"] / v[2, "total"]
    }' "$work/sys-wagate" "$work/sys-nginx"
[ "${BENCH_FORWARD_ONLY:-}" = 1 ] && exit 0

read -r ns_rps ns_p50 ns_p99 ns_cpu < <(run "http://127.0.0.1:$NGS/closed" closed "$conns" "$ngx_worker")
read -r ws_rps ws_p50 ws_p99 ws_cpu < <(run "http://127.0.0.1:$GW$path" closed "$conns" "$gw_pid")
read -r nl_rps nl_p50 nl_p99 nl_cpu < <(run "http://127.0.0.1:$NGS/long" long "$conns" "$ngx_worker")
read -r wl_rps wl_p50 wl_p99 wl_cpu < <(run "http://127.0.0.1:$GW$path" long "$conns" "$gw_pid")
echo
printf '%-34s %12s %10s %10s %12s\n' "short-circuit path (${#sc_body} B, ${#tl_body} B)" "req/s" "p50 ms" "p99 ms" "CPU us/req"
printf '%-34s %12s %10s %10s %12s\n' "nginx static 403 (same bytes)" "$ns_rps" "$ns_p50" "$ns_p99" "$ns_cpu"
printf '%-34s %12s %10s %10s %12s\n' "wagate cached closed window" "$ws_rps" "$ws_p50" "$ws_p99" "$ws_cpu"
printf '%-34s %12s %10s %10s %12s\n' "nginx static 422 (same bytes)" "$nl_rps" "$nl_p50" "$nl_p99" "$nl_cpu"
printf '%-34s %12s %10s %10s %12s\n' "wagate over-length message" "$wl_rps" "$wl_p50" "$wl_p99" "$wl_cpu"
awk -v a="$ws_rps" -v b="$ns_rps" -v c="$wl_rps" -v d="$nl_rps" 'BEGIN {
    printf "ratio wagate/nginx: closed window %.2f, over-length %.2f\n", a / b, c / d }'
echo "wagate error lines: $(grep -c '"level":"error"' "$work/wagate.log" || true)"

echo
"$dir/tests/bench_cache" 1000000

# ---- shaping: a backlog of 100 sends against the sandbox's own 5/s limit ----
# drain LABEL PORT...: 100 distinct sends at once, spread round-robin over
# the gateways on PORT..., to the sandbox on $SBP; prints what it saw.
drain() {
    local label=$1
    shift
    local ports="$*"
    curl -fs -X DELETE "http://127.0.0.1:$SBP/_sandbox/requests" >/dev/null
    seq 0 99 | PORTS="$ports" xargs -P 100 -I{} sh -c 'set -- $PORTS; shift $(({} % $#)); \
        curl -s -o /dev/null -w "%{http_code}\n" -X POST \
        "http://127.0.0.1:$1/api/user/whatsapp/send-freeform" -H "Content-Type: application/json" \
        -d "{\"sender_id\":12,\"recipient_phone\":\"+1415557$(printf %04d {})\",\"message\":\"backlog {}\"}"' \
        >"$work/codes.txt"
    curl -fs "http://127.0.0.1:$SBP/_sandbox/requests" | LABEL="$label" python3 -c '
import json, os, sys
label = os.environ["LABEL"]
reqs = json.load(sys.stdin)["requests"]
t = sorted(r["mono_ms"] for r in reqs)
st = [r["status"] for r in reqs]
worst = max(sum(1 for u in t[i:] if u - t[i] < 1000) for i in range(len(t)))
span = (t[-1] - t[0]) / 1000
print("%s: %d sends reached the sandbox, %d answered 429 by it" % (label, len(t), st.count(429)))
print("%s: drain span %.3f s (ideal 19.8 s for 100 at 5/s), worst 1-second window %d sends" % (label, span, worst))
'
    echo "$label: callers got $(sort "$work/codes.txt" | uniq -c | tr '\n' ' ')"
}
# start_gw NAME PORT CONFIG-TEXT: a gateway; waits for its /healthz
start_gw() {
    printf '%s\n' "$3" >"$work/$1.json"
    AUTOCALLS_API_KEY=bench-key "$dir/wagate" -c "$work/$1.json" 2>"$work/$1.log" &
    pids+=($!)
    for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$2/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
}
echo
SBP=$(pick_port); GW2=$(pick_port)
"$dir/wagate-sandbox" --listen "127.0.0.1:$SBP" --api-key bench-key --rate-limit 5 >"$work/sandbox.log" 2>&1 &
pids+=($!)
shape_up='"rate_limit_rps": 5, "rate_limit_burst": 1, "max_queue_ms": 30000, "timeout_ms": 60000'
start_gw shape "$GW2" "{\"listen\": [\"127.0.0.1:$GW2\"],
 \"upstream\": {\"base_url\": \"http://127.0.0.1:$SBP\", $shape_up},
 \"log\": {\"level\": \"warn\"}}"
for _ in $(seq 1 100); do grep -q listening "$work/sandbox.log" && break; sleep 0.1; done
for i in $(seq 0 99); do
    curl -fs -X POST "http://127.0.0.1:$SBP/_sandbox/inbound" -H 'Content-Type: application/json' \
        -d "{\"sender_id\":12,\"recipient_phone\":\"+1415557$(printf %04d "$i")\"}" >/dev/null
done
drain shaping "$GW2"

# ---- learned refusals (SPEC section 4a): half the backlog from an offline sender ----
# refusal_drain LABEL PORT: 200 sends at once, alternating sender 12
# (online) and 13 (offline in the sandbox's default senders); how long the
# online sender's 100 took, and what the sandbox saw of each.
refusal_drain() {
    local label=$1 port=$2
    curl -fs -X DELETE "http://127.0.0.1:$SBP/_sandbox/requests" >/dev/null
    seq 0 199 | PORT="$port" xargs -P 200 -I{} sh -c 'i={}; s=$((12 + i % 2)); \
        curl -s -o /dev/null -w "$s %{http_code} %{time_total}\n" -X POST \
        "http://127.0.0.1:$PORT/api/user/whatsapp/send-freeform" -H "Content-Type: application/json" \
        -d "{\"sender_id\":$s,\"recipient_phone\":\"+1415558$(printf %04d $((i / 2)))\",\"message\":\"campaign $i\"}"' \
        >"$work/refusal-codes.txt"
    awk -v label="$label" '$1 == 12 { n++; if ($3 > t) t = $3; ok += ($2 == 200) }
        $1 == 13 { m++; if ($3 > u) u = $3 }
        END { printf "%s: online sender 12: %d sends, %d answered 200, the last after %.1f s; offline sender 13: %d sends, the last answered after %.1f s\n", label, n, ok, t, m, u }' \
        "$work/refusal-codes.txt"
    curl -fs "http://127.0.0.1:$SBP/_sandbox/requests" | LABEL="$label" python3 -c '
import json, os, sys
reqs = json.load(sys.stdin)["requests"]
by = {12: 0, 13: 0}
for r in reqs:
    b = r.get("body") or ""
    for s in by:
        if ("\"sender_id\":%d," % s) in b:
            by[s] += 1
print("%s: the sandbox saw %d sends from sender 12, %d from sender 13, %d answered 429" % (
    os.environ["LABEL"], by[12], by[13], sum(1 for r in reqs if r["status"] == 429)))
'
}
for i in $(seq 0 99); do
    curl -fs -X POST "http://127.0.0.1:$SBP/_sandbox/inbound" -H 'Content-Type: application/json' \
        -d "{\"sender_id\":12,\"recipient_phone\":\"+1415558$(printf %04d "$i")\"}" >/dev/null
done
refuse_up='"rate_limit_rps": 5, "rate_limit_burst": 1, "max_queue_ms": 60000, "timeout_ms": 60000'
echo
for mode in on off; do
    GRF=$(pick_port)
    periods=''
    [ "$mode" = off ] && periods=', "refusals": {"sender_offline_s": 0, "sender_not_found_s": 0, "balance_s": 0}'
    start_gw "refusals-$mode" "$GRF" "{\"listen\": [\"127.0.0.1:$GRF\"],
 \"upstream\": {\"base_url\": \"http://127.0.0.1:$SBP\", $refuse_up},
 \"log\": {\"level\": \"warn\"}$periods}"
    refusal_drain "learned refusals $mode" "$GRF"
    kill "${pids[-1]}" 2>/dev/null || true
done

# ---- shared state on Redis (SPEC section 11) ----
# A redis-server of the benchmark's own, on a unix socket in $work.
echo
redis-server --port 0 --unixsocket "$work/redis.sock" --save '' --appendonly no \
    --dir "$work" --logfile "$work/redis.log" --daemonize no &
pids+=($!)
for _ in $(seq 1 100); do [ -S "$work/redis.sock" ] && break; sleep 0.1; done
shared='"state": {"backend": "redis", "redis": {"url": "unix:'"$work"'/redis.sock"}, "instances": 3}'
# three instances, one account, draining the same backlog of 100
G=()
for k in 1 2 3; do
    G+=("$(pick_port)")
    start_gw "shared$k" "${G[-1]}" "{\"listen\": [\"127.0.0.1:${G[-1]}\"],
 \"upstream\": {\"base_url\": \"http://127.0.0.1:$SBP\", $shape_up},
 $shared, \"log\": {\"level\": \"warn\"}}"
done
drain "shaping, 3 instances on Redis" "${G[@]}"
# what a Redis round trip adds, against the memory backend measured above
GR=$(pick_port)
start_gw redis-fwd "$GR" "{\"listen\": [\"127.0.0.1:$GR\"],
 \"upstream\": {\"base_url\": \"http://127.0.0.1:$UP\", \"max_connections\": ${BENCH_UPSTREAM_CONNS:-64},
              \"rate_limit_rps\": 1000000, \"rate_limit_burst\": 1000000},
 \"admin\": {\"token_sha256\": \"$(printf bench-admin | sha256sum | cut -d' ' -f1)\"},
 $shared, \"log\": {\"level\": \"warn\"}}"
curl -fs -X POST "http://127.0.0.1:$GR/admin/sessions/inbound" -H 'Authorization: Bearer bench-admin' \
    -H 'Content-Type: application/json' \
    -d "{\"sender_id\":12,\"recipient_phone\":\"$closed_phone\",\"received_at\":\"2020-01-01T00:00:00Z\"}"
# one connection: the latency of one request, not a queue's
read -r mf_rps mf_p50 mf_p99 < <(run "http://127.0.0.1:$GW$path" post 1)
read -r rf_rps rf_p50 rf_p99 < <(run "http://127.0.0.1:$GR$path" post 1)
read -r ms_rps ms_p50 ms_p99 < <(run "http://127.0.0.1:$GW$path" closed 1)
read -r rs_rps rs_p50 rs_p99 < <(run "http://127.0.0.1:$GR$path" closed 1)
read -r rfc_rps rfc_p50 rfc_p99 < <(run "http://127.0.0.1:$GR$path")
read -r rsc_rps rsc_p50 rsc_p99 < <(run "http://127.0.0.1:$GR$path" closed)
printf '%-34s %12s %10s\n' "state on Redis (1 connection)" "req/s" "p50 ms"
printf '%-34s %12s %10s\n' "forwarding, memory" "$mf_rps" "$mf_p50"
printf '%-34s %12s %10s\n' "forwarding, Redis" "$rf_rps" "$rf_p50"
printf '%-34s %12s %10s\n' "closed window, memory" "$ms_rps" "$ms_p50"
printf '%-34s %12s %10s\n' "closed window, Redis" "$rs_rps" "$rs_p50"
printf '%-34s %12s %10s\n' "($conns connections) forwarding, Redis" "$rfc_rps" "$rfc_p50"
printf '%-34s %12s %10s\n' "($conns connections) closed, Redis" "$rsc_rps" "$rsc_p50"
awk -v a="$rf_p50" -v b="$mf_p50" -v c="$rs_p50" -v d="$ms_p50" 'BEGIN {
    printf "p50 a Redis round trip adds: forwarding %.3f ms, short-circuit %.3f ms\n", a - b, c - d }'

# ---- 10,000 caller connections held open ----
echo
GW3=$(pick_port)
printf '{"listen": ["127.0.0.1:%s"], "upstream": {"base_url": "http://127.0.0.1:%s"}, "limits": {"client_timeout_ms": 60000}, "log": {"level": "warn"}}' \
    "$GW3" "$UP" >"$work/conns.json"
AUTOCALLS_API_KEY=bench-key "$dir/wagate" -c "$work/conns.json" 2>"$work/wagate3.log" &
gw3=$!
pids+=($gw3)
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$GW3/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
before=$(rss "$gw3")
(ulimit -n 20000; python3 - "$GW3" "$gw3" "$before" <<'PY'
import socket, sys, time
port, pid, before = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
socks = []
for i in range(10000):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    socks.append(s)
for s in socks:  # every connection answered once and kept alive
    s.settimeout(5)
    s.recv(4096)
time.sleep(0.5)
rss = int([l.split()[1] for l in open("/proc/%s/status" % pid) if l.startswith("VmRSS")][0])
print("connections: 10000 kept-alive callers held: wagate RSS %.1f MiB (%.1f MiB before, %.2f KiB each)"
      % (rss / 1024, before / 1024, (rss - before) / 10000))
for s in socks:
    s.close()
PY
)
