"""Local servers for scaling out: PostgreSQL (the shared Optuna storage, and the MLflow server's
backend) and an MLflow tracking server, on 127.0.0.1 unless told otherwise.

Used by `make postgres`, `make mlflow-server`, the tests (tests/e2e/test_scale.py) and
benchmarks/bench_scale.py:

    python -m sweeps.services postgres start [--dir outputs/postgres] [--port 5432] [--db optuna --db mlflow]
    python -m sweeps.services postgres stop  [--dir outputs/postgres]
    python -m sweeps.services mlflow start --backend-store-uri postgresql://... [--port 5001] [--artifacts DIR]
    python -m sweeps.services mlflow stop

PostgreSQL runs from a data directory of its own (`initdb` once), with `trust` authentication
for the user `postgres`: meant for a machine's loopback. Given `--password-file` (mode 0600) at
its first start, `postgres` has that password and every TCP client must give it (scram-sha-256),
from its own subnet too; clients pass it as PGPASSWORD or in ~/.pgpass, never in the URL. As root
it runs as the `postgres` user (PostgreSQL refuses to run as root).

The MLflow server starts in its lean form (`--workers 1`, MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false:
healthy several times sooner, in a fraction of the memory, than by default; measured in
benchmarks/RESULTS.md), proxying artifacts to `--artifacts` so that workers upload through HTTP, in a process
group of its own: stopping it signals the whole group, children included (SIGTERM to the main pid
alone left children alive in 2 of 4 stops). With `--auth` it is MLflow's basic-auth app: every
request needs a user and password (MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD for a
client), its users kept in `basic_auth.db` beside the log; the first start creates the user
`admin` with the password in MLFLOW_AUTH_ADMIN_PASSWORD. `mlflow adduser` adds a user for the
sweeps, its password read from a file of mode 0600:

    python -m sweeps.services postgres start --host 10.0.0.5 --password-file pg.secret
    python -m sweeps.services mlflow start --auth --host 10.0.0.5 ...   # MLFLOW_AUTH_ADMIN_PASSWORD, PGPASSWORD
    python -m sweeps.services mlflow adduser --uri http://10.0.0.5:5001 --name sweep --password-file sweep.secret
"""

from __future__ import annotations

import argparse
import glob
import logging
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from sweeps import log
from sweeps.urls import with_driver

logger = logging.getLogger(__name__)

LOCALHOST = "127.0.0.1"


class ServiceError(RuntimeError):
    """A server could not be started or stopped; the message says why and where its log is."""


def read_secret(path: str | Path) -> str:
    """The first line of a file only its owner can read: a password never given on a command line."""
    path = Path(path)
    try:
        mode = path.stat().st_mode & 0o777
        secret = (path.read_text().splitlines() or [""])[0]
    except OSError as err:
        raise ServiceError(f"the password file {path} cannot be read ({err.strerror})") from None
    if mode & 0o077:
        raise ServiceError(f"the password file {path} has mode {mode:04o}, readable by other users; "
                           f"`chmod 600 {path}` first")
    if not secret:
        raise ServiceError(f"the password file {path} is empty")
    return secret


def free_port(host: str = LOCALHOST) -> int:
    """A port `host` can bind now, below the kernel's ephemeral range: the source ports of outgoing
    connections come from that range, so none (a client polling the server, or retrying while it
    restarts on the same port) can take this one before the server binds it. Picked at random, so
    that two runs at once (two test suites) seldom try the same."""
    low = ephemeral_ports()[0]
    pick = random.SystemRandom()
    for _ in range(200):
        port = pick.randrange(max(1024, low - 12000), low)
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:  # taken
                continue
            return port
    with socket.socket() as s:  # the whole band taken: any port the kernel gives
        s.bind((host, 0))
        return s.getsockname()[1]


def ephemeral_ports() -> tuple[int, int]:
    """The kernel's range of source ports for outgoing connections (Linux's default elsewhere)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def pg_bin(name: str) -> str | None:
    """A PostgreSQL program: on PATH, else in Debian's /usr/lib/postgresql/<version>/bin (newest)."""
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                      key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    return versions[-1] if versions else None


