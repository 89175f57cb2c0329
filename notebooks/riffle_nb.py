"""What riffle's notebooks share: the riffle binary, a scratch directory,
free loopback ports and waiting on an observable condition.

The binary is $RIFFLE_BIN when set (the notebook test builds it once),
else built from this checkout with `go build` into a temporary directory.
"""

import atexit
import json
import os
import pathlib
import socket
import subprocess
import tempfile
import time
import urllib.request

REPO = pathlib.Path(__file__).resolve().parent.parent

_binary = None


def binary() -> str:
    """Path of the riffle binary, building it on first use if needed."""
    global _binary
    if _binary is None:
        _binary = os.environ.get("RIFFLE_BIN")
        if not _binary:
            out = pathlib.Path(tempfile.mkdtemp(prefix="riffle-nb-bin-")) / "riffle"
            subprocess.run(["go", "build", "-o", str(out), "./cmd/riffle"], cwd=REPO, check=True)
            _binary = str(out)
    return _binary


def riffle(*args) -> subprocess.CompletedProcess:
    """Runs riffle with args and returns the finished process; raises with
    its stderr when it fails."""
    p = subprocess.run([binary(), *map(str, args)], capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"riffle {' '.join(map(str, args))}: exit {p.returncode}\n{p.stderr}")
    return p


def spawn(*args, **popen) -> subprocess.Popen:
    """Starts riffle with args in the background. A process still running
    when the kernel exits (a failed cell stops the notebook) is killed."""
    p = subprocess.Popen([binary(), *map(str, args)], **popen)

    def cleanup():
        if p.poll() is None:
            p.kill()
            p.wait()

    atexit.register(cleanup)
    return p


def workdir(name: str) -> pathlib.Path:
    """A fresh scratch directory for one notebook's files."""
    return pathlib.Path(tempfile.mkdtemp(prefix=f"riffle-nb-{name}-"))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(cond, timeout=60.0, what="condition"):
    """Polls cond() every 50 ms until it returns a true value, which it
    returns; raises TimeoutError after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout}s for {what}")
        time.sleep(0.05)


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read()


def get_json(url: str):
    return json.loads(get(url))


def try_get_json(url: str):
    """The JSON at url, or None while nothing answers there."""
    try:
        return get_json(url)
    except OSError:
        return None


def prometheus(text: str) -> dict:
    """Parses Prometheus text exposition into {name: [(labels, value)]}."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, value = line.rsplit(" ", 1)
        labels = {}
        if "{" in head:
            name, rest = head.split("{", 1)
            for part in rest.rstrip("}").split('",'):
                if part:
                    k, v = part.split("=", 1)
                    labels[k] = v.strip('"')
        else:
            name = head
        out.setdefault(name, []).append((labels, float(value)))
    return out
