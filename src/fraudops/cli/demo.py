"""`fraudops demo`: the closed loop end to end on embedded defaults (fraudops.demo)."""

from typing import Annotated

import typer

from fraudops.cli.options import live_status, user_errors
from fraudops.config import get_settings


def demo_command(
    *,
    cards: Annotated[int, typer.Option(help="Number of cards simulated.")] = 1_500,
    seconds_per_day: Annotated[
        float, typer.Option(help="Wall-clock seconds per simulated day of the live stream.")
    ] = 8.0,
    trials: Annotated[int, typer.Option(help="Tuning trials of each training.")] = 3,
    seed: Annotated[int, typer.Option(help="Seed of the simulation and the models.")] = 7,
) -> None:
    """Run the closed loop end to end on embedded defaults, in accelerated time (a few minutes).

    Simulates eight weeks with a fraud pattern that starts mid-stream, trains the champion,
    streams through the live feed, service and ingester, and lets the loop detect the decay,
    retrain, compare, promote and hot-swap. Ends with a summary and a plot.
    """
    from rich.console import Console

    from fraudops.demo import DemoPlan, render_demo, run_demo
    from fraudops.registry import MlflowRegistry

    settings = get_settings()
    console = Console()
    with user_errors():
        plan = DemoPlan(cards=cards, seconds_per_day=seconds_per_day, trials=trials, seed=seed)
    with live_status(console) as watch:
        result = run_demo(
            plan,
            settings=settings,
            registry=MlflowRegistry(settings),
            status=lambda line: console.print(f"[bold]>[/bold] {line}"),
            watch=watch,
        )
    console.print(render_demo(result, settings))
    if result.lost or not result.promotions:
        raise typer.Exit(1)
