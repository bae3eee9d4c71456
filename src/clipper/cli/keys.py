"""`clipper keys`: API keys for ENABLE_API_KEYS=true."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ..api_keys import NewKey
from ..db.session import create_engine, session_factory
from ..services.keys import all_keys, create_key, revoke_key
from ._runtime import database_url_or_exit, run, settings_or_exit

app = typer.Typer(
    help="API keys: ck_<id>_<secret> tokens, sent as `Authorization: Bearer …` or "
    "`X-API-Key: …` when ENABLE_API_KEYS=true. Only a scrypt hash of each secret is stored.",
    no_args_is_help=True,
)


@app.command()
def create(
    name: Annotated[str, typer.Option(help="Who or what the key is for.")],
    admin: Annotated[bool, typer.Option("--admin", help="May use /api/dlq.")] = False,
) -> None:
    """Make a key and print its token ONCE: it cannot be shown again."""
    settings = settings_or_exit()
    url = database_url_or_exit(settings)

    async def main() -> NewKey:
        engine = create_engine(url, pool_size=1)
        try:
            async with session_factory(engine).begin() as session:
                return await create_key(session, name, admin)
        finally:
            await engine.dispose()

    key = run(main())
    typer.echo(key.token)
    typer.echo(f"key {key.id} created for {name!r}; store the token now.", err=True)


@app.command("list")
def list_keys() -> None:
    """Keys by id, name, role and whether they are revoked (never the secrets)."""
    settings = settings_or_exit()
    url = database_url_or_exit(settings)

    async def main() -> Table:
        engine = create_engine(url, pool_size=1)
        try:
            async with session_factory(engine)() as session:
                keys = await all_keys(session)
        finally:
            await engine.dispose()
        table = Table("id", "name", "role", "created", "revoked")
        for key in keys:
            table.add_row(
                key.id,
                key.name,
                "admin" if key.is_admin else "client",
                key.created_at.isoformat(timespec="seconds"),
                key.revoked_at.isoformat(timespec="seconds") if key.revoked_at else "",
            )
        return table

    Console().print(run(main()))


@app.command()
def revoke(
    key_id: Annotated[str, typer.Argument(help="The id shown by `clipper keys list`.")],
) -> None:
    """Revoke a key: requests with it get 401 (within 30 s, the API's verification cache)."""
    settings = settings_or_exit()
    url = database_url_or_exit(settings)

    async def main() -> bool:
        engine = create_engine(url, pool_size=1)
        try:
            async with session_factory(engine).begin() as session:
                return await revoke_key(session, key_id)
        finally:
            await engine.dispose()

    if not run(main()):
        raise typer.BadParameter(f"no active key {key_id!r}")
    typer.echo(f"key {key_id} revoked")
