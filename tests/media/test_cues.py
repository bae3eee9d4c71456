"""Cues from timed words: split after sentences, never longer than MAX_CUE_MS nor than
MAX_LINES lines of LINE_CHARS, inside the clip, never overlapping, short ones held longer."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import srt

from clipper.media.cues import (
    LINE_CHARS,
    MAX_CUE_MS,
    MAX_LINES,
    MIN_CUE_MS,
    PAUSE_MS,
    TimedWord,
    layout_cues,
)


def _ms(delta: timedelta) -> int:
    return delta // timedelta(milliseconds=1)


def _spans(cues: Sequence[srt.Subtitle]) -> list[tuple[int, int, str]]:
    return [(_ms(cue.start), _ms(cue.end), cue.content) for cue in cues]


def _words(texts: Sequence[str], *, every_ms: int, lasting_ms: int) -> list[TimedWord]:
    """Words as Whisper gives them (a leading space each), one every `every_ms`."""
    return [
        TimedWord(index * every_ms, index * every_ms + lasting_ms, f" {text}")
        for index, text in enumerate(texts)
    ]


def _check_readable(cues: Sequence[srt.Subtitle], clip_ms: int) -> None:
    """What holds of every layout: numbered from 1, inside the clip, in order, no overlap."""
    assert [cue.index for cue in cues] == list(range(1, len(cues) + 1))
    previous_end = 0
    for cue in cues:
        start, end = _ms(cue.start), _ms(cue.end)
        assert previous_end <= start < end <= clip_ms, _spans(cues)
        previous_end = end


def test_no_words_make_no_cues() -> None:
    assert layout_cues([], 10_000) == []
    assert layout_cues([[], []], 10_000) == []
    assert layout_cues([[TimedWord(0, 500, " ")]], 10_000) == []  # nothing to read


def test_words_are_joined_by_their_own_leading_spaces() -> None:
    words = [TimedWord(0, 400, " Hello"), TimedWord(400, 900, " world"), TimedWord(900, 1200, ",")]
    words.append(TimedWord(1300, 1800, " again"))
    [cue] = layout_cues([words], 10_000)
    assert cue.content == "Hello world, again"  # no leading space, none before the comma
    assert (_ms(cue.start), _ms(cue.end)) == (0, 1800)


def test_a_new_cue_starts_after_each_sentence() -> None:
    words = [
        TimedWord(0, 400, " It"),
        TimedWord(400, 900, " works."),
        TimedWord(1000, 1400, " Does"),
        TimedWord(1400, 1800, " it?"),
        TimedWord(2000, 2500, " Yes!"),
        TimedWord(2600, 3000, " Well…"),
        TimedWord(3100, 3600, " fine"),
    ]
    cues = layout_cues([words], 10_000)
    assert [cue.content for cue in cues] == ["It works.", "Does it?", "Yes!", "Well…", "fine"]
    _check_readable(cues, 10_000)


def test_each_segment_starts_its_own_cue() -> None:
    first = [TimedWord(0, 400, " One"), TimedWord(400, 900, " two")]
    second = [TimedWord(1000, 1400, " three"), TimedWord(1400, 1900, " four")]
    cues = layout_cues([first, second], 10_000)
    assert [cue.content for cue in cues] == ["One two", "three four"]


def test_a_cue_never_lasts_longer_than_the_maximum() -> None:
    # A slow speaker: a word a second, no sentence end for 20 s.
    words = _words([f"w{index}" for index in range(20)], every_ms=1000, lasting_ms=500)
    cues = layout_cues([words], 30_000)
    assert len(cues) > 1
    assert all(_ms(cue.end - cue.start) <= MAX_CUE_MS for cue in cues), _spans(cues)
    # Every word is kept, once and in order.
    assert " ".join(cue.content for cue in cues).split() == [f"w{i}" for i in range(20)]
    _check_readable(cues, 30_000)


def test_a_cue_never_has_more_than_two_lines_of_42_characters() -> None:
    # A fast speaker: ten words a second, sixty words in one segment with no full stop.
    texts = [f"word{index:02d}" for index in range(60)]
    cues = layout_cues([_words(texts, every_ms=100, lasting_ms=90)], 10_000)
    assert len(cues) > 1
    for cue in cues:
        lines = cue.content.split("\n")
        assert len(lines) <= MAX_LINES, cue.content
        assert all(len(line) <= LINE_CHARS for line in lines), cue.content
    assert " ".join(cue.content for cue in cues).split() == texts
    _check_readable(cues, 10_000)


def test_a_word_longer_than_a_line_stays_whole() -> None:
    long = "x" * (LINE_CHARS + 18)
    words = [TimedWord(0, 1000, f" {long}"), TimedWord(1000, 1500, " end")]
    cues = layout_cues([words], 10_000)
    assert [line for cue in cues for line in cue.content.split("\n")] == [long, "end"]


def test_times_are_clamped_to_the_clip() -> None:
    words = [
        TimedWord(-200, 600, " Early."),  # heard a little before the clip's first frame
        TimedWord(2000, 3500, " Late"),  # runs past the clip's end
        TimedWord(3200, 3400, " gone."),  # starts after it: not shown
    ]
    cues = layout_cues([words[:1], words[1:2], words[2:]], 3000)
    assert _spans(cues) == [(0, 700, "Early."), (2000, 3000, "Late")]
    _check_readable(cues, 3000)


def test_cues_never_overlap_even_when_the_words_do() -> None:
    first = [TimedWord(0, 1500, " Overlapping")]
    second = [TimedWord(1000, 2000, " words")]
    cues = layout_cues([first, second], 5000)
    # The second waits for the first, and is held to the minimum from there.
    assert _spans(cues) == [(0, 1500, "Overlapping"), (1500, 1500 + MIN_CUE_MS, "words")]
    _check_readable(cues, 5000)


def test_a_short_cue_is_held_to_the_minimum_when_the_next_allows() -> None:
    cues = layout_cues(
        [
            [TimedWord(0, 100, " Hi.")],  # alone: held to MIN_CUE_MS
            [TimedWord(2000, 2100, " A.")],  # the next starts 300 ms after it: held to there
            [TimedWord(2300, 2400, " B.")],
            [TimedWord(4900, 4950, " C.")],  # the clip ends first: held to its end
        ],
        5000,
    )
    assert _spans(cues) == [
        (0, MIN_CUE_MS, "Hi."),
        (2000, 2300, "A."),
        (2300, 2300 + MIN_CUE_MS, "B."),
        (4900, 5000, "C."),
    ]
    _check_readable(cues, 5000)


def test_chinese_and_japanese_words_join_without_spaces() -> None:
    words = [
        TimedWord(0, 300, "你"),
        TimedWord(300, 600, "好"),
        TimedWord(600, 800, "。"),  # a Chinese full stop ends the sentence
        TimedWord(1000, 1300, "再"),
        TimedWord(1300, 1600, "见"),
        TimedWord(1600, 1700, "\uff01"),  # a full-width exclamation mark
        TimedWord(2000, 2400, "はい"),
        TimedWord(2400, 2800, "\uff1f"),  # a full-width question mark
    ]
    cues = layout_cues([words], 10_000)
    assert [cue.content for cue in cues] == ["你好。", "再见\uff01", "はい\uff1f"]
    _check_readable(cues, 10_000)


def test_a_long_run_of_chinese_is_kept_to_two_lines() -> None:
    words = [TimedWord(index * 50, index * 50 + 50, "字") for index in range(100)]
    cues = layout_cues([words], 10_000)
    for cue in cues:
        lines = cue.content.split("\n")
        assert len(lines) <= MAX_LINES
        assert all(len(line) <= LINE_CHARS for line in lines), cue.content


def test_a_pause_ends_the_cue_so_no_text_stays_on_through_silence() -> None:
    # Whisper often joins two sentences with a comma: the pause between them splits them.
    words = [
        TimedWord(0, 300, " We"),
        TimedWord(300, 600, " will"),
        TimedWord(600, 1400, " meet,"),
        TimedWord(1400 + PAUSE_MS, 1700 + PAUSE_MS, " the"),
        TimedWord(1700 + PAUSE_MS, 2200 + PAUSE_MS, " weather."),
    ]
    cues = layout_cues([words], 10_000)
    assert [(cue.content, cue.end) for cue in cues] == [
        ("We will meet,", timedelta(milliseconds=1400)),
        ("the weather.", timedelta(milliseconds=2200 + PAUSE_MS)),
    ]
    # Just short of the pause, they stay one cue.
    words[3:] = [
        TimedWord(1399 + PAUSE_MS, 1700 + PAUSE_MS, " the"),
        TimedWord(1700 + PAUSE_MS, 2200 + PAUSE_MS, " weather."),
    ]
    assert len(layout_cues([words], 10_000)) == 1