def postgres_missing() -> str:
    """Why a PostgreSQL server cannot be run here, or '' when it can."""
    missing = [n for n in ("initdb", "pg_ctl", "postgres") if pg_bin(n) is None]
    if missing:
        return (f"PostgreSQL's {', '.join(missing)} not found (on PATH or in /usr/lib/postgresql/*/bin); "
                "install it, e.g. `apt-get install -y postgresql`")
    if os.geteuid() == 0:
        try:
            import pwd
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root, and there is no `postgres` user to run the server as"
    return ""


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class Postgres:
    """One PostgreSQL server: its data in `directory`/data, its socket and log in `directory`."""

    def __init__(self, directory: str | Path, port: int = 5432, host: str = LOCALHOST, fast: bool = False,
                 password_file: str | Path | None = None):
        self.dir = Path(directory).resolve()
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        self.port, self.host = port, host
        self.fast = fast  # no fsync: for throwaway test servers only
        self.password_file = password_file  # at initdb: TCP clients need this password (scram-sha-256)

    def url(self, db: str) -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/{db}"

    def _as_owner(self, cmd: list[str]) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd

    def _run(self, cmd: list[str], what: str) -> subprocess.CompletedProcess:
        proc = subprocess.run(self._as_owner(cmd), capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            raise ServiceError(f"{what} failed ({proc.returncode}): {(proc.stderr or proc.stdout).strip()}\n"
                               f"log {self.log}:\n{_tail(self.log)}")
        return proc

    def init(self) -> None:
        """initdb, once: superuser `postgres`; trust authentication, or with a password file the
        password over TCP (from this server's subnets too) and trust on its own socket only."""
        if (self.data / "PG_VERSION").exists():
            return
        why = postgres_missing()
        if why:
            raise ServiceError(why)
        self.dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
            probe = subprocess.run(["runuser", "-u", "postgres", "--", "test", "-w", str(self.dir)])
            if probe.returncode != 0:
                raise ServiceError(f"the postgres user cannot write to {self.dir} (it is, or a parent folder "
                                   "is, closed to other users); pick another folder, e.g. under /var/tmp")
        auth = ["--auth=trust"]
        secret = self.dir / ".initdb-password"  # the postgres user must read it; removed at once
        if self.password_file is not None:
            secret.touch(mode=0o600)
            secret.write_text(read_secret(self.password_file) + "\n")
            if os.geteuid() == 0:
                shutil.chown(secret, "postgres", "postgres")
            auth = ["--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={secret}"]
        try:
            self._run([pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", *auth, "-E", "UTF8",
                       *(["--no-sync"] if self.fast else [])], "initdb")
        finally:
            secret.unlink(missing_ok=True)
        if self.password_file is not None:  # initdb's lines cover loopback only: add the server's networks
            with open(self.data / "pg_hba.conf", "a") as hba:
                hba.write("host all all samenet scram-sha-256\n")

    def start(self, timeout: int = 60) -> "Postgres":
        self.init()
        if self.running():
            return self
        opts = f"-p {self.port} -k {self.dir} -h {self.host} -c max_connections=200"
        if self.fast:
            opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run([pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", str(timeout),
                   "-o", opts, "start"], "pg_ctl start")
        return self

    def running(self) -> bool:
        if not (self.data / "postmaster.pid").exists():
            return False
        return subprocess.run(self._as_owner([pg_bin("pg_ctl"), "-D", str(self.data), "status"]),
                              capture_output=True).returncode == 0

    def createdb(self, name: str) -> str:
        """Creates the database unless it exists; returns its URL."""
        psql = pg_bin("psql")
        # through the server's own socket (trust): no password needed, with or without one set
        base = [psql, "-h", str(self.dir), "-p", str(self.port), "-U", "postgres", "-d", "postgres", "-v",
                "ON_ERROR_STOP=1", "-tAc"]
        exists = subprocess.run([*base, f"SELECT 1 FROM pg_database WHERE datname = '{name}'"],
                                capture_output=True, text=True, timeout=60)
        if exists.returncode != 0:
            raise ServiceError(f"psql could not reach {self.url('postgres')}: {exists.stderr.strip()}")
        if exists.stdout.strip() != "1":
            proc = subprocess.run([*base, f'CREATE DATABASE "{name}"'], capture_output=True, text=True, timeout=60)
            if proc.returncode != 0 and "already exists" not in proc.stderr:
                raise ServiceError(f"CREATE DATABASE {name} failed: {proc.stderr.strip()}")
        return self.url(name)

    def stop(self) -> None:
        if self.data.exists() and self.running():
            self._run([pg_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"], "pg_ctl stop")


class MlflowServer:
    """`mlflow server` in its own process group, proxying artifacts to `artifacts`."""

    def __init__(self, backend_uri: str, artifacts: str | Path, port: int = 5001, host: str = LOCALHOST,
                 log: str | Path | None = None, allowed_hosts: str = "", auth: bool = False):
        self.backend_uri, self.port, self.host = with_driver(backend_uri), port, host
        self.allowed_hosts = allowed_hosts  # Host headers beyond localhost and private IPs (MLflow's default)
        self.artifacts = Path(artifacts).resolve()
        self.log = Path(log) if log else self.artifacts.parent / f"mlflow-server-{port}.log"
        self.auth = auth  # MLflow's basic-auth app, its users in basic_auth.db beside the log
        self.proc: subprocess.Popen | None = None
        self.pid: int | None = None

    @property
    def uri(self) -> str:
        return f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", self.backend_uri,
                "--artifacts-destination", str(self.artifacts), "--host", self.host, "--port", str(self.port),
                "--workers", "1", *(["--allowed-hosts", self.allowed_hosts] if self.allowed_hosts else []),
                *(["--app-name", "basic-auth"] if self.auth else [])]

    def auth_env(self) -> dict[str, str]:
        """The basic-auth app's settings: its config file (users in basic_auth.db beside the log) and
        the key of its CSRF tokens, kept in a file of mode 0600 so that a restart keeps it."""
        folder = self.log.parent.resolve()
        config, key = folder / "basic_auth.ini", folder / "basic_auth.key"
        if not (folder / "basic_auth.db").exists() and not os.environ.get("MLFLOW_AUTH_ADMIN_PASSWORD"):
            raise ServiceError("an MLflow server with --auth creates its admin user at its first start: set "
                               "MLFLOW_AUTH_ADMIN_PASSWORD to that user's password")
        # auth_cache_ttl_seconds: each request's password check is a slow PBKDF2 hash, which made a trial
        # (about ten requests) seconds slower (benchmarks/RESULTS.md); a checked password is trusted for 5 minutes
        config.write_text(f"[mlflow]\ndefault_permission = READ\ndatabase_uri = sqlite:///{folder / 'basic_auth.db'}\n"
                          "admin_username = admin\nauth_cache_ttl_seconds = 300\n"
                          "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n")
        if not key.exists():
            key.touch(mode=0o600)
            key.write_text(secrets.token_hex(32))
        return {"MLFLOW_AUTH_CONFIG_PATH": str(config), "MLFLOW_FLASK_SERVER_SECRET_KEY": key.read_text()}

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.uri + "/health", timeout=2) as resp:
                return resp.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def start(self, timeout: float = 120) -> "MlflowServer":
        self.artifacts.mkdir(parents=True, exist_ok=True)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **(self.auth_env() if self.auth else {})}
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, env=env,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        self.pid = self.proc.pid
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServiceError(f"mlflow server exited {self.proc.returncode}; log {self.log}:\n{_tail(self.log)}")
            if self.healthy():
                return self
            time.sleep(0.25)
        self.stop()
        raise ServiceError(f"mlflow server was not healthy after {timeout:.0f} s; log {self.log}:\n{_tail(self.log)}")

    def stop(self, timeout: float = 20) -> None:
        if self.pid is not None:
            stop_group(self.pid, timeout, self.proc)
        if self.proc is not None:
            self.proc.wait(timeout=5)


