"""Speech for the ASR tests: sentences spoken by espeak-ng, muxed under a black video at known
offsets, and the checks the tests share (word recall, the brightness of burned-in text)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import wave
from dataclasses import dataclass
from pathlib import Path

import pytest

from clipper.media.ffmpeg import ffmpeg_path
from clipper.media.sample import KEYFRAMES_EVERY_2S

# Sentences espeak-ng says and tiny.en hears well (all but a word or so of each).
FIRST_SENTENCE = "We will meet again at the station tomorrow morning."
SECOND_SENTENCE = "The weather today is sunny with a light breeze from the west."
# About 65 s of speech, for a transcription that takes a while. No sentence is repeated: a
# repetitive transcript makes Whisper decode each window again and again (its fallback).
PARAGRAPH = " ".join(
    [
        FIRST_SENTENCE,
        SECOND_SENTENCE,
        "Thank you very much for watching this video.",
        "Good morning, everyone. Welcome to the weekly team meeting.",
        "Today we are going to talk about the history of the city.",
        "The old bridge was built more than two hundred years ago.",
        "Children played in the park until the sun went down.",
        "My brother bought a new bicycle last summer.",
        "The library opens at nine and closes at six.",
        "Please remember to turn off the lights when you leave.",
        "The train to the airport leaves every twenty minutes.",
        "She planted tomatoes and beans in her small garden.",
        "The museum has a large collection of ancient coins.",
        "We need to buy bread, cheese, and fresh fruit for the picnic.",
        "The river flows slowly through the green valley.",
        "After dinner, we usually go for a walk by the lake.",
        "The new restaurant on the corner serves excellent soup.",
        "He forgot his umbrella and got wet in the rain.",
        "The concert starts at eight o'clock on Friday evening.",
    ]
)
WIDTH, HEIGHT = 320, 240


@dataclass(frozen=True, slots=True)
class Spoken:
    """A sentence in a source: where it starts (ms) and how long espeak-ng took to say it
    (into `wav`)."""

    text: str
    wav: Path
    at_ms: int
    lasts_ms: int

    @property
    def end_ms(self) -> int:
        return self.at_ms + self.lasts_ms


@dataclass(frozen=True, slots=True)
class SpeechVideo:
    path: Path
    seconds: int
    spoken: tuple[Spoken, ...]


def espeak() -> str:
    """espeak-ng's path; skipped where it is not installed, but failed in CI (.ci/run
    installs it): the ASR tests never skip there."""
    found = shutil.which("espeak-ng")
    if found is None:
        missing = "espeak-ng is not installed (apt-get install espeak-ng)"
        if os.environ.get("CI"):
            pytest.fail(f"{missing}, and CI runs every test")
        pytest.skip(missing)
    return found


def speak(text: str, wav: Path) -> int:
    """`text` spoken into `wav`; how long it lasts, in ms."""
    subprocess.run([espeak(), "-v", "en-us", "-s", "150", "-w", str(wav), text], check=True)
    with wave.open(str(wav)) as read:
        frames: int = read.getnframes()
        rate: int = read.getframerate()
    return frames * 1000 // rate


def make_speech_video(
    folder: Path, sentences: dict[str, int], seconds: int | None = None
) -> SpeechVideo:
    """A black `seconds`-long video (a keyframe every 2 s) whose audio is silence but for
    each sentence, starting at its offset (ms); None: until 2 s after the last one ends."""
    spoken: list[Spoken] = []
    inputs: list[str] = []
    delays: list[str] = []
    for index, (text, at_ms) in enumerate(sentences.items()):
        wav = folder / f"sentence-{index}.wav"
        spoken.append(Spoken(text, wav, at_ms, speak(text, wav)))
        inputs += ["-i", str(wav)]
        delays.append(f"[{index + 1}:a]adelay={at_ms}:all=1[s{index}]")
    if seconds is None:
        seconds = max(sentence.end_ms for sentence in spoken) // 1000 + 2
    mixed = "".join(f"[s{index}]" for index in range(len(sentences)))
    mix = (
        f"{';'.join(delays)};{mixed}amix=inputs={len(sentences)}:normalize=0:duration=longest,"
        f"apad=whole_dur={seconds}[speech]"
    )
    path = folder / "speech.mp4"
    subprocess.run(
        [
            ffmpeg_path(),
            *("-y", "-hide_banner", "-loglevel", "error"),
            *("-f", "lavfi", "-i", f"color=black:size={WIDTH}x{HEIGHT}:rate=25:duration={seconds}"),
            *inputs,
            *("-filter_complex", mix, "-map", "0:v", "-map", "[speech]"),
            *("-c:v", "libx264", "-preset", "ultrafast", *KEYFRAMES_EVERY_2S),
            *("-pix_fmt", "yuv420p", "-c:a", "aac", "-t", str(seconds)),
            str(path),
        ],
        check=True,
    )
    return SpeechVideo(path, seconds, tuple(spoken))


def words(text: str) -> list[str]:
    """The words of `text`, whatever their case and punctuation."""
    return re.findall(r"[a-z0-9']+", text.lower())


def recall(sentence: str, heard: str) -> float:
    """The share of the sentence's words that were heard."""
    expected = words(sentence)
    found = set(words(heard))
    return sum(word in found for word in expected) / len(expected)


# The mean brightness of a band with text drawn in it (a line of text: about 7; black: 0).
DRAWN = 1.5


def band_brightness(clip: Path, at_ms: int) -> tuple[float, float]:
    """The mean brightness (0-255) of the top and bottom thirds of the clip's frame at
    `at_ms`: on a black video only burned-in text (drawn at the bottom) is bright."""
    frame = subprocess.run(
        [
            ffmpeg_path(),
            *("-hide_banner", "-loglevel", "error", "-ss", f"{at_ms / 1000:.3f}", "-i", str(clip)),
            *("-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "gray", "pipe:1"),
        ],
        check=True,
        capture_output=True,
    ).stdout
    assert len(frame) == WIDTH * HEIGHT
    third = WIDTH * (HEIGHT // 3)
    return sum(frame[:third]) / third, sum(frame[-third:]) / third
