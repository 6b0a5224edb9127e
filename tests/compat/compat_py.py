#!/usr/bin/python3
"""Client-library compatibility transcript for redis-py (Debian's python3-redis 4.3.4).

Usage: /usr/bin/python3 compat_py.py HOST PORT PREFIX

Does what applications do through the library -- pipelines with and without a transaction,
MULTI/EXEC, optimistic locking with WATCH, pub/sub, Lua scripts, blocking pops, a non-default
db chosen with db=, a client name -- and prints one line per result. The transcript holds no
timings, ids, addresses or key prefixes (every key starts with PREFIX, which is stripped from
the output), so a run against Redis and a run through respite must print the same bytes
(tests/integration/compat_test.cpp compares them). Every socket has a timeout and every
blocking call a bound: the script never hangs.
"""
import hashlib
import sys
import threading
import time

try:
    import redis
except ImportError:
    print("python3-redis is not installed (apt-get install python3-redis)")
    sys.exit(3)

HOST, PORT, PREFIX = sys.argv[1], int(sys.argv[2]), sys.argv[3]


def connect(**options):
    return redis.Redis(host=HOST, port=PORT, socket_timeout=5, socket_connect_timeout=5,
                       decode_responses=True, **options)


def key(name):
    return PREFIX + name


def show(value):
    """The value as text, with the per-run prefix removed and errors as their class and message."""
    if isinstance(value, Exception):
        return "<%s: %s>" % (type(value).__name__, show(str(value)))
    if isinstance(value, str):
        return value.replace(PREFIX, "")
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join("%s: %s" % (show(k), show(value[k])) for k in sorted(value)) + "}"
    return repr(value)


def out(label, *values):
    print(label, *(show(v) for v in values), flush=True)


def wait_for_blocked_client(deadline_s=5.0):
    """Polls INFO clients (bounded) until Redis reports a blocked client; True if it did."""
    probe = connect()
    try:
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            if probe.info("clients")["blocked_clients"] >= 1:
                return True
            time.sleep(0.005)
        return False
    finally:
        probe.close()


r = connect()
other = connect()
out("ping", r.ping())

# --- pipelines ----------------------------------------------------------------------------
p = r.pipeline(transaction=False)
p.set(key("p:a"), 1)
p.incr(key("p:a"))
p.get(key("p:a"))
p.lpush(key("p:a"), "x")  # WRONGTYPE
p.get(key("p:missing"))
out("pipeline", p.execute(raise_on_error=False))

p = r.pipeline(transaction=False)
for i in range(200):
    p.rpush(key("p:list"), i)
p.lrange(key("p:list"), 0, 4)
p.llen(key("p:list"))
res = p.execute()
out("pipeline long", res[-2], res[-1], res[:200] == list(range(1, 201)))

# --- MULTI/EXEC through the transaction pipeline ------------------------------------------
p = r.pipeline()  # transaction=True: MULTI ... EXEC
p.set(key("t:a"), 10)
p.incrby(key("t:a"), 5)
p.get(key("t:a"))
p.rpush(key("t:l"), "a", "b")
p.lrange(key("t:l"), 0, -1)
out("multi", p.execute())

p = r.pipeline()
p.set(key("t:s"), "str")
p.lpush(key("t:s"), "x")  # fails at EXEC time; the rest still runs
p.get(key("t:s"))
out("multi runtime error", p.execute(raise_on_error=False))

p = r.pipeline()
p.set(key("t:q"), "queued")
p.execute_command("SET", key("t:x"))  # wrong arity: refused at queue time -> EXECABORT
try:
    out("multi queue error", p.execute())
except redis.ResponseError as e:
    out("multi queue error", e)
out("multi queue error applied", r.get(key("t:q")))

# --- WATCH ----------------------------------------------------------------------------------
r.set(key("w:k"), "0")
with r.pipeline() as pipe:
    pipe.watch(key("w:k"))
    current = int(pipe.get(key("w:k")))
    other.set(key("w:k"), "changed")  # another client writes the watched key
    pipe.multi()
    pipe.set(key("w:k"), current + 1)
    try:
        out("watch conflict not detected", pipe.execute())
    except redis.WatchError:
        out("watch conflict detected")
out("watch value", r.get(key("w:k")))

with r.pipeline() as pipe:
    pipe.watch(key("w:k"))
    other.set(key("w:k"), "changed again")
    pipe.unwatch()
    pipe.multi()
    pipe.set(key("w:k"), "after unwatch")
    out("unwatch exec", pipe.execute())
out("unwatch value", r.get(key("w:k")))

attempts = []


def increment(pipe):
    attempts.append(1)
    value = int(pipe.get(key("w:n")) or 0)
    if len(attempts) == 1:
        other.incr(key("w:n"))  # a concurrent writer forces one retry
    pipe.multi()
    pipe.set(key("w:n"), value + 1)


out("transaction helper", r.transaction(increment, key("w:n")), "attempts", len(attempts),
    "value", r.get(key("w:n")))

