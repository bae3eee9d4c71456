"""`clipper keys`: API keys for ENABLE_API_KEYS=true."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from ._runtime import command_engine, database_url_or_exit, fail, run, settings_or_exit

if TYPE_CHECKING:
    from ..api_keys import NewKey
    from ..services.keys import KeySettings
    from ..settings import Settings

app = typer.Typer(
    help="API keys: ck_<id>_<secret> tokens, sent as `Authorization: Bearer …` or "
    "`X-API-Key: …` when ENABLE_API_KEYS=true. Only a scrypt hash of each secret is stored.",
    no_args_is_help=True,
)


_RATE = re.compile(r"([0-9]{1,7})/(s|min|h)\Z")
_PER_MINUTE = {"s": 60.0, "min": 1.0, "h": 1 / 60}

RateOption = Annotated[
    str | None,
    typer.Option(
        "--rate",
        help="Uploads and jobs it may create, e.g. 60/min, 2/s or 600/h "
        "(default KEY_RATE_PER_MINUTE).",
    ),
]
MaxActiveOption = Annotated[
    int | None,
    typer.Option(
        "--max-active",
        min=1,
        help="Queued + processing jobs at once (default KEY_MAX_ACTIVE_JOBS).",
    ),
]
MaxUploadOption = Annotated[
    float | None,
    typer.Option(
        "--max-upload-mb", min=0.001, help="MB of stored uploads (default KEY_MAX_UPLOAD_MB)."
    ),
]


CallbackOption = Annotated[
    str | None,
    typer.Option(
        "--callback-url",
        help="Where the key's jobs that name no callbackUrl report when they end (a signed "
        "POST); it passes the SSRF guard.",
    ),
]


def _settings(
    rate: str | None,
    max_active: int | None,
    max_upload_mb: float | None,
    callback_url: str | None,
) -> KeySettings:
    from ..services.keys import KeySettings

    per_minute = None
    if rate is not None:
        match = _RATE.match(rate)
        if match is None:
            raise typer.BadParameter(
                "write it as N/s, N/min or N/h, e.g. 60/min", param_hint="--rate"
            )
        exact = int(match.group(1)) * _PER_MINUTE[match.group(2)]
        if exact < 1 or exact != int(exact):
            raise typer.BadParameter(
                "it must come to a whole number per minute", param_hint="--rate"
            )
        per_minute = int(exact)
    upload_bytes = None if max_upload_mb is None else int(max_upload_mb * 2**20)
    return KeySettings(per_minute, max_active, upload_bytes, callback_url)


async def _check_callback(settings: Settings, callback_url: str | None) -> None:
    if callback_url is None:
        return
    from ..services.sources import url_refusal

    refusal = await url_refusal(callback_url, settings.allowed_hosts)
    if refusal is not None:
        fail(f"--callback-url: {refusal}")


def _signing_key(settings: Settings) -> bytes | None:
    """SIGNING_KEY's bytes; None when unset (a secret derived from a key of this process
    alone would be useless to every receiver)."""
    key = settings.signing_key
    return None if key is None else key.get_secret_value().encode()


@app.command()
def create(
    name: Annotated[str, typer.Option(help="Who or what the key is for.")],
    admin: Annotated[
        bool, typer.Option("--admin", help="Reaches every tenant, unlimited; may use /api/dlq.")
    ] = False,
    rate: RateOption = None,
    max_active: MaxActiveOption = None,
    max_upload_mb: MaxUploadOption = None,
    callback_url: CallbackOption = None,
) -> None:
    """Make a key and print its token ONCE: it cannot be shown again. Its uploads and jobs are
    its own (its tenant); limits left out follow the KEY_* settings. With SIGNING_KEY set,
    also prints the key's webhook secret (whsec_…), which signs its jobs' webhooks.

    Example: clipper keys create --name acme --rate 60/min --max-active 10 --max-upload-mb 2000
    """
    from ..db.session import session_factory
    from ..services.keys import create_key, key_webhook_secret

    chosen = _settings(rate, max_active, max_upload_mb, callback_url)
    settings = settings_or_exit()
    url = database_url_or_exit(settings)

    async def main() -> tuple[NewKey, str | None]:
        await _check_callback(settings, callback_url)
        engine = command_engine(settings, url, 1)
        signing_key = _signing_key(settings)
        try:
            async with session_factory(engine).begin() as session:
                key = await create_key(session, name, admin, chosen)
                secret = None
                if signing_key is not None:
                    secret = await key_webhook_secret(session, signing_key, key.id, rotate=False)
                return key, secret
        finally:
            await engine.dispose()

    key, secret = run(main())
    typer.echo(key.token)
    typer.echo(f"key {key.id} created for {name!r}; store the token now.", err=True)
    if secret is None:
        typer.echo("set SIGNING_KEY to sign its webhooks (clipper keys webhook-secret)", err=True)
    else:
        typer.echo(f"webhook secret: {secret}", err=True)


@app.command()
def update(
    key_id: Annotated[str, typer.Argument(help="The id shown by `clipper keys list`.")],
    rate: RateOption = None,
    max_active: MaxActiveOption = None,
    max_upload_mb: MaxUploadOption = None,
    callback_url: CallbackOption = None,
) -> None:
    """Change a key's limits or default callback URL; they apply to its next request in every
    API process.

    Example: clipper keys update 3f2a9c1d0b4e --max-active 50
    """
    from ..db.session import session_factory
    from ..services.keys import update_key

    limits = _settings(rate, max_active, max_upload_mb, callback_url)
    if not limits.values():
        raise typer.BadParameter(
            "give at least one of --rate, --max-active, --max-upload-mb, --callback-url"
        )
    settings = settings_or_exit()
    url = database_url_or_exit(settings)

    async def main() -> bool:
        await _check_callback(settings, callback_url)
        engine = command_engine(settings, url, 1)
        try:
            async with session_factory(engine).begin() as session:
                return await update_key(session, key_id, limits)
        finally:
            await engine.dispose()

    if not run(main()):
        raise typer.BadParameter(f"no active key {key_id!r}")
    typer.echo(f"key {key_id} updated")


@app.command("webhook-secret")
def webhook_secret(
    key_id: Annotated[
        str, typer.Argument(help="The key's id, or `local` for the service with keys off.")
    ],
    rotate: Annotated[
        bool, typer.Option("--rotate", help="Move to a new secret first (receivers must follow).")
    ] = False,
) -> None:
    """Print the secret (whsec_…) that signs the key's webhooks, derived from SIGNING_KEY (it is
    never stored). Verify with it as Standard Webhooks says; see docs/api.md, "Webhooks"."""
    from ..db.session import session_factory
    from ..services.keys import key_webhook_secret

    settings = settings_or_exit()
    url = database_url_or_exit(settings)
    signing_key = _signing_key(settings)
    if signing_key is None:
        fail("SIGNING_KEY is unset: webhooks are signed with it, set it in every process")

    async def main() -> str | None:
        engine = command_engine(settings, url, 1)
        try:
            async with session_factory(engine).begin() as session:
                return await key_webhook_secret(session, signing_key, key_id, rotate)
        finally:
            await engine.dispose()

    secret = run(main())
    if secret is None:
        fail(f"no active key {key_id!r}" + (" (local cannot rotate)" if rotate else ""))
    typer.echo(secret)


@app.command("list")
def list_keys() -> None:
    """Keys by id, name, role and whether they are revoked (never the secrets)."""
    from ..db.session import session_factory
    from ..services.keys import all_keys

    settings = settings_or_exit()
    url = database_url_or_exit(settings)

    async def main() -> Table:
        engine = command_engine(settings, url, 1)
        try:
            async with session_factory(engine)() as session:
                keys = await all_keys(session)
        finally:
            await engine.dispose()
        table = Table("id", "name", "role", "rate/min", "active", "upload MB", "created", "revoked")
        for key in keys:
            table.add_row(
                key.id,
                key.name,
                "admin" if key.is_admin else "client",
                _or_default(key.rate_per_minute),
                _or_default(key.max_active_jobs),
                _or_default(None if key.max_upload_bytes is None else key.max_upload_bytes / 2**20),
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
    from ..db.session import session_factory
    from ..services.keys import revoke_key

    settings = settings_or_exit()
    url = database_url_or_exit(settings)

    async def main() -> bool:
        engine = command_engine(settings, url, 1)
        try:
            async with session_factory(engine).begin() as session:
                return await revoke_key(session, key_id)
        finally:
            await engine.dispose()

    if not run(main()):
        raise typer.BadParameter(f"no active key {key_id!r}")
    typer.echo(f"key {key_id} revoked")


def _or_default(value: float | None) -> str:
    return "default" if value is None else f"{value:g}"
