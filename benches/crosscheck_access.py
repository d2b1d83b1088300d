#!/usr/bin/env python3
"""A third cross-check: an nginx "combined" access log written apart from
examples/gen_corpus.rs, with 401 bursts, and its ground truth.

Noise: 200/304/403/404/500 responses; request paths, user names and user
agents that plant a victim address and whole fake log tails (with `"`
escaped as `\\x22`, as nginx writes it). Attackers: 40 above the threshold
(every 5th IPv6), 40 at exactly 49 in 55 s.

    python3 benches/crosscheck_access.py 300000 /tmp/x/access.log
    TZ=UTC target/release/authwatch replay --config target/bench/authwatch.toml \\
        --json /tmp/x/access.log | python3 -c 'import json,sys; \\
        print("\\n".join(sorted({json.loads(l)["ip"] for l in sys.stdin})))' \\
        | diff - /tmp/x/access.log.truth && echo exact
"""
import crosscheck_common as common
from crosscheck_common import write_truth
import random, sys, datetime
rnd = random.Random(5)
N = int(sys.argv[1]); out = open(sys.argv[2], "w")
t0 = datetime.datetime(2026, 3, 1, tzinfo=datetime.timezone.utc)
recs = []; attempts = {}
def ip4(): return common.ip4(rnd, 126)
def ip6(): return common.ip6(rnd)
uas = ['Mozilla/5.0 (X11; Linux x86_64)', 'curl/8.5.0', 'python-requests/2.31 10.9.9.9', 'Go-http-client/1.1 "x" 401 0 "-"']
paths = ['/api/v1/orders', '/login', '/api/v1/me?ip=10.9.9.9', '/wp-login.php', '/%2e%2e/10.9.9.9 HTTP/1.1" 401 0']
def esc(v): return v.replace('"', '\\x22')
def line(t, ip, status):
    return '%s - %s [%s] "%s %s HTTP/1.1" %d %d "%s" "%s"' % (
        ip, rnd.choice(['-', 'alice', '10.9.9.9']), t.strftime('%d/%b/%Y:%H:%M:%S +0000'),
        rnd.choice(['GET', 'POST']), esc(rnd.choice(paths)), status, rnd.randint(0, 5000),
        rnd.choice(['-', 'https://example.com/']), esc(rnd.choice(uas)))
def attack(start, ip, total, span):
    for k in range(total):
        t = start + datetime.timedelta(seconds=span * k / total)
        recs.append((t, line(t, ip, 401))); attempts.setdefault(ip, []).append(t.replace(microsecond=0))
day = 86400 / 6
for i in range(40): attack(t0 + datetime.timedelta(seconds=rnd.uniform(0, day)), ip6() if i % 5 == 0 else ip4(), rnd.randint(60, 300), rnd.uniform(5, 50))
for i in range(40): attack(t0 + datetime.timedelta(seconds=rnd.uniform(0, day)), ip6() if i % 5 == 0 else ip4(), 49, 55)
while len(recs) < N:
    t = t0 + datetime.timedelta(seconds=rnd.uniform(0, day))
    recs.append((t, line(t, ip4(), rnd.choice([200, 200, 200, 304, 404, 403, 500]))))
recs.sort(key=lambda r: r[0])
for t, l in recs: out.write(l + "\n")
write_truth(sys.argv[2], attempts, len(recs))
