"""The production topology of deploy/compose.yaml as local processes, without containers.

`make stack` runs it for a user; tests/integration/test_deploy_topology.py runs the same code.
Every program is the real one, started with the project's own files:

- S3: `moto_server` (moto in server mode, a real S3 HTTP API) in place of MinIO;
- `mlflow server` on a PostgreSQL database, artifacts in the S3 bucket (no proxying);
- two `fraudops serve` replicas on PostgreSQL and Redis, loading the champion from S3;
- nginx with deploy/nginx/nginx.conf, its upstreams and port rewritten to the local ones;
- `fraudops ingest` on a Redis stream into nginx, `fraudops schedule`, both with the
  command lines of deploy/compose.yaml (hosts and ports rewritten);
- Prometheus with deploy/prometheus/prometheus.yml and rules.yml, targets rewritten.

Grafana and the console are not started (no Debian package for Grafana; the console runs
with `fraudops console`). The databases are made afresh at each start and dropped at the end:
moto keeps the bucket in memory, so the registry must not outlive it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import sqlalchemy as sa
import yaml

DEPLOY = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
COMPOSE = DEPLOY / "compose.yaml"
NGINX_CONF = DEPLOY / "nginx" / "nginx.conf"
PROMETHEUS_CONF = DEPLOY / "prometheus" / "prometheus.yml"
PROMETHEUS_RULES = DEPLOY / "prometheus" / "rules.yml"
BUCKET = "mlflow"  # as deploy/compose.yaml's minio-bucket makes it
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
REPLICAS = ("serve-1", "serve-2")


class StackError(RuntimeError):
    """A part of the local stack failed to start or died."""


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- the project's files, rewritten for local processes -----------------------------------


def compose_command(service: str, overrides: Mapping[str, str]) -> list[str]:
    """The fraudops arguments of a compose service, with some options' values replaced.

    Both spellings of deploy/compose.yaml are understood (`--opt=value` and `--opt value`);
    an option not in the file is added.
    """
    command = [str(part) for part in _compose()["services"][service]["command"]]
    result: list[str] = []
    seen: set[str] = set()
    index = 0
    while index < len(command):
        part = command[index]
        name, equals, _ = part.partition("=")
        if name in overrides:
            seen.add(name)
            result.append(f"{name}={overrides[name]}")
            has_value = not equals and index + 1 < len(command)
            index += 2 if has_value and not command[index + 1].startswith("--") else 1
            continue
        result.append(part)
        index += 1
    result += [f"{name}={value}" for name, value in overrides.items() if name not in seen]
    return result


def _compose() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text()))


def render_nginx_conf(upstreams: Mapping[str, str], *, listen: str, folder: Path) -> str:
    """deploy/nginx/nginx.conf with its upstream servers and listen address replaced.

    `upstreams` maps `serve-1:8000` to `127.0.0.1:PORT`. Temporary files go under `folder`,
    so that nginx runs as any user.
    """
    text = NGINX_CONF.read_text()
    for address, local in upstreams.items():
        text, count = re.subn(rf"\bserver {re.escape(address)}\b", f"server {local}", text)
        if count != 1:
            raise StackError(f"{NGINX_CONF} has no upstream server {address}")
    text, count = re.subn(r"\blisten \d+;", f"listen {listen};", text)
    if count != 1:
        raise StackError(f"{NGINX_CONF} has no single `listen PORT;`")
    temp = "\n".join(
        f"    {kind}_temp_path {folder / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return text.replace("http {\n", f"http {{\n{temp}\n", 1)


def render_prometheus_config(
    targets: Mapping[str, str], *, scrape_interval: str, rules: Path
) -> dict[str, Any]:
    """deploy/prometheus/prometheus.yml with every target mapped through `targets`."""
    config = dict(yaml.safe_load(PROMETHEUS_CONF.read_text()))
    config["global"] = {
        **config.get("global", {}),
        "scrape_interval": scrape_interval,
        "evaluation_interval": scrape_interval,
    }
    config["rule_files"] = [str(rules)]
    for job in config["scrape_configs"]:
        for static in job.get("static_configs", []):
            unknown = [t for t in static["targets"] if t not in targets]
            if unknown:
                raise StackError(f"{PROMETHEUS_CONF}: no local address for {unknown}")
            static["targets"] = [targets[t] for t in static["targets"]]
    return config


# --- processes --------------------------------------------------------------------------


@dataclass
class Child:
    """A started program, in a process group of its own (MLflow starts workers)."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes]

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM the group, SIGKILL what is left."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.log_file.close()

    def log(self) -> str:
        """What the program wrote so far."""
        return self.log_path.read_text(errors="replace")


