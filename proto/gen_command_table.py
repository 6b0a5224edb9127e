#!/usr/bin/python3
"""Generate proto/commands.tsv from a real redis-server's COMMAND output.

Usage: proto/gen_command_table.py [--redis-server PATH] [--out PATH]

Starts a private redis-server on 127.0.0.1 and a free port (no persistence, in a
temporary directory), asks it for COMMAND, writes one TSV line per command and per
subcommand, and stops the server by its PID (also when anything fails).
The format is described in proto/README.md, section "Command table".
Standard library only.
"""

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


# --- a tiny RESP2 client ------------------------------------------------------------

class RespError(Exception):
    pass


class Resp:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""

    def close(self):
        self.sock.close()

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RespError("connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RespError("connection closed")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def read(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RespError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n).decode()
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise RespError("unexpected reply type %r" % kind)

    def call(self, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a.encode() if isinstance(a, str) else a
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.sock.sendall(out)
        return self.read()


# --- the private server --------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(binary, workdir):
    """Returns (process, port) once the server answers PING."""
    last_error = None
    for _ in range(5):
        port = free_port()
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", workdir, "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                conn = Resp(port)
                try:
                    if conn.call("PING") == "PONG":
                        return proc, port
                finally:
                    conn.close()
            except (OSError, RespError) as e:
                last_error = e
                time.sleep(0.05)
        stop_server(proc)
    raise RuntimeError("redis-server did not start: %s" % last_error)


def stop_server(proc):
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


# --- COMMAND reply -> TSV ------------------------------------------------------------

def as_map(flat):
    """RESP2 renders maps as flat [k1, v1, k2, v2...] arrays."""
    if not flat:
        return {}
    return {flat[i]: flat[i + 1] for i in range(0, len(flat), 2)}


def lst(items):
    return ",".join(items) if items else "-"


def encode_spec(raw):
    spec = as_map(raw)
    bs = as_map(spec.get("begin_search", []))
    bs_spec = as_map(bs.get("spec", []))
    if bs.get("type") == "index":
        begin = "i%d" % bs_spec["index"]
    elif bs.get("type") == "keyword":
        keyword = bs_spec["keyword"]
        assert keyword and all(c.isalnum() or c == "_" for c in keyword), keyword
        begin = "k%s,%d" % (keyword, bs_spec["startfrom"])
    else:
        begin = "u"
    fk = as_map(spec.get("find_keys", []))
    fk_spec = as_map(fk.get("spec", []))
    if fk.get("type") == "range":
        find = "r%d,%d,%d" % (fk_spec["lastkey"], fk_spec["keystep"], fk_spec["limit"])
    elif fk.get("type") == "keynum":
        find = "n%d,%d,%d" % (fk_spec["keynumidx"], fk_spec["firstkey"], fk_spec["keystep"])
    else:
        find = "u"
    return "%s/%s/%s" % (begin, find, lst(spec.get("flags", [])))


def rows(entry, parent=None):
    name, arity, flags, first, last, step, acl = entry[:7]
    tips = entry[7] if len(entry) > 7 else []
    key_specs = entry[8] if len(entry) > 8 else []
    subcommands = entry[9] if len(entry) > 9 else []
    name = name.lower()
    if parent is not None and "|" not in name:
        name = parent + "|" + name
    acl = [c.lstrip("@") for c in acl]
    specs = ";".join(encode_spec(s) for s in key_specs) or "-"
    yield [name, str(arity), lst(flags), str(first), str(last), str(step), lst(acl), specs, lst(tips)]
    for sub in sorted(subcommands or [], key=lambda e: e[0].lower()):
        yield from rows(sub, name)


def generate(binary, out_path):
    workdir = tempfile.mkdtemp(prefix="gen_command_table.")
    proc = None
    try:
        proc, port = start_server(binary, workdir)
        conn = Resp(port)
        try:
            info = conn.call("INFO", "server")
            version = next(line.split(":", 1)[1].strip() for line in info.splitlines()
                           if line.startswith("redis_version:"))
            commands = conn.call("COMMAND")
        finally:
            conn.close()
    finally:
        if proc is not None:
            stop_server(proc)
        shutil.rmtree(workdir, ignore_errors=True)

    lines = []
    for entry in sorted(commands, key=lambda e: e[0].lower()):
        for row in rows(entry):
            assert all(field and "\t" not in field and "\n" not in field for field in row), row
            lines.append("\t".join(row))
    header = [
        "# Generated from redis-server %s COMMAND output by proto/gen_command_table.py;"
        " regenerate: /usr/bin/python3 proto/gen_command_table.py" % version,
        "# name\tarity\tflags\tfirst_key\tlast_key\tkey_step\tacl_categories\tkey_specs\ttips",
    ]
    tmp = out_path + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(header + lines) + "\n")
    os.replace(tmp, out_path)
    return version, len(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--redis-server", default=shutil.which("redis-server") or "redis-server")
    ap.add_argument("--out", default=os.path.join(HERE, "commands.tsv"))
    args = ap.parse_args()
    version, count = generate(args.redis_server, args.out)
    print("wrote %s: %d commands and subcommands from redis %s" % (args.out, count, version))
    return 0


if __name__ == "__main__":
    sys.exit(main())
