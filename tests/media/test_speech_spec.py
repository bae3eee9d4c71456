"""The speech model ASR_MODEL names, known without loading it: its languages (so the API can
refuse one at once), its name as a job records it, the language a `subtitleLang` is
transcribed in, and where the packaged model is."""

from __future__ import annotations

from pathlib import Path

import pytest

from clipper.media.errors import SpeechLanguageError
from clipper.media.speech import (
    PACKAGED_MODEL,
    WHISPER_LANGUAGES,
    SpeechModelSpec,
    whisper_language,
)

ENGLISH = frozenset({"en"})


def _model_folder(folder: Path, vocabulary_lines: int) -> Path:
    folder.mkdir(parents=True)
    (folder / "model.bin").write_bytes(b"")
    tokens = "".join(f"token{index}\n" for index in range(vocabulary_lines))
    (folder / "vocabulary.txt").write_text(tokens, encoding="utf-8")
    return folder


@pytest.mark.parametrize(
    ("model", "languages"),
    [
        ("tiny.en", ENGLISH),
        ("base.en", ENGLISH),
        ("small", WHISPER_LANGUAGES),
        ("large-v2", WHISPER_LANGUAGES),
        ("large-v3", WHISPER_LANGUAGES | {"yue"}),  # Cantonese came with v3
        ("turbo", WHISPER_LANGUAGES | {"yue"}),
        ("distil-large-v3", ENGLISH),
        ("Systran/faster-distil-whisper-large-v3", ENGLISH),  # what distil-large-v3 fetches
        ("Systran/faster-whisper-small", WHISPER_LANGUAGES),
        ("Systran/faster-whisper-small.en", ENGLISH),
    ],
)
def test_a_models_languages_are_known_by_its_name(model: str, languages: frozenset[str]) -> None:
    assert SpeechModelSpec(model).languages() == languages


def test_the_default_is_the_packaged_english_model() -> None:
    spec = SpeechModelSpec()
    assert (spec.model, spec.device, spec.compute_type) == (PACKAGED_MODEL, "cpu", "int8")
    assert spec.languages() == ENGLISH


def test_a_folders_languages_are_known_by_its_vocabulary(tmp_path: Path) -> None:
    english = _model_folder(tmp_path / "english", 51864)  # Whisper's English-only vocabulary
    multilingual = _model_folder(tmp_path / "multilingual", 51865)
    v3 = _model_folder(tmp_path / "distil-named-but-v3", 51866)  # a folder's vocabulary rules
    assert SpeechModelSpec(str(english)).languages() == ENGLISH
    assert SpeechModelSpec(str(multilingual)).languages() == WHISPER_LANGUAGES
    assert SpeechModelSpec(str(v3)).languages() == WHISPER_LANGUAGES | {"yue"}


def test_whispers_languages_are_faster_whispers() -> None:
    # Kept in Clipper so the API need not import faster-whisper to refuse a language.
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    assert set(_LANGUAGE_CODES) == WHISPER_LANGUAGES | {"yue"}


def test_a_folder_is_named_by_its_own_name_alone(tmp_path: Path) -> None:
    folder = _model_folder(tmp_path / "models" / "whisper-small-ct2", 51865)
    spec = SpeechModelSpec(str(folder))
    assert spec.name == "whisper-small-ct2"
    assert "/" not in spec.name  # a job's JSON never shows the server's folders
    assert SpeechModelSpec(f"{folder}/").name == "whisper-small-ct2"
    assert SpeechModelSpec("Systran/faster-whisper-small").name == "Systran/faster-whisper-small"
    assert SpeechModelSpec().name == "tiny.en"


@pytest.mark.parametrize("requested", [None, "auto", "en", "EN", "en-GB", "en-US", "eng"])
def test_the_english_model_transcribes_english(requested: str | None) -> None:
    assert whisper_language(requested, SpeechModelSpec()) == "en"


def test_another_language_is_refused_by_the_english_model_naming_the_setting() -> None:
    with pytest.raises(SpeechLanguageError) as refused:
        whisper_language("de", SpeechModelSpec())
    message = str(refused.value)
    assert "ASR_MODEL" in message  # what the operator would change
    assert "not de" in message  # which language it cannot do
    assert "/" not in message  # no server path
    assert refused.value.code == "SUBTITLE_LANG_UNSUPPORTED"


def test_a_multilingual_model_detects_or_takes_any_of_whispers_languages() -> None:
    small = SpeechModelSpec("small")
    assert whisper_language("auto", small) is None  # detected by the model
    assert whisper_language(None, small) is None
    assert whisper_language("de", small) == "de"
    assert whisper_language("pt-BR", small) == "pt"
    assert whisper_language("ja", small) == "ja"
    # ISO 639-2 tags name the same languages; Whisper spells two of its own way.
    assert [whisper_language(tag, small) for tag in ("ger", "spa", "por")] == ["de", "es", "pt"]
    assert [whisper_language(tag, small) for tag in ("jv", "nb", "fil")] == ["jw", "no", "tl"]
    assert whisper_language("cmn", small) == "zh"  # Mandarin, a member of Chinese
    with pytest.raises(SpeechLanguageError, match="xx"):
        whisper_language("xx", small)  # not one Whisper was trained on
    with pytest.raises(SpeechLanguageError, match="yue"):
        whisper_language("yue", small)  # Cantonese needs large-v3 or turbo
    assert whisper_language("yue", SpeechModelSpec("large-v3")) == "yue"


def test_the_packaged_model_is_a_folder_with_its_weights() -> None:
    location = Path(SpeechModelSpec().location())
    assert location.is_dir()
    assert (location / "model.bin").is_file()


def test_another_model_is_loaded_from_where_the_setting_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert SpeechModelSpec("small").location() == "small"
    folder = str(_model_folder(tmp_path / "model", 51864))
    assert SpeechModelSpec(folder).location() == folder
    # A folder under the home directory, as an operator may write it: expanded.
    monkeypatch.setenv("HOME", str(tmp_path))
    assert SpeechModelSpec("~/model").location() == folder
    assert SpeechModelSpec("~/model").languages() == ENGLISH