@dataclass(kw_only=True)
class LocalStackConfig:
    """Where the local stack keeps its files and finds PostgreSQL and Redis."""

    folder: Path
    postgres_url: str = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    redis_url: str = "redis://127.0.0.1:6379/0"
    name: str = field(default_factory=lambda: f"fraudops_stack_{secrets.token_hex(4)}")
    nginx_port: int | None = None
    prometheus_port: int | None = None
    mlflow_port: int | None = None
    scrape_interval: str = "15s"
    model_watch_seconds: float = 10.0


@dataclass
class LocalStack:
    """The running topology; a context manager that starts it and stops it in order."""

    config: LocalStackConfig
    children: list[Child] = field(default_factory=list)
    ports: dict[str, int] = field(default_factory=dict)
    api_token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    admin_token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    card_hash_key: str = field(default_factory=lambda: secrets.token_hex(32))
    # One client for every poll and query: a new one per request loads the TLS certificates
    # (about 20 ms of CPU each) for plain-HTTP calls on loopback.
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10))

    def __post_init__(self) -> None:
        c = self.config
        self.folder = c.folder.resolve()
        self.ports = {
            "s3": free_port(),
            "mlflow": c.mlflow_port or free_port(),
            "nginx": c.nginx_port or free_port(),
            "prometheus": c.prometheus_port or free_port(),
            "serve-1": free_port(),
            "serve-2": free_port(),
            "ingest": free_port(),
            "scheduler": free_port(),
        }
        server = sa.make_url(c.postgres_url)
        self.warehouse_url = server.set(database=c.name).render_as_string(hide_password=False)
        self.mlflow_db_url = server.set(database=f"{c.name}_mlflow").render_as_string(
            hide_password=False
        )
        self.stream = f"{c.name}:transactions"
        self.redis_prefix = c.name

    # URLs of the parts
    def url(self, part: str) -> str:
        """http://127.0.0.1:PORT of a part (s3, mlflow, nginx, prometheus, serve-1, ...)."""
        return f"http://127.0.0.1:{self.ports[part]}"

    def fraudops_env(self, **extra: str) -> dict[str, str]:
        """The environment of every fraudops process: compose's settings, local addresses."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("FRAUDOPS_", "MLFLOW_", "AWS_"))
            and k != "PROMETHEUS_MULTIPROC_DIR"
        }
        env |= FAKE_AWS | {
            "FRAUDOPS_HOME": str(self.folder / "home"),
            "FRAUDOPS_DATABASE_URL": self.warehouse_url,
            "FRAUDOPS_REDIS_URL": self.config.redis_url,
            "FRAUDOPS_REDIS_PREFIX": self.redis_prefix,
            "FRAUDOPS_TRACKING_URI": self.url("mlflow"),
            "FRAUDOPS_API_TOKENS": self.api_token,
            "FRAUDOPS_ADMIN_TOKENS": self.admin_token,
            "FRAUDOPS_CARD_HASH_KEY": self.card_hash_key,
            "FRAUDOPS_LOG_FORMAT": "json",
            "FRAUDOPS_MODEL_WATCH_SECONDS": f"{self.config.model_watch_seconds:g}",
            "MLFLOW_S3_ENDPOINT_URL": self.url("s3"),
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        }
        return env | extra

    def spawn(self, name: str, command: Sequence[str], env: Mapping[str, str]) -> Child:
        """Start a program, its output in FOLDER/logs/NAME.log."""
        logs = self.folder / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        log_path = logs / f"{name}.log"
        log_file = log_path.open("ab")
        process = subprocess.Popen(  # noqa: S603 - the project's own programs, no shell
            list(command),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=dict(env),
            cwd=self.folder,
            start_new_session=True,
        )
        child = Child(name=name, process=process, log_path=log_path, log_file=log_file)
        self.children.append(child)
        return child

    def wait_http(self, child: Child, url: str, *, timeout: float = 180.0) -> None:
        """Wait until `url` answers 200, failing with the child's log if it exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if child.process.poll() is not None:
                raise StackError(f"{child.name} exited at start:\n{child.log()[-4000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if self.http.get(url, timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise StackError(
            f"{child.name} not ready at {url} in {timeout:.0f} s:\n{child.log()[-4000:]}"
        )

    # --- starting ---------------------------------------------------------------------------

    def __enter__(self) -> LocalStack:
        try:
            self.start_storage()
            self.start_serving()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def start_storage(self) -> None:
        """S3, the databases and MLflow; nginx and Prometheus (their upstreams come later)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with ThreadPoolExecutor(4) as pool:
            jobs = [
                pool.submit(self._start_s3),
                pool.submit(self._start_mlflow),
                pool.submit(self._start_nginx),
                pool.submit(self._start_prometheus),
            ]
            for job in jobs:
                job.result()

    def start_serving(self) -> None:
        """Both replicas (in parallel), then the ingester and the scheduler."""
        replicas = [self._start_replica(name) for name in REPLICAS]
        for name, child in zip(REPLICAS, replicas, strict=True):
            self.wait_http(child, f"{self.url(name)}/readyz", timeout=240)
        self._start_ingester()
        self._start_scheduler()

    def _start_s3(self) -> None:
        child = self.spawn(
            "s3",
            [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(self.ports["s3"])],
            {**os.environ, **FAKE_AWS},
        )
        self.wait_http(child, f"{self.url('s3')}/moto-api/", timeout=60)
        self.s3_client().create_bucket(Bucket=BUCKET)

    def s3_client(self) -> Any:
        """A boto3 S3 client on the local S3."""
        import boto3  # noqa: PLC0415 - only the S3 parts need it

        return boto3.client(
            "s3",
            endpoint_url=self.url("s3"),
            aws_access_key_id=FAKE_AWS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=FAKE_AWS["AWS_SECRET_ACCESS_KEY"],
            region_name=FAKE_AWS["AWS_DEFAULT_REGION"],
        )

    def _create_databases(self) -> None:
        admin = sa.create_engine(self.config.postgres_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as connection:
                for database in (self.config.name, f"{self.config.name}_mlflow"):
                    connection.execute(
                        sa.text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
                    )
                    connection.execute(sa.text(f'CREATE DATABASE "{database}"'))
        finally:
            admin.dispose()

    def _drop_databases(self) -> None:
        admin = sa.create_engine(self.config.postgres_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as connection:
                for database in (self.config.name, f"{self.config.name}_mlflow"):
                    connection.execute(
                        sa.text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
                    )
        finally:
            admin.dispose()

    def _start_mlflow(self) -> None:
        """deploy/compose.yaml's mlflow command, on fresh local databases and the bucket."""
        self._create_databases()
        service = _compose()["services"]["mlflow"]
        options = [
            str(o)
            for o in service["command"]
            if not str(o).startswith(("--host", "--port", "--backend"))
        ]
        command = [
            str(BIN / "mlflow"),
            *options,
            f"--backend-store-uri={self.mlflow_db_url}",
            "--host=127.0.0.1",
            f"--port={self.ports['mlflow']}",
            "--workers=1",
        ]
        command = [o for o in command if not o.startswith("--allowed-hosts")]
        # The server's own settings as compose sets them (the job runner off).
        server_settings = {
            k: str(v) for k, v in service["environment"].items() if k.startswith("MLFLOW_SERVER_")
        }
        env = self.fraudops_env() | server_settings
        child = self.spawn("mlflow", command, env)
        self.wait_http(child, f"{self.url('mlflow')}/health", timeout=180)

    def _start_nginx(self) -> None:
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        folder = self.folder / "nginx"
        folder.mkdir(parents=True, exist_ok=True)
        upstreams = {f"{name}:8000": f"127.0.0.1:{self.ports[name]}" for name in REPLICAS}
        conf = folder / "nginx.conf"
        conf.write_text(
            render_nginx_conf(upstreams, listen=f"127.0.0.1:{self.ports['nginx']}", folder=folder)
        )
        directives = f"daemon off; pid {folder / 'nginx.pid'}; error_log {folder / 'error.log'};"
        child = self.spawn(
            "nginx", [binary, "-p", str(folder), "-c", str(conf), "-g", directives], os.environ
        )
        # Up when it answers at all: a 502 means nginx runs and the replicas do not yet.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if child.process.poll() is not None:
                raise StackError(f"nginx exited at start:\n{child.log()}")
            with contextlib.suppress(httpx.HTTPError):
                self.http.get(f"{self.url('nginx')}/healthz", timeout=2)
                return
            time.sleep(0.1)
        raise StackError(f"nginx did not start:\n{child.log()}")

    def _start_prometheus(self) -> None:
        folder = self.folder / "prometheus"
        folder.mkdir(parents=True, exist_ok=True)
        targets = {
            "serve-1:8000": f"127.0.0.1:{self.ports['serve-1']}",
            "serve-2:8000": f"127.0.0.1:{self.ports['serve-2']}",
            "ingest:9102": f"127.0.0.1:{self.ports['ingest']}",
            "scheduler:9103": f"127.0.0.1:{self.ports['scheduler']}",
        }
        config = render_prometheus_config(
            targets, scrape_interval=self.config.scrape_interval, rules=PROMETHEUS_RULES
        )
        path = folder / "prometheus.yml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        binary = shutil.which("prometheus") or "/usr/bin/prometheus"
        child = self.spawn(
            "prometheus",
            [
                binary,
                f"--config.file={path}",
                f"--storage.tsdb.path={folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.ports['prometheus']}",
            ],
            os.environ,
        )
        self.wait_http(child, f"{self.url('prometheus')}/-/ready", timeout=60)

    def _start_replica(self, name: str) -> Child:
        command = compose_command(name, {"--host": "127.0.0.1", "--port": str(self.ports[name])})
        return self.spawn(name, [str(BIN / "fraudops"), *command], self.fraudops_env())

    def _start_ingester(self) -> None:
        command = compose_command(
            "ingest",
            {
                "--stream": self.stream,
                "--service-url": self.url("nginx"),
                "--metrics-port": str(self.ports["ingest"]),
                "--state-dir": str(self.folder / "ingest"),
            },
        )
        child = self.spawn("ingest", [str(BIN / "fraudops"), *command], self.fraudops_env())
        self.wait_http(child, f"{self.url('ingest')}/metrics", timeout=60)

    def _start_scheduler(self) -> None:
        command = compose_command(
            "scheduler", {"--metrics-port": str(self.ports["scheduler"]), "--poll-seconds": "1"}
        )
        env = self.fraudops_env(FRAUDOPS_SERVICE_URL=self.url("nginx"))
        child = self.spawn("scheduler", [str(BIN / "fraudops"), *command], env)
        self.wait_http(child, f"{self.url('scheduler')}/metrics", timeout=60)

    # --- using it ---------------------------------------------------------------------------

    def fraudops(self, *args: str, timeout: float = 300.0) -> subprocess.CompletedProcess[str]:
        """Run a fraudops command against the stack (train, models promote, monitor...)."""
        return subprocess.run(  # noqa: S603 - our own command
            [str(BIN / "fraudops"), *args],
            env=self.fraudops_env(FRAUDOPS_SERVICE_URL=self.url("nginx")),
            cwd=self.folder,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The result of an instant PromQL query; raises on an error answer."""
        answer = self.http.get(f"{self.url('prometheus')}/api/v1/query", params={"query": promql})
        body = answer.json()
        if answer.status_code != 200 or body.get("status") != "success":
            raise StackError(f"Prometheus refused {promql!r}: {body}")
        return list(body["data"]["result"])

    def check_alive(self) -> None:
        """Raise if a part died."""
        for child in self.children:
            if child.process.poll() is not None:
                raise StackError(
                    f"{child.name} exited ({child.process.returncode}):\n{child.log()[-4000:]}"
                )

    def close(self) -> None:
        """Stop everything; drop the databases and the Redis keys."""
        # The feeding parts first (ingester, scheduler), then everything else at once.
        feeders = [c for c in self.children if c.name in ("ingest", "scheduler")]
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(Child.stop, feeders))
        with ThreadPoolExecutor(max(1, len(self.children))) as pool:
            list(pool.map(Child.stop, [c for c in self.children if c not in feeders]))
        self.children.clear()
        with contextlib.suppress(sa.exc.SQLAlchemyError):
            self._drop_databases()
        self._drop_redis_keys()
        self.http.close()

    def _drop_redis_keys(self) -> None:
        """The stack's feature state and stream: the next start begins as empty as its
        databases."""
        import redis  # noqa: PLC0415

        client = redis.Redis.from_url(self.config.redis_url)
        try:
            for key in client.scan_iter(f"{self.redis_prefix}*", count=1000):
                client.delete(key)
        except redis.RedisError:
            pass
        finally:
            client.close()


def wait_until(
    condition: Callable[[], bool], *, timeout: float, what: str, every: float = 0.3
) -> None:
    """Poll until `condition()` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise StackError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


# --- make stack -----------------------------------------------------------------------------


@contextlib.contextmanager
def user_stack(args: argparse.Namespace) -> Iterator[LocalStack]:
    """The stack with a champion trained on simulated data (`make stack`)."""
    config = LocalStackConfig(
        folder=args.folder,
        postgres_url=args.postgres_url,
        redis_url=args.redis_url,
        name="fraudops_stack",
        nginx_port=args.port,
        prometheus_port=args.prometheus_port,
        mlflow_port=args.mlflow_port,
    )
    stack = LocalStack(config)
    try:
        stack.start_storage()
        data = stack.folder / "history.parquet"
        for command in (
            ["simulate", "--days", "28", "--cards", "1000", "--seed", "7", "--out", str(data)],
            [
                "train",
                "--data",
                str(data),
                "--profile",
                "sparkov",
                "--trials",
                "0",
                "--delay-days",
                "2",
            ],
        ):
            print(f"fraudops {' '.join(command)}")  # noqa: T201 - the launcher talks to its user
            done = stack.fraudops(*command, timeout=900)
            if done.returncode != 0:
                raise StackError(f"fraudops {command[0]} failed:\n{done.stdout}{done.stderr}")
        stack.start_serving()
        yield stack
    finally:
        stack.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Start the local stack, print where each part is, run until Ctrl-C."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=Path(".fraudops/stack"))
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("FRAUDOPS_STACK_POSTGRES_URL", LocalStackConfig.postgres_url),
        help="a PostgreSQL server where the stack may create and drop its two databases",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("FRAUDOPS_STACK_REDIS_URL", "redis://127.0.0.1:6379/0"),
    )
    parser.add_argument("--port", type=int, default=8080, help="nginx, the scoring API")
    parser.add_argument("--prometheus-port", type=int, default=9090)
    parser.add_argument("--mlflow-port", type=int, default=5000)
    args = parser.parse_args(argv)
    stop = False

    def request_stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, request_stop)
    with user_stack(args) as stack:
        lines = [
            f"scoring API (nginx)  {stack.url('nginx')}   token: {stack.api_token}",
            f"admin token          {stack.admin_token}",
            f"Redis stream         {stack.stream} on {args.redis_url}",
            f"MLflow               {stack.url('mlflow')}",
            f"Prometheus           {stack.url('prometheus')}",
            f"S3 (moto)            {stack.url('s3')}   bucket {BUCKET}",
            f"logs                 {stack.folder / 'logs'}",
            "Ctrl-C stops everything and drops the stack's databases.",
        ]
        print("\n".join(lines), flush=True)  # noqa: T201
        try:
            while not stop:
                stack.check_alive()
                time.sleep(1)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
