"""Keys, tokens and names are matched whole: `$` in Python also matches before a trailing
newline, so "up_<hex>\n" would pass for an upload key and name the same upload under another
spelling (retention then deletes an upload a queued job still needs)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from clipper.api_keys import make_key, parse_token
from clipper.queue import QueueConfig
from clipper.storage import LocalStorage, source_key, subtitles_key

UPLOAD_KEY = "up_" + "ab" * 16


@pytest.mark.parametrize("suffix", ["\n", "\r\n", " ", "0"])
@pytest.mark.parametrize("to_key", [source_key, subtitles_key])
def test_an_upload_key_with_anything_after_it_is_refused(
    suffix: str, to_key: Callable[[str], str]
) -> None:
    assert to_key(UPLOAD_KEY).startswith("sources/")
    with pytest.raises(ValueError, match="is not an upload key"):
        to_key(UPLOAD_KEY + suffix)


async def test_retention_lists_no_upload_folder_with_a_newline(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    real = storage.path(source_key(UPLOAD_KEY)).parent
    real.mkdir(parents=True)
    (real.parent / (real.name + "\n")).mkdir()
    assert await storage.uploads_older_than(-60) == [UPLOAD_KEY]


def test_a_token_with_a_trailing_newline_is_not_a_token() -> None:
    token = make_key().token
    assert parse_token(token) is not None
    assert parse_token(token + "\n") is None
    assert parse_token(token[:-1] + "\u0663") is None  # an Arabic-Indic digit


@pytest.mark.parametrize("schema", ["clipper_queue\n", "clipper_queue\r\n", "\uff51ueue"])
def test_a_queue_schema_must_be_a_whole_identifier(schema: str) -> None:
    with pytest.raises(ValueError, match="lower-case SQL identifier"):
        QueueConfig(queue="clips", schema=schema)
