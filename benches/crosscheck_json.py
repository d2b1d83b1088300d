#!/usr/bin/env python3
"""A second, independently written JSON service log and its ground truth.

Written apart from examples/gen_corpus.rs, like crosscheck_sshd.py, in the
shapes JWT services log with: structlog (ISO time, `client_ip`), pino
(epoch ms, `req.remoteAddress`), zap (epoch float seconds, Go's
`remote_addr` with port), python-json-logger (`asctime` in local time).
Noise: successful requests whose user agent says "invalid signature",
expired tokens, and a reflected body holding `client_ip` and the phrase.
Attackers: 40 above the threshold (every 5th IPv6), 40 at exactly 49 in
55 s, 50 slow ones, and scattered single failures.

The truth: an address is blocked when 50 of its failures fall within
less than 60 s.

    python3 benches/crosscheck_json.py 300000 /tmp/x/api.log
    TZ=UTC target/release/authwatch replay --config target/bench/authwatch.toml \\
        --json /tmp/x/api.log | python3 -c 'import json,sys; \\
        print("\\n".join(sorted({json.loads(l)["ip"] for l in sys.stdin})))' \\
        | diff - /tmp/x/api.log.truth && echo exact
"""
import crosscheck_common as common
from crosscheck_common import write_truth
import random, sys, json, datetime
rnd = random.Random(11)
N = int(sys.argv[1]); out = open(sys.argv[2], "w")
t0 = datetime.datetime(2026, 3, 1, tzinfo=datetime.timezone.utc)
recs = []; attempts = {}
def ip4(): return common.ip4(rnd)
def ip6(): return common.ip6(rnd)
fails = [
  lambda t, ip: {"timestamp": t.isoformat().replace("+00:00", "Z"), "level": "warning", "event": "jwt_rejected", "error": "Signature verification failed", "client_ip": ip, "path": "/api/orders"},
  lambda t, ip: {"level": 40, "time": int(t.timestamp()*1000), "pid": 7, "hostname": "api", "req": {"method": "GET", "url": "/v1/me", "remoteAddress": ip}, "err": {"type": "JsonWebTokenError", "message": "invalid signature"}, "msg": "request failed"},
  lambda t, ip: {"level": "error", "ts": t.timestamp(), "caller": "mw/auth.go:51", "msg": "unauthorized", "error": "token signature is invalid: signature is invalid", "remote_addr": ip + ":" + str(rnd.randint(1024, 65535)) if ":" not in ip else "[" + ip + "]:443"},
  lambda t, ip: {"asctime": t.strftime("%Y-%m-%d %H:%M:%S,") + "%03d" % (t.microsecond // 1000), "levelname": "WARNING", "name": "auth", "message": "JWT decode failed: Signature verification failed", "client_ip": ip},
]
ok = [
  lambda t, ip: {"timestamp": t.isoformat().replace("+00:00", "Z"), "level": "info", "event": "request", "status": 200, "client_ip": ip, "path": "/api/orders", "user_agent": "Mozilla/5.0 invalid signature"},
  lambda t, ip: {"timestamp": t.isoformat().replace("+00:00", "Z"), "level": "warning", "event": "jwt_rejected", "error": "Signature has expired", "client_ip": ip},
  lambda t, ip: {"level": 30, "time": int(t.timestamp()*1000), "msg": "request completed", "req": {"remoteAddress": ip, "headers": {"x-note": "invalid signature from 10.9.9.9"}}, "body": {"client_ip": "10.9.9.9", "msg": "invalid signature"}},
]
def attack(start, ip, total, span):
    f = rnd.choice(fails)
    for k in range(total):
        t = start + datetime.timedelta(seconds=span * k / total + rnd.uniform(0, 0.3))
        recs.append((t, json.dumps(f(t, ip))))
        attempts.setdefault(ip, []).append(t)
day = 86400 / 6
for i in range(40): attack(t0 + datetime.timedelta(seconds=rnd.uniform(0, day)), ip6() if i % 5 == 0 else ip4(), rnd.randint(60, 300), rnd.uniform(5, 50))
for i in range(40): attack(t0 + datetime.timedelta(seconds=rnd.uniform(0, day)), ip6() if i % 5 == 0 else ip4(), 49, 55)
for i in range(50): attack(t0 + datetime.timedelta(seconds=rnd.uniform(0, day/2)), ip4(), 150, day/2)
while len(recs) < N:
    t = t0 + datetime.timedelta(seconds=rnd.uniform(0, day))
    if rnd.random() < 0.05:
        ip = ip4(); f = rnd.choice(fails); recs.append((t, json.dumps(f(t, ip)))); attempts.setdefault(ip, []).append(t)
    else:
        recs.append((t, json.dumps(rnd.choice(ok)(t, ip4()))))
recs.sort(key=lambda r: r[0])
for t, l in recs: out.write(l + "\n")
write_truth(sys.argv[2], attempts, len(recs))