def add_user(uri: str, name: str, password: str) -> None:
    """A user of an MLflow server with --auth, added by its admin (MLFLOW_TRACKING_USERNAME and
    MLFLOW_TRACKING_PASSWORD in the environment); one that exists already is left as it is."""
    from mlflow.exceptions import RestException  # deferred: the command's other actions never need mlflow
    from mlflow.server import get_app_client

    client = get_app_client("basic-auth", tracking_uri=uri)
    try:
        client.create_user(username=name, password=password)
    except RestException as err:
        if err.error_code != "RESOURCE_ALREADY_EXISTS":
            raise ServiceError(f"the MLflow server {uri} did not add user {name!r}: {err}") from None


def stop_group(pgid: int, timeout: float = 20, leader: subprocess.Popen | None = None) -> None:
    """SIGTERM to a process group, then SIGKILL to what is left of it after `timeout` seconds.
    `leader`: the group's leader when it is our child, reaped here (a zombie still counts as a member)."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if leader is not None:
            leader.poll()
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


# ---- command line (the Makefile's targets) --------------------------------------------------
def _postgres(args: argparse.Namespace) -> int:
    pg = Postgres(args.dir, port=args.port, host=args.host, password_file=args.password_file)
    if args.action == "stop":
        pg.stop()
        logger.info(f"[services] PostgreSQL in {pg.data} stopped")
        return 0
    pg.start()
    for db in args.db or ["optuna", "mlflow"]:
        logger.info(f"[services] {pg.createdb(db)}")
    logger.info(f"[services] PostgreSQL on {args.host}:{args.port}, data in {pg.data}, log {pg.log}")
    return 0


def _mlflow(args: argparse.Namespace) -> int:
    if args.action == "adduser":
        add_user(args.uri, args.name, read_secret(args.password_file))
        logger.info(f"[services] user {args.name!r} can log to {args.uri}")
        return 0
    state = Path(args.state)
    pidfile = state.with_suffix(".pid")
    if args.action == "stop":
        if not pidfile.exists():
            logger.info(f"[services] no {pidfile}: no MLflow server started by `make mlflow-server`")
            return 0
        stop_group(int(pidfile.read_text().split()[0]))
        pidfile.unlink()
        logger.info("[services] MLflow server stopped (its whole process group)")
        return 0
    if pidfile.exists():
        pid = int(pidfile.read_text().split()[0])
        try:
            os.killpg(pid, 0)
            logger.info(f"[services] an MLflow server already runs (process group {pid}); `make mlflow-server-stop` first")
            return 1
        except ProcessLookupError:
            pidfile.unlink()
    if not args.backend_store_uri:
        logger.warning("[services] --backend-store-uri is required (e.g. postgresql://postgres@127.0.0.1:5432/mlflow)")
        return 2
    server = MlflowServer(args.backend_store_uri, args.artifacts, port=args.port, host=args.host,
                          log=state.with_suffix(".log"), allowed_hosts=args.allowed_hosts, auth=args.auth)
    server.start(timeout=args.timeout)
    pidfile.write_text(f"{server.pid}\n")
    logger.info(f"[services] MLflow server on {server.uri} (backend {args.backend_store_uri}, artifacts in "
                f"{server.artifacts}; log {server.log}; process group {server.pid})\n"
                f"[services] sweeps log to it with tracking.uri={server.uri}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sweeps.services", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="service", required=True)
    pg = sub.add_parser("postgres", help="a PostgreSQL server with its own data directory")
    pg.add_argument("action", choices=("start", "stop"))
    pg.add_argument("--dir", default="outputs/postgres")
    pg.add_argument("--port", type=int, default=5432)
    pg.add_argument("--host", default=LOCALHOST)
    pg.add_argument("--db", action="append", help="a database to create (repeatable; default optuna and mlflow)")
    pg.add_argument("--password-file", help="at the first start: the password (a file of mode 0600) that TCP "
                    "clients must give, from the server's own subnets too")
    ml = sub.add_parser("mlflow", help="an MLflow tracking server, in the background")
    ml.add_argument("action", choices=("start", "stop", "adduser"))
    ml.add_argument("--auth", action="store_true", help="MLflow's basic-auth app: every request needs a user "
                    "(admin's password: MLFLOW_AUTH_ADMIN_PASSWORD at the first start)")
    ml.add_argument("--uri", help="adduser: the server, its admin in MLFLOW_TRACKING_USERNAME/_PASSWORD")
    ml.add_argument("--name", default="sweep", help="adduser: the user's name")
    ml.add_argument("--password-file", help="adduser: the user's password, a file of mode 0600")
    ml.add_argument("--backend-store-uri", default=os.environ.get("MLFLOW_BACKEND_URI", ""))
    ml.add_argument("--artifacts", default="mlartifacts")
    ml.add_argument("--host", default=LOCALHOST)
    ml.add_argument("--port", type=int, default=5001)
    ml.add_argument("--allowed-hosts", default="", help="mlflow server --allowed-hosts: Host headers to accept "
                    "beyond localhost and private IPs, e.g. mlflow.example.org")
    ml.add_argument("--state", default="outputs/mlflow-server", help="its .pid and .log files (without suffix)")
    ml.add_argument("--timeout", type=float, default=120)
    args = parser.parse_args(argv)
    log.setup()  # its messages on the terminal, when called from Python too
    try:
        return _postgres(args) if args.service == "postgres" else _mlflow(args)
    except ServiceError as err:
        logger.error(f"[services] error: {err}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
