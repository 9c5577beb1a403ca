"""`fraudops keys rotate-card-hash` (fraudops.data.personal)."""

import os
from pathlib import Path
from typing import Annotated

import typer

from fraudops.cli.options import fail, user_errors
from fraudops.config import get_settings

keys_app = typer.Typer(help="Rotate the key that stands for card numbers in the warehouse.")


@keys_app.command("rotate-card-hash")
def rotate_card_hash_command(
    *,
    key_out: Annotated[
        Path | None,
        typer.Option(
            help="With FRAUDOPS_CARD_HASH_KEY set: the file the new key chain is written to "
            "(readable by its owner only), for you to put in that variable."
        ),
    ] = None,
) -> None:
    """Add a new key to the card-hash chain and rehash every stored card id with it.

    Stop the scoring services first. The online feature state is dropped (services rebuild
    it on start). Keys are never printed.
    """
    import secrets

    from fraudops.data.personal import KEY_FILE
    from fraudops.storage.warehouse import Warehouse

    settings = get_settings()
    if settings.card_hash_key is not None and key_out is None:
        fail("FRAUDOPS_CARD_HASH_KEY is set: say where the new key chain goes with --key-out")
    warehouse = Warehouse.from_settings(settings)
    with user_errors():
        warehouse.migrate()
        rotated = warehouse.rotate_card_key(secrets.token_bytes(32))
    target = key_out if key_out is not None else settings.home / KEY_FILE
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(target, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as out:
        out.write("\n".join(rotated.card_keys_text().split(",")) + "\n")
    if settings.redis_url:
        from fraudops.features.redis_store import RedisStateStore

        store = RedisStateStore.from_url(settings.redis_url, prefix=settings.redis_prefix)
        store.clear()
        store.close()
        typer.echo("online feature state in Redis dropped: the services rebuild it on start")
    typer.echo(f"card ids rehashed with a new key; the key chain is in {target}")
    if key_out is not None:
        typer.echo("set FRAUDOPS_CARD_HASH_KEY to its lines joined by commas, then start")
