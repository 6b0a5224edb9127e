#!/usr/bin/env python3
"""Safety net for the bench scripts.

usage: watchdog.py PARENT_PID LIFETIME_S PIDFILE

Every second, checks whether PARENT_PID (the bench script) is still alive and
whether LIFETIME_S has elapsed.  When the parent is gone (e.g. it was killed with
SIGKILL and its EXIT trap never ran) or the lifetime is over, it stops every
process listed in PIDFILE ("pid starttime" per line; the starttime from
/proc/<pid>/stat guards against pid reuse): SIGTERM, then SIGKILL after 3 s.
If the lifetime ran out while the parent is still alive, the parent gets SIGTERM
too, so its own cleanup runs.  The bench script kills this watchdog (by pid) when
it finishes normally.
"""
import os
import signal
import sys
import time


def starttime(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    # fields after the ")" of comm: state is field 3, starttime is field 22
    rest = data[data.rindex(")") + 2:].split()
    return rest[22 - 3]


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def listed(pidfile):
    out = []
    try:
        with open(pidfile) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2 and parts[0].isdigit():
                    out.append((int(parts[0]), parts[1]))
    except OSError:
        pass
    return out


def stop_all(pidfile):
    victims = [(p, st) for p, st in listed(pidfile) if starttime(p) == st]
    for p, _ in victims:
        try:
            os.kill(p, signal.SIGTERM)
        except OSError:
            pass
    deadline = time.time() + 3
    while time.time() < deadline and any(starttime(p) == st for p, st in victims):
        time.sleep(0.1)
    for p, st in victims:
        if starttime(p) == st:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass


def main():
    parent, lifetime, pidfile = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
    parent_start = starttime(parent)
    t0 = time.time()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        time.sleep(1)
        parent_gone = starttime(parent) != parent_start
        if parent_gone:
            stop_all(pidfile)
            return
        if time.time() - t0 > lifetime:
            sys.stderr.write(f"watchdog: lifetime {lifetime:.0f}s exceeded, stopping everything\n")
            stop_all(pidfile)
            try:
                os.kill(parent, signal.SIGTERM)
            except OSError:
                pass
            return


if __name__ == "__main__":
    main()
