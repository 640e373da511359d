"""Small helpers shared by the integration tests and benchmarks: free
loopback ports, polling with a deadline (no sleeps as waits), JSON GETs."""
import json
import socket
import time
import urllib.request


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout, what, interval=0.05):
    """Polls `pred` until it is true; raises AssertionError naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if pred():
                return True
        except OSError:
            pass  # a server not up yet
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def get_json(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())
