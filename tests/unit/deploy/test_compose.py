"""deploy/ agrees with the code of this checkout: commands, settings, ports, image pins."""

import re
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from fraudops.api.app import BYTES_PER_ITEM
from fraudops.cli import app
from fraudops.config import Settings

REPO = Path(__file__).resolve().parents[3]
DEPLOY = REPO / "deploy"
COMPOSE: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
CLI: Any = typer.main.get_command(app)  # a click group (typer's own copy of click)
VERSION = re.search(r'^version = "(.+)"', (REPO / "pyproject.toml").read_text(), re.M)


def fraudops_services() -> list[str]:
    """Services that run the fraudops image's own entry point (a `fraudops` command)."""
    return [
        name
        for name, service in SERVICES.items()
        if str(service.get("image", "")).startswith("fraudops:") and "entrypoint" not in service
    ]


def parse(arguments: list[str]) -> Any:
    """Parse a command line as `fraudops` would (options, types, required), running nothing.

    Raises the CLI's usage error for an unknown command or option or a bad value.
    """
    command, context, rest = CLI, None, list(arguments)
    while hasattr(command, "list_commands"):  # a group: resolve the next word
        context = command.context_class(command, parent=context)
        name, command, rest = command.resolve_command(context, rest)
    return command.make_context(name, rest, parent=context)


def listening_ports(service: dict[str, Any]) -> set[int]:
    """Ports a fraudops service listens on, from its command line."""
    ports: set[int] = set()
    command = [str(part) for part in service.get("command", [])]
    for index, part in enumerate(command):
        name, equals, value = part.partition("=")
        if name in ("--port", "--metrics-port"):
            ports.add(int(value if equals else command[index + 1]))
    return ports


@pytest.mark.parametrize("service", fraudops_services())
def test_every_service_command_is_accepted_by_the_cli(service: str) -> None:
    """Each fraudops service's command parses with this checkout's CLI (options and types)."""
    context = parse([str(part) for part in SERVICES[service]["command"]])

    assert context.command.name is not None


def test_the_services_that_must_be_there_are() -> None:
    """Storage, MLflow, two replicas behind nginx, ingester, scheduler, console, monitoring."""
    expected = {
        "postgres", "redis", "minio", "minio-bucket", "mlflow", "serve-1", "serve-2", "nginx",
        "ingest", "scheduler", "console", "prometheus", "grafana", "airflow",
    }  # fmt: skip
    assert expected == set(SERVICES)
    assert ["airflow"] == [n for n, s in SERVICES.items() if s.get("profiles")]


def compose_variables() -> set[str]:
    """Every FRAUDOPS_ variable the compose file or the env example sets."""
    names = {
        key
        for service in SERVICES.values()
        for key in (service.get("environment") or {})
        if key.startswith("FRAUDOPS_")
    }
    example = (DEPLOY / ".env.example").read_text().splitlines()
    names |= {
        line.split("=", 1)[0] for line in example if line.startswith("FRAUDOPS_") and "=" in line
    }
    return names


@pytest.mark.parametrize("variable", sorted(compose_variables()))
def test_every_fraudops_variable_is_a_setting(variable: str) -> None:
    """A FRAUDOPS_ variable in deploy/ names a field of Settings (no typo is silently ignored)."""
    assert variable.removeprefix("FRAUDOPS_").lower() in Settings.model_fields


def test_every_scraped_target_is_a_port_its_service_listens_on() -> None:
    """Each Prometheus target is a compose service listening on that port (serve, ingest,
    scheduler), and every fraudops replica and metrics port is scraped."""
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets = {
        target for job in config["scrape_configs"] for static in job["static_configs"]
        for target in static["targets"]
    }  # fmt: skip
    listening = {
        f"{name}:{port}"
        for name in fraudops_services()
        if name != "console"  # the console has no metrics
        for port in listening_ports(SERVICES[name])
    }
    assert {"serve-1:8000", "serve-2:8000", "ingest:9102", "scheduler:9103"} == listening
    assert listening == targets


def test_every_image_is_pinned_by_version() -> None:
    """No `latest`, no bare name: each image has a version tag; ours is the project's."""
    assert VERSION is not None
    for name, service in SERVICES.items():
        image = str(service["image"])
        repository, _, tag = image.rpartition(":")
        assert repository, f"{name}: {image} has no tag"
        assert tag != "latest" and re.search(r"\d", tag), f"{name}: {image} is not pinned"
        if repository.startswith("fraudops"):
            assert VERSION.group(1) == tag, f"{name}: {image} is not version {VERSION.group(1)}"
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "ci.yml").read_text())
    for name, service in workflow["jobs"]["test"]["services"].items():
        assert re.search(r":\d", service["image"]), f"CI service {name} is not pinned"


def test_the_dockerfile_base_is_pinned_and_the_image_runs_unprivileged() -> None:
    """python:3.11.N-slim-bookworm by exact version; a non-root user; a python HEALTHCHECK on
    /healthz; `fraudops` as the entry point."""
    text = (REPO / "Dockerfile").read_text()
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11\.\d+-slim-bookworm$", text, re.M)
    runtime = text[text.index("AS runtime") :]
    assert "USER fraudops" in runtime
    assert 'CMD ["python", "-c"' in runtime and "HEALTHCHECK_URL=http://127.0.0.1:8000/healthz" in (
        runtime
    )
    assert 'ENTRYPOINT ["fraudops"]' in runtime
    assert "-c constraints.txt" in text


def test_nginx_sends_to_both_replicas_and_limits_bodies_as_the_service_does() -> None:
    """The upstream holds both replicas' ports; the body limit is the service's own at the
    default batch limit."""
    text = (DEPLOY / "nginx" / "nginx.conf").read_text()
    servers = set(re.findall(r"^\s*server (\S+?)(?: |;)", text, re.M))
    limit = int(re.search(r"client_max_body_size (\d+);", text).group(1))  # type: ignore[union-attr]

    assert {"serve-1:8000", "serve-2:8000"} == servers
    assert Settings.model_fields["batch_limit"].default * BYTES_PER_ITEM + 65_536 == limit
    assert "proxy_read_timeout" in text and "X-Forwarded-For" in text
