"""Readable subtitle cues from timed words: what a transcript becomes before it is SRT."""

from __future__ import annotations

import textwrap
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta

import srt

# The usual limits of broadcast and streaming style guides (Netflix, BBC): a cue is at most two
# lines of about 42 characters, shown for at most about 7 s.
LINE_CHARS = 42
MAX_LINES = 2
# Chinese and Japanese characters are as wide as two Latin ones: half as many fit a line.
CJK_LINE_CHARS = LINE_CHARS // 2
MAX_CUE_MS = 7_000
# A pause this long between two words ends a cue: no text stays on screen through silence.
PAUSE_MS = 1_000
# A cue on screen for less than this is hard to read: it is held longer when the next allows.
MIN_CUE_MS = 700
# Latin, and Chinese and Japanese full stops, question and exclamation marks.
_SENTENCE_ENDS = (".", "?", "!", "…", "\u3002", "\uff1f", "\uff01")


@dataclass(frozen=True, slots=True)
class TimedWord:
    """A word as the model heard it, in the clip's time. `text` keeps the model's leading
    space where the language puts one between words (none in Chinese or Japanese)."""

    start_ms: int
    end_ms: int
    text: str


def layout_cues(segments: Iterable[Sequence[TimedWord]], clip_ms: int) -> list[srt.Subtitle]:
    """The cues of a transcript: each segment (a stretch of speech the model heard as one) is
    split into cues of whole words, a new one after each sentence, at each pause of PAUSE_MS
    and wherever a cue would grow past MAX_LINES lines of LINE_CHARS or last longer than
    MAX_CUE_MS. Times are clamped to [0, clip_ms], cues never overlap, and a short one is held
    up to MIN_CUE_MS."""
    groups = [group for segment in segments for group in _split(segment)]
    timed = [
        (max(0, group[0].start_ms), min(clip_ms, group[-1].end_ms), _text(group))
        for group in groups
    ]
    timed = [(start, end, text) for start, end, text in timed if text and start < clip_ms]
    cues: list[srt.Subtitle] = []
    for index, (start, end, text) in enumerate(timed):
        next_start = timed[index + 1][0] if index + 1 < len(timed) else clip_ms
        start = max(start, _ms(cues[-1].end) if cues else 0)
        end = max(end, min(start + MIN_CUE_MS, max(next_start, start + 1), clip_ms))
        if end <= start:  # no time left after its neighbour (which reaches the clip's end)
            if not cues:
                continue
            previous = cues[-1]
            merged = _lines(f"{previous.content} {text}")
            if len(merged) <= MAX_LINES:
                previous.content = "\n".join(merged)
                continue
            # Too long to join it: the neighbour's time is shared between the two.
            start, end = (_ms(previous.start) + _ms(previous.end)) // 2, _ms(previous.end)
            previous.end = timedelta(milliseconds=start)
        cues.append(
            srt.Subtitle(
                index=len(cues) + 1,
                start=timedelta(milliseconds=start),
                end=timedelta(milliseconds=end),
                content="\n".join(_lines(text)),
            )
        )
    return cues


def _ms(at: timedelta) -> int:
    return at // timedelta(milliseconds=1)


def _split(words: Sequence[TimedWord]) -> list[list[TimedWord]]:
    groups: list[list[TimedWord]] = []
    current: list[TimedWord] = []
    for word in words:
        if current and (
            len(_lines(_text([*current, word]))) > MAX_LINES
            or word.end_ms - current[0].start_ms > MAX_CUE_MS
            or word.start_ms - current[-1].end_ms >= PAUSE_MS
        ):
            groups.append(current)
            current = []
        current.append(word)
        if word.text.strip().endswith(_SENTENCE_ENDS):
            groups.append(current)
            current = []
    if current:
        groups.append(current)
    return groups


def _text(words: Sequence[TimedWord]) -> str:
    return "".join(word.text for word in words).strip()


def _lines(text: str) -> list[str]:
    if " " not in text and _written_without_spaces(text):
        # Chinese or Japanese: wrapped by characters.
        return [text[i : i + CJK_LINE_CHARS] for i in range(0, len(text), CJK_LINE_CHARS)]
    # A word longer than a line stays whole on a line of its own rather than being broken.
    return textwrap.wrap(text, LINE_CHARS, break_long_words=False, break_on_hyphens=False)


def _written_without_spaces(text: str) -> bool:
    """Mostly wide characters (Chinese, Japanese): a long German word is not."""
    wide = sum(unicodedata.east_asian_width(char) in ("W", "F") for char in text)
    return wide * 2 > len(text)
