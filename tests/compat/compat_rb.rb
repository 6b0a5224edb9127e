# Client-library compatibility transcript for redis-rb (Debian's ruby-redis 4.8.0).
#
# Usage: ruby compat_rb.rb HOST PORT PREFIX
#
# Does what applications do through the library -- pipelines with and without a transaction,
# MULTI/EXEC, optimistic locking with WATCH, pub/sub, Lua scripts, blocking pops, a non-default
# db chosen with db:, a client name -- and prints one line per result. The transcript holds no
# timings, ids, addresses or key prefixes (every key starts with PREFIX, which is stripped from
# the output), so a run against Redis and a run through respite must print the same bytes
# (tests/integration/compat_test.cpp compares them). Every socket has a timeout and every
# blocking call a bound: the script never hangs.
require "digest/sha1"
require "timeout"

begin
  require "redis"
rescue LoadError
  puts "ruby-redis is not installed (apt-get install ruby-redis)"
  exit 3
end

Redis.silence_deprecations = true
$stdout.sync = true

HOST = ARGV.fetch(0)
PORT = Integer(ARGV.fetch(1))
PREFIX = ARGV.fetch(2)

def connect(**options)
  Redis.new(host: HOST, port: PORT, timeout: 5, connect_timeout: 5, reconnect_attempts: 0, **options)
end

def key(name)
  PREFIX + name
end

# The value as text, with the per-run prefix removed and errors as their class and message.
def show(value)
  case value
  when Exception then "<#{value.class.name}: #{show(value.message)}>"
  when String then value.gsub(PREFIX, "")
  when Array then "[" + value.map { |v| show(v) }.join(", ") + "]"
  when Hash then "{" + value.keys.sort_by(&:to_s).map { |k| "#{show(k)}: #{show(value[k])}" }.join(", ") + "}"
  when nil then "nil"
  else value.inspect
  end
end

def out(label, *values)
  puts([label, *values.map { |v| show(v) }].join(" "))
end

# Polls INFO clients (bounded) until Redis reports a blocked client; true if it did.
def wait_for_blocked_client(deadline_s = 5.0)
  probe = connect
  finish = Process.clock_gettime(Process::CLOCK_MONOTONIC) + deadline_s
  while Process.clock_gettime(Process::CLOCK_MONOTONIC) < finish
    return true if probe.info("clients")["blocked_clients"].to_i >= 1
    sleep 0.005
  end
  false
ensure
  probe&.close
end

# Runs the block, printing its result or the error it raised.
def attempt(label)
  out(label, yield)
rescue Redis::BaseError => e
  out(label, e)
end

