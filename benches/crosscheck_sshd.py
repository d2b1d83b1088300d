#!/usr/bin/env python3
"""A second, independently written sshd corpus and its ground truth.

examples/gen_corpus.rs and the detector were written by the same hands;
this generator was written afterwards, from how OpenSSH logs rather than
from gen_corpus.rs, to catch what both might share. One connection's lines
share sshd's pid: `Invalid user` then `pam_unix ... authentication
failure` and `Failed password for invalid user` per attempt, and
`maximum authentication attempts exceeded` after six. Noise: cron, sudo,
logind, UFW kernel lines carrying addresses, accepted logins, scanners'
`Connection closed by ... [preauth]`. Attackers: 60 above the threshold
(every 5th IPv6), 60 at exactly 49 attempts in 55 s, 100 slow ones; user
names include `a b c` and `x from 10.0.0.1 port 22 ssh2`.

The truth: an address is blocked when 50 of its attempts fall within
less than 60 s (times at whole seconds, as logged).

    python3 benches/crosscheck_sshd.py 1000000 /tmp/x/auth.log
    TZ=UTC target/release/authwatch replay --config target/bench/authwatch.toml \\
        --json /tmp/x/auth.log | python3 -c 'import json,sys; \\
        print("\\n".join(sorted({json.loads(l)["ip"] for l in sys.stdin})))' \\
        | diff - /tmp/x/auth.log.truth && echo exact
"""
import crosscheck_common as common
from crosscheck_common import write_truth
import random, sys, datetime
rnd = random.Random(7)
N = int(sys.argv[1]); out = open(sys.argv[2], "w")
t0 = datetime.datetime(2026, 3, 1, 0, 0, 0)
events = []  # (time, text) ; attempts per ip with times for truth
attempts = {}
def ip4(): return common.ip4(rnd)
def ip6(): return common.ip6(rnd)
pid = [10000]
def newpid():
    pid[0] += rnd.randint(1, 7); return pid[0]
users = ["root","admin","test","oracle","ubuntu","git","user","pi","postgres","a b c","x from 10.0.0.1 port 22 ssh2"]
def conn(ts, ip, n_attempts, invalid, method="password"):
    p = newpid(); port = rnd.randint(1024, 65535); u = rnd.choice(users)
    t = ts
    lines = []
    if invalid:
        lines.append((t, p, "Invalid user %s from %s port %d" % (u, ip, port)))
    for k in range(n_attempts):
        t += datetime.timedelta(milliseconds=rnd.randint(50, 900))
        lines.append((t, p, "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=%s%s" % (ip, "" if invalid else "  user=" + u)))
        lines.append((t, p, "Failed %s for %s%s from %s port %d ssh2" % (method, "invalid user " if invalid else "", u, ip, port)))
        attempts.setdefault(ip, []).append(t)
    if n_attempts == 0 and invalid:
        attempts.setdefault(ip, []).append(ts)
    t += datetime.timedelta(milliseconds=30)
    if n_attempts >= 6:
        lines.append((t, p, "error: maximum authentication attempts exceeded for %s%s from %s port %d ssh2 [preauth]" % ("invalid user " if invalid else "", u, ip, port)))
        lines.append((t, p, "Disconnecting %s user %s %s port %d: Too many authentication failures [preauth]" % ("invalid" if invalid else "authenticating", u, ip, port)))
    else:
        lines.append((t, p, "Received disconnect from %s port %d:11: Bye Bye [preauth]" % (ip, port)))
        lines.append((t, p, "Disconnected from %s user %s %s port %d [preauth]" % ("invalid" if invalid else "authenticating", u, ip, port)))
    return lines
def attacker(start, ip, total, span_s):
    res = []; done = 0
    while done < total:
        n = min(rnd.randint(1, 6), total - done)
        ts = start + datetime.timedelta(seconds=span_s * done / total)
        res += conn(ts, ip, n, rnd.random() < 0.5)
        done += n
    return res
day = 86400 / 8
lines = []
# heavy attackers, below threshold, slow ones
for i in range(60):
    ip = ip6() if i % 5 == 0 else ip4()
    lines += attacker(t0 + datetime.timedelta(seconds=rnd.uniform(0, day)), ip, rnd.randint(60, 400), rnd.uniform(5, 50))
for i in range(60):
    ip = ip6() if i % 5 == 0 else ip4()
    lines += attacker(t0 + datetime.timedelta(seconds=rnd.uniform(0, day)), ip, 49, 55)
for i in range(100):
    ip = ip4()
    lines += attacker(t0 + datetime.timedelta(seconds=rnd.uniform(0, day/2)), ip, 200, day/2)
# noise until N lines
noise_tpl = [
 "CRON[{p}]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)",
 "CRON[{p}]: (root) CMD (   cd / && run-parts --report /etc/cron.hourly)",
 "sudo[{p}]:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/apt update",
 "systemd-logind[{p}]: New session 1234 of user alice.",
 "kernel: [UFW BLOCK] IN=eth0 OUT= MAC=00 SRC={ip} DST=10.0.0.5 LEN=40 PROTO=TCP SPT=1234 DPT=22",
 "sshd[{p}]: Accepted publickey for alice from {ip} port 50000 ssh2: ED25519 SHA256:abcdefghijklmnop",
 "sshd[{p}]: pam_unix(sshd:session): session opened for user alice(uid=1000) by (uid=0)",
 "sshd[{p}]: Connection closed by {ip} port 4444 [preauth]",
 "sshd[{p}]: Received disconnect from {ip} port 4444:11: disconnected by user",
]
recs = [(t, "web01 sshd[%d]: %s" % (p, m)) for (t, p, m) in lines]
while len(recs) < N:
    t = t0 + datetime.timedelta(seconds=rnd.uniform(0, day))
    recs.append((t, "web01 " + rnd.choice(noise_tpl).format(p=rnd.randint(100, 99999), ip=ip4())))
recs.sort(key=lambda r: r[0])
for t, m in recs:
    out.write("%s %2d %s %s\n" % (t.strftime("%b"), t.day, t.strftime("%H:%M:%S"), m))
# At second resolution, as logged.
seconds = {ip: [t.replace(microsecond=0) for t in ts] for ip, ts in attempts.items()}
write_truth(sys.argv[2], seconds, len(recs))
