"""The Grafana provisioning and dashboards fit together and with the compose file."""

import json
from pathlib import Path

import yaml

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
GRAFANA = DEPLOY / "grafana"


def test_every_panel_queries_the_provisioned_prometheus() -> None:
    """Six dashboards with unique ids; each panel has PromQL targets on the data source
    that provisioning creates (by uid)."""
    datasources = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    (source,) = datasources["datasources"]
    dashboards = [
        json.loads(p.read_text()) for p in sorted((GRAFANA / "dashboards").glob("*.json"))
    ]

    assert "http://prometheus:9090" == source["url"]
    assert 6 == len({d["uid"] for d in dashboards})
    for dashboard in dashboards:
        for panel in dashboard["panels"]:
            assert panel["targets"], f"{dashboard['title']} / {panel['title']} has no query"
            for target in [panel, *panel["targets"]]:
                assert {"type": "prometheus", "uid": source["uid"]} == target["datasource"]
            assert all(t["expr"].strip() for t in panel["targets"])


def test_the_dashboards_folder_is_where_provisioning_and_compose_put_it() -> None:
    """The provider reads the folder compose mounts deploy/grafana/dashboards on."""
    provider = yaml.safe_load((GRAFANA / "provisioning/dashboards/fraudops.yml").read_text())
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    mounts = dict(v.split(":")[:2] for v in compose["services"]["grafana"]["volumes"])

    path = provider["providers"][0]["options"]["path"]
    assert path == mounts["./grafana/dashboards"]
    assert "/etc/grafana/provisioning" == mounts["./grafana/provisioning"]
