"""A real ZooKeeper (Debian's `zookeeper` package, Java) on a free loopback port, for the lease tests
and bench: ClickHouse Keeper speaks the same protocol, and chdb's KeeperMap talks to either."""
from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from server_harness import free_port

ZOOKEEPER_JAR = Path("/usr/share/java/zookeeper.jar")   # the jar's manifest lists its dependencies


def missing() -> str | None:
    """Why no ZooKeeper can be started here (None: it can). CI installs it (.ci/run)."""
    if shutil.which("java") is None:
        return "java is not installed (CI installs it with zookeeper: apt-get install zookeeper)"
    if not ZOOKEEPER_JAR.exists():
        return f"ZooKeeper is not installed ({ZOOKEEPER_JAR} missing; apt-get install zookeeper)"
    return None


def _ok(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"ruok")
            return s.recv(4) == b"imok"
    except OSError:
        return False


@contextmanager
def running_zookeeper(folder: Path, timeout_s: float = 60, port: int | None = None) -> Iterator[str]:
    """A standalone ZooKeeper with its data in `folder` (on `port`, else a free one); yields
    "127.0.0.1:PORT"; killed after."""
    folder.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    config = folder / "zoo.cfg"
    config.write_text(f"tickTime=500\ndataDir={folder / 'data'}\nclientPort={port}\nclientPortAddress=127.0.0.1\n"
                      "admin.enableServer=false\nminSessionTimeout=1000\nmaxSessionTimeout=30000\n"
                      "4lw.commands.whitelist=ruok\n")
    log = (folder / "zookeeper.log").open("ab")
    proc = subprocess.Popen(["java", "-Xmx128m", "-XX:+UseSerialGC", "-cp", str(ZOOKEEPER_JAR),
                             "org.apache.zookeeper.server.quorum.QuorumPeerMain", str(config)],
                            stdout=log, stderr=subprocess.STDOUT, cwd=folder)
    try:
        deadline = time.monotonic() + timeout_s
        while not _ok(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ZooKeeper did not start:\n{(folder / 'zookeeper.log').read_text()[-2000:]}")
            time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        proc.kill()
        proc.wait(30)
        log.close()