# The whole transcript is bounded, whatever a server does.
Timeout.timeout(60) do
  r = connect
  other = connect
  out("ping", r.ping)

  # --- pipelines --------------------------------------------------------------------------
  attempt("pipeline") do
    r.pipelined do |p|
      p.set(key("p:a"), 1)
      p.incr(key("p:a"))
      p.get(key("p:a"))
      p.get(key("p:missing"))
    end
  end
  attempt("pipeline with error") do
    r.pipelined do |p|
      p.set(key("p:b"), "x")
      p.lpush(key("p:b"), "y") # WRONGTYPE
      p.get(key("p:b"))
    end
  end
  res = r.pipelined do |p|
    200.times { |i| p.rpush(key("p:list"), i) }
    p.lrange(key("p:list"), 0, 4)
    p.llen(key("p:list"))
  end
  out("pipeline long", res[-2], res[-1], res[0, 200] == (1..200).to_a)

  # --- MULTI/EXEC ---------------------------------------------------------------------------
  attempt("multi") do
    r.multi do |tx|
      tx.set(key("t:a"), 10)
      tx.incrby(key("t:a"), 5)
      tx.get(key("t:a"))
      tx.rpush(key("t:l"), %w[a b])
      tx.lrange(key("t:l"), 0, -1)
    end
  end
  attempt("multi runtime error") do
    r.multi do |tx|
      tx.set(key("t:s"), "str")
      tx.lpush(key("t:s"), "x") # fails at EXEC time; the rest still runs
      tx.get(key("t:s"))
    end
  end
  out("multi runtime error applied", r.get(key("t:s")))
  attempt("multi queue error") do
    r.multi do |tx|
      tx.set(key("t:q"), "queued")
      tx.call("SET", key("t:x")) # wrong arity: refused at queue time -> EXECABORT
    end
  end
  out("multi queue error applied", r.get(key("t:q")))
  attempt("multi discard") do
    r.multi
    r.set(key("t:d"), "discarded")
    r.discard
  end
  out("multi discard applied", r.get(key("t:d")))

  # --- WATCH --------------------------------------------------------------------------------
  r.set(key("w:k"), "0")
  attempt("watch conflict") do
    r.watch(key("w:k")) do |rd|
      current = rd.get(key("w:k")).to_i
      other.set(key("w:k"), "changed") # another client writes the watched key
      rd.multi { |tx| tx.set(key("w:k"), current + 1) }
    end
  end
  out("watch value", r.get(key("w:k")))

  attempt("unwatch exec") do
    r.watch(key("w:k")) do |rd|
      other.set(key("w:k"), "changed again")
      rd.unwatch
      rd.multi { |tx| tx.set(key("w:k"), "after unwatch") }
    end
  end
  out("unwatch value", r.get(key("w:k")))

  # The usual optimistic-locking loop: retry while EXEC reports a conflict (nil).
  attempts = 0
  result = nil
  while result.nil? && attempts < 10
    attempts += 1
    result = r.watch(key("w:n")) do |rd|
      value = rd.get(key("w:n")).to_i
      other.incr(key("w:n")) if attempts == 1 # a concurrent writer forces one retry
      rd.multi { |tx| tx.set(key("w:n"), value + 1) }
    end
  end
  out("optimistic loop", result, "attempts", attempts, "value", r.get(key("w:n")))

  # --- pub/sub ------------------------------------------------------------------------------
  sub = connect
  events = []
  attempt("subscribe") do
    sub.subscribe_with_timeout(5, key("ch:news"), key("ch:sports")) do |on|
      on.subscribe do |channel, count|
        events << ["subscribe", channel, count]
        # Both channels confirmed: add a pattern, then publish from another connection.
        sub.psubscribe(key("ch:*")) if count == 2
      end
      on.psubscribe do |pattern, count|
        events << ["psubscribe", pattern, count]
        events << ["publish news", other.publish(key("ch:news"), "hello")]
        events << ["publish sports", other.publish(key("ch:sports"), "goal")]
        events << ["publish weather", other.publish(key("ch:weather"), "rain")]
        events << ["publish nobody", other.publish(key("nobody"), "lost")]
      end
      on.message do |channel, message|
        events << ["message", channel, message]
        sub.unsubscribe(key("ch:news")) if message == "goal"
      end
      on.pmessage do |pattern, channel, message|
        events << ["pmessage", pattern, channel, message]
        sub.punsubscribe if message == "rain"
      end
      on.unsubscribe do |channel, count|
        events << ["unsubscribe", channel, count]
        sub.unsubscribe if count == 2 # the rest
      end
      on.punsubscribe do |pattern, count|
        events << ["punsubscribe", pattern, count]
      end
    end
    "finished"
  end
  events.each { |e| out("pubsub", *e) }
  out("after pubsub", sub.set(key("ps:k"), "v"), sub.get(key("ps:k")))
  sub.close

  # --- Lua ----------------------------------------------------------------------------------
  out("script flush", r.script(:flush))
  src = "return redis.call('INCRBY', KEYS[1], ARGV[1])"
  sha = Digest::SHA1.hexdigest(src)
  out("script exists after flush", r.script(:exists, sha))
  out("eval", r.eval(src, keys: [key("lua:n")], argv: [5]))
  out("script load is sha1", r.script(:load, src) == sha)
  out("evalsha", r.evalsha(sha, keys: [key("lua:n")], argv: [2]))
  out("script exists", r.script(:exists, [sha]))
  attempt("evalsha unknown") { r.evalsha("0" * 40) }
  out("eval table", r.eval("return {KEYS[1], ARGV[1], redis.call('GET', KEYS[1]), {1, 'two'}}",
                           keys: [key("lua:n")], argv: ["arg"]))
  attempt("script error") { r.eval("return redis.call('NOSUCHCOMMAND')") }
  attempt("scripts in transaction") do
    r.multi do |tx|
      tx.eval(src, keys: [key("lua:p")], argv: [1])
      tx.evalsha(sha, keys: [key("lua:p")], argv: [1])
    end
  end

  # --- blocking pops ------------------------------------------------------------------------
  out("blpop timeout", r.blpop(key("b:empty"), timeout: 0.1))
  r.rpush(key("b:l"), "a")
  out("blpop ready", r.blpop(key("b:l"), timeout: 1))

  seen = nil
  pusher = Thread.new do
    seen = wait_for_blocked_client
    p2 = connect
    p2.rpush(key("b:w"), "late") # pushed even on a failed wait, so nothing hangs
    p2.close
  end
  out("blpop woken", r.blpop(key("b:w"), timeout: 5))
  pusher.join(10)
  out("blocked client seen", seen)

  r.rpush(key("b:src"), %w[x y])
  out("brpoplpush", r.brpoplpush(key("b:src"), key("b:dst"), timeout: 1))
  out("blmove", r.blmove(key("b:src"), key("b:dst"), "LEFT", "RIGHT", timeout: 1))
  out("blmove empty", r.blmove(key("b:src"), key("b:dst"), "LEFT", "RIGHT", timeout: 0.1))
  out("moved", r.lrange(key("b:dst"), 0, -1))
  r.zadd(key("b:z"), [[1.5, "m"], [2, "n"]])
  out("bzpopmin", r.bzpopmin(key("b:z"), timeout: 1))
  out("bzpopmax", r.bzpopmax(key("b:z"), timeout: 1))
  out("bzpopmin timeout", r.bzpopmin(key("b:z"), timeout: 0.1))
  out("after blocking", r.set(key("b:after"), "ok"), r.get(key("b:after")))

  # --- SELECT through db: -------------------------------------------------------------------
  r2 = connect(db: 2)
  out("db2 set", r2.set(key("db:k"), "in db 2"))
  out("db2 get", r2.get(key("db:k")), "db0 get", r.get(key("db:k")))
  out("db2 transaction", r2.multi { |tx| 2.times { tx.incr(key("db:n")) } })
  out("db2 counter from db0", r.get(key("db:n")), "from db2", r2.get(key("db:n")))
  r2.close
  r2 = connect(db: 2)
  out("db2 reconnect", r2.get(key("db:k")))
  r2.close

  # --- client name --------------------------------------------------------------------------
  named = connect(id: "compat-rb")
  out("client name", named.client(:getname))
  out("client setname", named.client(:setname, "renamed"), named.client(:getname))
  out("unnamed", r.client(:getname))
  named_id = named.call(%w[CLIENT ID])
  out("client id", named_id.is_a?(Integer), named_id == named.call(%w[CLIENT ID]),
      named_id != r.call(%w[CLIENT ID]))
  named.close

  r.close
  other.close
  out("done")
end
