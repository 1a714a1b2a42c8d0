"""A small cluster on this one machine (issue 24): hosts `db`, `a`, `b` and a fresh host `c`,
each a network namespace with one address on a bridge that lives in a namespace of its own.

Nothing is added to the machine's own namespace: the bridge, the veth pairs and every address
(10.213.0.0/24) are inside namespaces made here, named `nnsw<pid>-<host>`, and nothing routes
out of them. Each command a host runs gets a mount namespace of its own in which /tmp is that
host's temporary folder and the other hosts' folders are hidden under empty read-only mounts:
no file is shared between hosts, only the servers on `db` are.

Host `db` runs PostgreSQL (a password, scram-sha-256) and `mlflow server` with MLflow's
basic-auth app and proxied artifacts on db's own folder, both listening on db's address and
both started by `python -m sweeps.services` as a user would. The passwords live in files of mode
0600 in the cluster's folder and reach clients only through their environment (PGPASSWORD,
MLFLOW_TRACKING_USERNAME/_PASSWORD): never on a command line.

`Cluster.close()` ends every process in its namespaces and deletes them, whatever happened.
Used by tests/cluster (the `cluster` fixture), `make cluster-demo` and benchmarks/bench_cluster.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SUBNET = "10.213.0"
HOSTS = {"db": 1, "a": 2, "b": 3, "c": 4}  # c: a fresh host that reads the stores when a case ends
PG_PORT, MLFLOW_PORT = 5432, 5001
USER = "sweep"  # the MLflow user the sweeps log as


def namespaces_refused() -> str:
    """Why this kernel or user cannot make network namespaces, or '' when it can (tried for real)."""
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is missing"
    probe = f"nnsw{os.getpid()}-probe"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"`ip netns add` is refused here ({made.stderr.strip() or made.returncode})"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return ""


def ip(*args: str) -> None:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {proc.stderr.strip()}")


def sweep_dead_clusters() -> list[str]:
    """Deletes the namespaces of a cluster whose test process is gone (killed before its close()
    ran: SIGKILL, a CI job cut short), with the processes in them; returns their names."""
    gone = []
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
    for name in listed:
        owner = re.fullmatch(r"nnsw(\d+)-[a-z]+", name)
        if owner is None or Path(f"/proc/{owner.group(1)}").exists():
            continue
        pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True).stdout.split()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
        gone.append(name)
    return gone


class Cluster:
    def __init__(self, prefix: str | None = None):
        self.prefix = prefix or f"nnsw{os.getpid()}"
        # not under /tmp, which each host replaces by its own; readable by the postgres user
        self.root = Path(tempfile.mkdtemp(prefix=f"{self.prefix}-", dir="/var/tmp"))
        self.root.chmod(0o755)
        self.made: list[str] = []  # namespaces, deleted in close()
        self.procs: list[subprocess.Popen] = []
        self.secrets = self.root / "secrets"
        self.secrets.mkdir(mode=0o700)
        self.passwords = {name: secrets.token_urlsafe(18) for name in ("postgres", "admin", USER)}
        for name, password in self.passwords.items():
            path = self.secrets / name
            path.touch(mode=0o600)
            path.write_text(password + "\n")

    # ---- addresses and names ------------------------------------------------------------------
    def ns(self, host: str) -> str:
        return f"{self.prefix}-{host}"

    @staticmethod
    def addr(host: str) -> str:
        return f"{SUBNET}.{HOSTS[host]}"

    def folder(self, host: str) -> Path:
        return self.root / host

    @property
    def storage(self) -> str:
        """The Optuna storage as every host names it: no password in it (libpq reads PGPASSWORD)."""
        return f"postgresql://postgres@{self.addr('db')}:{PG_PORT}/optuna"

    @property
    def tracking(self) -> str:
        return f"http://{self.addr('db')}:{MLFLOW_PORT}"

    def credentials(self, user: str = USER) -> dict[str, str]:
        """A client's environment: the sweep's MLflow user (or admin) and PostgreSQL's password."""
        return {"PGPASSWORD": self.passwords["postgres"], "MLFLOW_TRACKING_USERNAME": user,
                "MLFLOW_TRACKING_PASSWORD": self.passwords[user]}

    # ---- building -----------------------------------------------------------------------------
    def build(self) -> "Cluster":
        sweep_dead_clusters()
        switch = self.ns("switch")
        self._netns(switch)
        ip("-n", switch, "link", "add", "br0", "type", "bridge")
        ip("-n", switch, "link", "set", "br0", "up")
        for host in HOSTS:
            self._netns(self.ns(host))
            # made inside the switch's namespace, its peer straight into the host's: never in ours
            ip("-n", switch, "link", "add", f"port-{host}", "type", "veth", "peer", "name", "eth0",
               "netns", self.ns(host))
            ip("-n", switch, "link", "set", f"port-{host}", "master", "br0", "up")
            ip("-n", self.ns(host), "addr", "add", f"{self.addr(host)}/24", "dev", "eth0")
            ip("-n", self.ns(host), "link", "set", "eth0", "up")
            for sub in ("work", "tmp", "home"):
                (self.folder(host) / sub).mkdir(parents=True, exist_ok=True)
            (self.folder(host) / "tmp").chmod(0o1777)
        return self

    def _netns(self, name: str) -> None:
        ip("netns", "add", name)
        self.made.append(name)
        ip("-n", name, "link", "set", "lo", "up")

    def link(self, host: str, up: bool) -> None:
        """Plugs or unplugs a host's cable at the switch: its processes are told nothing. Plugged
        in, it returns once the host reaches PostgreSQL on db again."""
        ip("-n", self.ns("switch"), "link", "set", f"port-{host}", "up" if up else "down")
        if not up:
            return
        for side in {host, "db"}:  # addresses marked unreachable while unplugged: refused for seconds more
            ip("-n", self.ns(side), "neigh", "flush", "all")
        reach = f"import socket; socket.create_connection(({self.addr('db')!r}, {PG_PORT}), 1).close()"
        deadline = time.monotonic() + 20
        while subprocess.run(["ip", "netns", "exec", self.ns(host), sys.executable, "-S", "-c", reach],
                             capture_output=True).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError(f"host {host} does not reach db 20 s after its cable was plugged in")
            time.sleep(0.2)

    # ---- running commands on a host -----------------------------------------------------------
    def command(self, host: str, argv: list[str]) -> list[str]:
        """argv run on `host`: in its network namespace, under its own host name (a UTS namespace), in
        a mount namespace of its own where /tmp is the host's temporary folder and the other hosts'
        folders are empty and read-only."""
        hide = " ".join(f"mount -t tmpfs -o ro,size=4k none {self.folder(h)};" for h in HOSTS if h != host)
        # the code and its interpreter stay where they are when they live under /tmp (a clone there,
        # as CI's may be): set aside before /tmp is replaced, then put back at the same path
        keep = sorted({str(p) for p in (ROOT, Path(sys.prefix)) if Path("/tmp") in p.parents})
        aside = " ".join(f"mkdir -p {self.folder(host)}/keep{i}; mount --bind {k} {self.folder(host)}/keep{i};"
                         for i, k in enumerate(keep))
        back = " ".join(f"mkdir -p {k}; mount --bind {self.folder(host)}/keep{i} {k};" for i, k in enumerate(keep))
        script = (f"hostname host-{host}; {aside} mount --bind {self.folder(host) / 'tmp'} /tmp; {back} {hide} "
                  "exec \"$@\"")
        return ["ip", "netns", "exec", self.ns(host), "unshare", "--mount", "--uts", "--propagation", "private",
                "sh", "-ec", script, f"host-{host}", *argv]

    def env(self, host: str, user: str | None = USER, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "PG", "TMP"))}
        env.update(HOME=str(self.folder(host) / "home"), PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
        return {**env, **(self.credentials(user) if user else {}), **extra}

    def spawn(self, host: str, argv: list[str], user: str | None = USER, cwd: Path | None = None,
              log: Path | None = None, **extra: str) -> subprocess.Popen:
        """A process on `host`, in a process group of its own (so that its children die with it)."""
        out = open(log, "w") if log else subprocess.PIPE
        proc = subprocess.Popen(self.command(host, argv), cwd=cwd or self.folder(host) / "work",
                                env=self.env(host, user, **extra), stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT if log else subprocess.PIPE, text=True,
                                start_new_session=True)
        if log:
            out.close()  # the child has its own copy
        self.procs.append(proc)
        return proc

    def run(self, host: str, argv: list[str], timeout: float = 300, user: str | None = USER,
            **extra: str) -> subprocess.CompletedProcess:
        proc = self.spawn(host, argv, user=user, **extra)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill(proc)
            out, err = proc.communicate()
            raise AssertionError(f"{argv[:4]} on {host} timed out\nstdout:\n{out}\nstderr:\n{err}") from None
        return subprocess.CompletedProcess(argv, proc.returncode, out, err)

    def python(self, host: str, *args: str, **kw) -> subprocess.CompletedProcess:
        return self.run(host, [sys.executable, *args], **kw)

    @staticmethod
    def kill(proc: subprocess.Popen) -> None:
        """SIGKILL to a process we started and its group: a host that loses power."""
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)

    def power_off(self, host: str) -> None:
        """Every process on the host dies at once, without a word to anyone."""
        for pid in self.pids(host):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for proc in self.procs:
            if proc.poll() is None and proc.args[3] == self.ns(host):
                proc.wait(timeout=30)

    def clock_ahead(self, seconds: int) -> dict[str, str]:
        """The environment of a process whose wall clock runs `seconds` ahead (tests/cluster/clock_ahead.c)."""
        lib = self.root / "clock_ahead.so"
        if not lib.exists():
            subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", str(lib), str(Path(__file__).with_name("clock_ahead.c")),
                            "-ldl"], check=True, capture_output=True)
        return {"LD_PRELOAD": str(lib), "CLOCK_AHEAD_SECONDS": str(seconds)}

    def pids(self, host: str) -> list[int]:
        out = subprocess.run(["ip", "netns", "pids", self.ns(host)], capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]

    # ---- the servers on db --------------------------------------------------------------------
    def services(self, *args: str, user: str | None = None, **extra: str) -> None:
        proc = self.python("db", "-m", "sweeps.services", *args, user=user, timeout=180, **extra)
        if proc.returncode != 0:
            raise RuntimeError(f"sweeps.services {args[:2]} on db: {proc.stderr.strip() or proc.stdout.strip()}")

    def start_servers(self) -> "Cluster":
        db = self.folder("db")
        self.services("postgres", "start", "--dir", str(db / "postgres"), "--host", self.addr("db"),
                      "--port", str(PG_PORT), "--password-file", str(self.secrets / "postgres"))
        self.start_mlflow()
        # the sweep's own user, added by the admin
        self.services("mlflow", "adduser", "--uri", self.tracking, "--name", USER, "--password-file",
                      str(self.secrets / USER), user="admin")
        return self

    def start_mlflow(self) -> None:
        db = self.folder("db")
        self.services("mlflow", "start", "--auth", "--backend-store-uri",
                      f"postgresql://postgres@{self.addr('db')}:{PG_PORT}/mlflow", "--host", self.addr("db"),
                      "--port", str(MLFLOW_PORT), "--artifacts", str(db / "artifacts"), "--state",
                      str(db / "mlflow" / "server"), PGPASSWORD=self.passwords["postgres"],
                      MLFLOW_AUTH_ADMIN_PASSWORD=self.passwords["admin"])

    def stop_servers(self) -> None:
        db = self.folder("db")
        self.services("mlflow", "stop", "--state", str(db / "mlflow" / "server"))
        self.services("postgres", "stop", "--dir", str(db / "postgres"))

    def restart_db(self, down: float = 5.0) -> None:
        """Host db goes down (both servers stop) and comes back `down` seconds later."""
        self.stop_servers()
        time.sleep(down)
        self.services("postgres", "start", "--dir", str(self.folder("db") / "postgres"), "--host",
                      self.addr("db"), "--port", str(PG_PORT))
        self.start_mlflow()

    # ---- tearing down -------------------------------------------------------------------------
    def close(self) -> list[str]:
        """Ends every process in the cluster's namespaces, deletes them and its folder; returns the
        namespaces that could not be deleted (none)."""
        for proc in self.procs:
            if proc.poll() is None:
                self.kill(proc)
        if self.ns("db") in self.made:
            pg = self.folder("db") / "postgres"
            if (pg / "data").exists():  # a clean stop, so that no shared memory is left behind
                subprocess.run(self.command("db", [sys.executable, "-m", "sweeps.services", "postgres", "stop",
                                                   "--dir", str(pg)]), env=self.env("db", None),
                               capture_output=True, timeout=120)
        for name in reversed(self.made):
            host = name[len(self.prefix) + 1:]
            for pid in self.pids(host):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + 10
            while self.pids(host) and time.monotonic() < deadline:
                time.sleep(0.1)
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
        left = [n for n in self.made if n in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                                            text=True).stdout.split()]
        self.made = left
        shutil.rmtree(self.root, ignore_errors=True)
        return left

    def __enter__(self) -> "Cluster":
        try:
            return self.build().start_servers()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc) -> None:
        self.close()


class Probe:
    """A reader on the fresh host c: Optuna's and MLflow's own clients in one long-lived process
    (tests/cluster/probe.py), asked one JSON line at a time; its errors go to c's folder."""

    def __init__(self, cluster: Cluster, user: str | None = USER):
        self.log = cluster.folder("c") / "probe.log"
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen(cluster.command("c", [sys.executable, "-m", "tests.cluster.probe"]),
                                         cwd=cluster.folder("c") / "work", env=cluster.env("c", user),
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True,
                                         start_new_session=True)
        cluster.procs.append(self.proc)

    def __call__(self, op: str, **kw):
        self.proc.stdin.write(json.dumps({"op": op, **kw}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError(f"the probe on host c died; its log:\n{self.log.read_text()[-3000:]}")
        answer = json.loads(line)
        if "error" in answer:
            raise AssertionError(f"probe {op}: {answer['error']}")
        return answer["result"]

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
