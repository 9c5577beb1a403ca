"""`fraudops validate`, `simulate` and `feed`: data in (fraudops.data, .simulate, .feed)."""

from pathlib import Path
from typing import Annotated, Literal

import typer

from fraudops.config import get_settings


def validate(
    *,
    data: Annotated[Path, typer.Option(help="Transactions file: .csv, .csv.gz or .parquet.")],
    profile: Annotated[str, typer.Option(help="Dataset profile: built-in, user name or .toml.")],
    on_error: Annotated[
        Literal["reject", "quarantine"],
        typer.Option(help="Refuse the file on any bad row, or set bad rows aside and go on."),
    ] = "reject",
    quarantine_out: Annotated[
        Path | None,
        typer.Option(help="Where quarantined rows go (default: beside the data, .quarantine.csv)."),
    ] = None,
    require_label: Annotated[bool, typer.Option(help="Whether a label column is required.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Check a transactions file against a dataset profile and report every problem."""
    import json

    from rich.console import Console

    from fraudops.data.profiles import ProfileError, load_profile
    from fraudops.data.readers import DataFileError, validate_file
    from fraudops.data.validation import render_report
    from fraudops.progress import DelayedProgress

    if quarantine_out is not None and on_error != "quarantine":
        raise typer.BadParameter("needs --on-error quarantine", param_hint="--quarantine-out")
    try:
        dataset = load_profile(profile, user_dir=get_settings().user_profiles_dir)
        with DelayedProgress() as progress:
            report = validate_file(
                data,
                dataset,
                on_error=on_error,
                quarantine_path=quarantine_out,
                require_label=require_label,
                progress=progress.update,
            )
    except (ProfileError, DataFileError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        Console().print(render_report(report))
    raise typer.Exit(1 if report.outcome == "rejected" else 0)


def simulate_command(
    *,
    days: Annotated[int, typer.Option(help="Days of transactions to simulate.")],
    cards: Annotated[int, typer.Option(help="Number of cards (one cardholder each).")],
    out: Annotated[str, typer.Option(help="Output file: .parquet, .csv or .csv.gz.")],
    seed: Annotated[
        int | None, typer.Option(help="Seed (FRAUDOPS_SEED); same seed, same data.")
    ] = None,
    merchants: Annotated[
        int | None, typer.Option(help="Number of merchants (default: cards/20, at least 50).")
    ] = None,
    start: Annotated[str, typer.Option(help="First day, YYYY-MM-DD.")] = "2024-01-01",
    fraud_rate: Annotated[
        float, typer.Option(help="Share of transactions that are fraud.")
    ] = 0.005,
    scenario_mix: Annotated[
        str | None,
        typer.Option(help="Fraud shares by scenario, e.g. card_testing=1,stolen_credentials=1."),
    ] = None,
    drift: Annotated[
        list[str] | None,
        typer.Option(help="Drift KIND@DAY[:key=value,...]: scenario, amount or category."),
    ] = None,
    output_format: Annotated[
        str, typer.Option("--format", help="Columns: sparkov or fdh.")
    ] = "sparkov",
    labels: Annotated[
        str,
        typer.Option(
            help="Label arrival: fixed (no label times), realistic, or KEY=VALUE,... "
            "(alert_recall, unreported_share, ...; see docs/simulator.md)."
        ),
    ] = "fixed",
) -> None:
    """Simulate card transactions with labelled fraud scenarios and drift, and write them."""
    # pandas, pyarrow and numpy are loaded only when this command runs.
    from datetime import date

    from fraudops.progress import DelayedProgress
    from fraudops.simulate import (
        SimulationConfig,
        output_kind,
        parse_drift,
        parse_label_arrival,
        parse_scenario_mix,
        simulate,
        summarise,
        to_fdh,
        write_transactions,
    )

    path = Path(out)
    try:
        output_kind(path)
        if output_format not in ("sparkov", "fdh"):
            msg = f"--format must be sparkov or fdh, not {output_format!r}"
            raise ValueError(msg)
        try:
            first_day = date.fromisoformat(start)
        except ValueError:
            msg = f"--start {start!r} is not a date (YYYY-MM-DD)"
            raise ValueError(msg) from None
        config = SimulationConfig(
            days=days,
            cards=cards,
            seed=get_settings().seed if seed is None else seed,
            merchants=merchants,
            start=first_day,
            fraud_rate=fraud_rate,
            drift=tuple(parse_drift(spec) for spec in drift or ()),
            label_arrival=parse_label_arrival(labels),
            **({"scenario_mix": parse_scenario_mix(scenario_mix)} if scenario_mix else {}),
        )
        if output_format == "fdh" and config.label_arrival is not None:
            msg = (
                "--labels other than fixed needs --format sparkov (FDH files carry no label times)"
            )
            raise ValueError(msg)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    with DelayedProgress() as progress:
        frame = simulate(config, progress=progress.part(0.0, 0.8))
        progress.update("writing", 0.8)
        summary = summarise(frame)
        if output_format == "fdh":
            frame = to_fdh(frame, origin=config.start)
        try:
            write_transactions(frame, path)
        except OSError as exc:
            typer.echo(f"error: cannot write {path}: {exc.strerror}", err=True)
            raise typer.Exit(code=1) from None
    for line in summary.lines():
        typer.echo(line)
    typer.echo(f"written       {path} ({output_format} columns)")


def feed_command(
    *,
    port: Annotated[int, typer.Option(help="TCP port to listen on.")],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    data: Annotated[
        str | None, typer.Option(help="Transactions file to serve (CSV, CSV.gz or Parquet).")
    ] = None,
    profile: Annotated[
        str, typer.Option(help="Dataset profile of --data (name or .toml); Sparkov-shaped.")
    ] = "sparkov",
    simulate: Annotated[
        bool, typer.Option("--simulate", help="Serve freshly simulated transactions.")
    ] = False,
    days: Annotated[int, typer.Option(help="With --simulate: days of transactions.")] = 30,
    cards: Annotated[int, typer.Option(help="With --simulate: number of cards.")] = 1000,
    seed: Annotated[int | None, typer.Option(help="With --simulate: seed (FRAUDOPS_SEED).")] = None,
    drift: Annotated[
        list[str] | None,
        typer.Option(help="With --simulate: drift event KIND@DAY[:key=value,...]; repeatable."),
    ] = None,
    speed: Annotated[
        float | None,
        typer.Option(help="Replay the data's timeline X times real time (60: a minute a second)."),
    ] = None,
    max_wait: Annotated[
        float, typer.Option(help="With --speed: seconds to wait for a due row before a 204.")
    ] = 5.0,
    loop: Annotated[
        bool, typer.Option("--loop", help="At the end replay the data re-stamped, not 410 Gone.")
    ] = False,
    label_delay: Annotated[
        str | None,
        typer.Option(help="Send is_fraud null; serve labels on /labels after this (12h, 7d)."),
    ] = None,
    label_times: Annotated[
        bool,
        typer.Option(
            "--label-times",
            help="Send is_fraud null; serve each label on /labels at the data's label_time.",
        ),
    ] = False,
    labels: Annotated[
        str | None,
        typer.Option(
            help="With --simulate --label-times: label arrival, realistic (default) or "
            "KEY=VALUE,... (see docs/simulator.md)."
        ),
    ] = None,
    rate_limit: Annotated[
        str | None, typer.Option(help="Per-client limit such as 5/minute; 429 above it.")
    ] = None,
    max_batch: Annotated[int, typer.Option(help="Largest ?n= a request may ask for.")] = 1000,
) -> None:
    """Serve transactions one request at a time, like the public real-time payments API."""
    # FastAPI, uvicorn and the simulator are loaded only when the feed runs.
    from fraudops.data.profiles import load_profile
    from fraudops.feed import server
    from fraudops.progress import DelayedProgress
    from fraudops.simulate import SimulationConfig, parse_drift, parse_label_arrival

    settings = get_settings()
    try:
        if not 1 <= port <= 65535:
            msg = f"--port must be between 1 and 65535 ({port})"
            raise ValueError(msg)
        if labels is not None and not (simulate and label_times):
            msg = "--labels needs --simulate and --label-times"
            raise ValueError(msg)
        arrival = parse_label_arrival(labels or "realistic") if label_times else None
        if simulate and label_times and arrival is None:
            msg = "--label-times needs label times: --labels fixed gives none"
            raise ValueError(msg)
        options = server.feed_settings(
            speed=speed,
            loop=loop,
            label_delay=label_delay,
            label_times=label_times,
            rate_limit=rate_limit,
            max_batch=max_batch,
            max_wait_s=max_wait,
        )
        with DelayedProgress() as progress:
            frame = server.load_feed_frame(
                data=None if data is None else Path(data),
                profile=load_profile(profile, user_dir=settings.user_profiles_dir),
                simulation=SimulationConfig(
                    days=days,
                    cards=cards,
                    seed=settings.seed if seed is None else seed,
                    drift=tuple(parse_drift(spec) for spec in drift or ()),
                    label_arrival=arrival,
                )
                if simulate
                else None,
                progress=progress.update,
            )
        feed_app = server.build_feed_app(frame, options)
    except ValueError as exc:
        typer.echo("error: " + "; ".join(line.strip() for line in str(exc).splitlines()), err=True)
        raise typer.Exit(code=2) from None
    server.run_feed_server(feed_app, host=host, port=port)
