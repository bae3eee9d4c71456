"""Language tags, compared by the language they name."""

from __future__ import annotations

import langcodes


def primary_language(tag: str) -> str | None:
    """The language a tag names, as its shortest code: `en` for `en-GB`, `eng` and `en`; `de`
    for `ger` and `deu`; `zh` for `cmn` (a macrolanguage's member is the macrolanguage); None
    for `und` (undetermined) and for what is no tag at all."""
    try:
        language: str | None = langcodes.Language.get(tag).prefer_macrolanguage().language
    except (langcodes.tag_parser.LanguageTagError, ValueError):
        return None
    return language
