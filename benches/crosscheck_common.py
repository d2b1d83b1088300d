"""What the crosscheck_*.py corpus writers share: random addresses and the
ground truth (an address is blocked when 50 of its failures fall within
less than 60 s), written beside the log as `<log>.truth`."""
import sys

THRESHOLD = 50
WINDOW_SECS = 60


def ip4(rnd, first_octet_max=223):
    return "%d.%d.%d.%d" % (rnd.randint(11, first_octet_max), rnd.randint(0, 255),
                            rnd.randint(0, 255), rnd.randint(1, 254))


def ip6(rnd):
    return "2001:db8:%x:%x::%x" % (rnd.randint(0, 0xffff), rnd.randint(0, 0xffff),
                                   rnd.randint(1, 0xffff))


def write_truth(log_path, attempts, lines):
    """`attempts`: address -> failure times (datetimes). Writes the sorted
    addresses that must be blocked to `<log_path>.truth`."""
    truth = set()
    for ip, ts in attempts.items():
        ts = sorted(ts)
        j = 0
        for i in range(len(ts)):
            while (ts[i] - ts[j]).total_seconds() >= WINDOW_SECS:
                j += 1
            if i - j + 1 >= THRESHOLD:
                truth.add(ip)
                break
    with open(log_path + ".truth", "w") as f:
        f.write("\n".join(sorted(truth)) + "\n")
    print(lines, "lines;", len(truth), "to block", file=sys.stderr)