# --- pub/sub --------------------------------------------------------------------------------
sub = connect()
ps = sub.pubsub()
ps.subscribe(key("ch:news"))
out("pubsub", ps.get_message(timeout=5))
ps.psubscribe(key("ch:*"))
out("pubsub", ps.get_message(timeout=5))
out("publish news", r.publish(key("ch:news"), "hello"))
out("publish other", r.publish(key("ch:other"), "bye"))
out("publish nobody", r.publish(key("nobody"), "lost"))
for _ in range(3):
    out("pubsub", ps.get_message(timeout=5))
ps.ping("are you there")
out("pubsub", ps.get_message(timeout=5))
ps.unsubscribe(key("ch:news"))
out("pubsub", ps.get_message(timeout=5))
out("publish after unsubscribe", r.publish(key("ch:news"), "again"))
out("pubsub", ps.get_message(timeout=5))
ps.punsubscribe()
out("pubsub", ps.get_message(timeout=5))
out("publish after punsubscribe", r.publish(key("ch:news"), "gone"))
ps.close()
out("after pubsub", sub.set(key("ps:k"), "v"), sub.get(key("ps:k")))
sub.close()

# --- Lua --------------------------------------------------------------------------------------
r.script_flush()
src = "return redis.call('INCRBY', KEYS[1], ARGV[1])"
sha = hashlib.sha1(src.encode()).hexdigest()
out("script exists after flush", r.script_exists(sha))
out("eval", r.eval(src, 1, key("lua:n"), 5))
out("script load is sha1", r.script_load(src) == sha)
out("evalsha", r.evalsha(sha, 1, key("lua:n"), 2))
out("script exists", r.script_exists(sha))
try:
    r.evalsha("0" * 40, 0)
    out("evalsha unknown succeeded")
except redis.exceptions.NoScriptError:
    out("evalsha unknown NoScriptError")
script = r.register_script("return {KEYS[1], ARGV[1], redis.call('GET', KEYS[1]), {1, 'two'}}")
out("registered script", script(keys=[key("lua:n")], args=["arg"]))
out("registered script again", script(keys=[key("lua:n")], args=["again"]))
try:
    r.eval("return redis.call('NOSUCHCOMMAND')", 0)
    out("script error none")
except redis.ResponseError as e:
    out("script error", e)
p = r.pipeline()
p.eval(src, 1, key("lua:p"), 1)
p.evalsha(sha, 1, key("lua:p"), 1)
out("scripts in transaction", p.execute())

# --- blocking pops ----------------------------------------------------------------------------
out("blpop timeout", r.blpop(key("b:empty"), timeout=0.1))
r.rpush(key("b:l"), "a")
out("blpop ready", r.blpop(key("b:l"), timeout=1))

pushed = []


def push_when_blocked():
    pusher = connect()
    pushed.append(wait_for_blocked_client())
    pusher.rpush(key("b:w"), "late")  # pushed even on a failed wait, so nothing hangs
    pusher.close()


t = threading.Thread(target=push_when_blocked)
t.start()
out("blpop woken", r.blpop(key("b:w"), timeout=5))
t.join(10)
out("blocked client seen", pushed)

r.rpush(key("b:src"), "x", "y")
out("brpoplpush", r.brpoplpush(key("b:src"), key("b:dst"), timeout=1))
out("blmove", r.blmove(key("b:src"), key("b:dst"), 1, "LEFT", "RIGHT"))
out("blmove empty", r.blmove(key("b:src"), key("b:dst"), 0.1, "LEFT", "RIGHT"))
out("moved", r.lrange(key("b:dst"), 0, -1))
r.zadd(key("b:z"), {"m": 1.5, "n": 2})
out("bzpopmin", r.bzpopmin(key("b:z"), timeout=1))
out("bzpopmax", r.bzpopmax(key("b:z"), timeout=1))
out("bzpopmin timeout", r.bzpopmin(key("b:z"), timeout=0.1))
out("after blocking", r.set(key("b:after"), "ok"), r.get(key("b:after")))

# --- SELECT through db= -----------------------------------------------------------------------
r2 = connect(db=2)
out("db2 set", r2.set(key("db:k"), "in db 2"))
out("db2 get", r2.get(key("db:k")), "db0 get", r.get(key("db:k")))
p = r2.pipeline()
p.incr(key("db:n"))
p.incr(key("db:n"))
out("db2 transaction", p.execute())
out("db2 counter from db0", r.get(key("db:n")), "from db2", r2.get(key("db:n")))
r2.close()
r2 = connect(db=2)
out("db2 reconnect", r2.get(key("db:k")))
r2.close()

# --- client name ------------------------------------------------------------------------------
named = connect(client_name="compat-py")
out("client name", named.client_getname())
out("client setname", named.client_setname("renamed"), named.client_getname())
out("unnamed", r.client_getname())
named_id = named.client_id()
out("client id", isinstance(named_id, int), named_id == named.client_id(), named_id != r.client_id())
named.close()

r.close()
other.close()
out("done")
