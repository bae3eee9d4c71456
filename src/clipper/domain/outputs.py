"""What a clip job writes: its container and codecs, its quality and size, and the images that
may come with it (a thumbnail, an animated preview). Plain rules, no I/O: which codecs each
container may hold, and what is chosen when a request leaves a choice open."""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from typing import Any, TypeVar


class Container(enum.StrEnum):
    MP4 = "mp4"
    WEBM = "webm"
    MOV = "mov"
    MKV = "mkv"
    # Audio only: the video, if any, is left out.
    M4A = "m4a"
    MP3 = "mp3"

    @property
    def audio_only(self) -> bool:
        return self in (Container.M4A, Container.MP3)

    @property
    def extension(self) -> str:
        return self.value


class VideoCodec(enum.StrEnum):
    H264 = "h264"
    HEVC = "hevc"
    VP9 = "vp9"
    AV1 = "av1"

    @property
    def keeps_10_bit(self) -> bool:
        """Whether Clipper encodes 10-bit video with it. H.264 is always 8-bit here: its
        10-bit profile (High 10) plays almost nowhere (no browser, few devices), so a 10-bit
        H.264 clip would be a clip that does not play."""
        return self is not VideoCodec.H264


class AudioCodec(enum.StrEnum):
    AAC = "aac"
    OPUS = "opus"
    MP3 = "mp3"


class Quality(enum.StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class PreviewFormat(enum.StrEnum):
    GIF = "gif"
    WEBP = "webp"

    @property
    def extension(self) -> str:
        return self.value


# The video codecs Clipper encodes into each container: what its players commonly play (MOV:
# QuickTime's own H.264 and HEVC; WebM: by definition VP9 or AV1). Matroska takes them all.
ENCODABLE: dict[Container, tuple[VideoCodec, ...]] = {
    Container.MP4: (VideoCodec.H264, VideoCodec.HEVC, VideoCodec.AV1),
    Container.MOV: (VideoCodec.H264, VideoCodec.HEVC),
    Container.MKV: tuple(VideoCodec),
    Container.WEBM: (VideoCodec.VP9, VideoCodec.AV1),
    Container.M4A: (),
    Container.MP3: (),
}

# The audio codec a re-encode writes into each container.
AUDIO_CODEC: dict[Container, AudioCodec] = {
    Container.MP4: AudioCodec.AAC,
    Container.MOV: AudioCodec.AAC,
    Container.MKV: AudioCodec.AAC,
    Container.M4A: AudioCodec.AAC,
    Container.WEBM: AudioCodec.OPUS,
    Container.MP3: AudioCodec.MP3,
}

# What stream copy may put in each container: the codecs (FFmpeg's names) its muxer writes and
# its players read, beyond what Clipper itself encodes into it (a copy keeps the source's
# codecs). None: anything (Matroska holds every codec FFmpeg knows).
COPYABLE_VIDEO: dict[Container, frozenset[str] | None] = {
    Container.MP4: frozenset({"h264", "hevc", "av1", "vp9", "mpeg4"}),
    Container.MOV: frozenset({"h264", "hevc", "mpeg4", "prores", "mjpeg"}),
    Container.MKV: None,
    Container.WEBM: frozenset({"vp8", "vp9", "av1"}),
    Container.M4A: frozenset(),
    Container.MP3: frozenset(),
}
COPYABLE_AUDIO: dict[Container, frozenset[str] | None] = {
    Container.MP4: frozenset({"aac", "mp3", "opus", "ac3", "eac3", "alac", "flac"}),
    Container.MOV: frozenset({"aac", "mp3", "alac", "ac3", "pcm_s16le", "pcm_s24le"}),
    Container.MKV: None,
    Container.WEBM: frozenset({"opus", "vorbis"}),
    Container.M4A: frozenset({"aac", "alac"}),
    Container.MP3: frozenset({"mp3"}),
}

AUDIO_BITRATE_DEFAULT_KBPS = 128
AUDIO_BITRATE_MIN_KBPS = 32
AUDIO_BITRATE_MAX_KBPS = 320
MAX_HEIGHT_MIN = 64
MAX_HEIGHT_MAX = 4320


@dataclass(frozen=True, slots=True)
class OutputOptions:
    """A job's output choices as asked. None for container and video codec: chosen from the
    source (see `default_container`, `default_video_codec`)."""

    container: Container | None = None
    video_codec: VideoCodec | None = None
    audio_bitrate_kbps: int = AUDIO_BITRATE_DEFAULT_KBPS
    quality: Quality = Quality.MEDIUM
    # Scaled down to at most this height (aspect kept), never up.
    max_height: int | None = None
    # Accept 8-bit SDR video from a 10-bit or HDR source (tone-mapped when HDR).
    tone_map: bool = False
    # A JPEG of the clip's frame this far into the clip (0: its first frame); None: none.
    thumbnail_ms: int | None = None
    preview: PreviewFormat | None = None

    @property
    def is_default(self) -> bool:
        return self == OutputOptions()

    @property
    def needs_video(self) -> bool:
        """Whether anything asked for is made of video frames."""
        return self.thumbnail_ms is not None or self.preview is not None

    def to_json(self) -> dict[str, Any] | None:
        """As stored on the job: None when every choice is the default (as for the jobs
        made before there were any), else the choices that differ from it."""
        if self.is_default:
            return None
        default = OutputOptions()
        return {
            field.name: _plain(getattr(self, field.name))
            for field in dataclasses.fields(self)
            if getattr(self, field.name) != getattr(default, field.name)
        }

    @classmethod
    def from_json(cls, stored: dict[str, Any] | None) -> OutputOptions:
        """From the job's column: None (and any choice left out) is the default."""
        if not stored:
            return cls()
        return cls(
            container=_maybe(Container, stored.get("container")),
            video_codec=_maybe(VideoCodec, stored.get("video_codec")),
            audio_bitrate_kbps=int(stored.get("audio_bitrate_kbps", AUDIO_BITRATE_DEFAULT_KBPS)),
            quality=Quality(stored.get("quality", Quality.MEDIUM)),
            max_height=stored.get("max_height"),
            tone_map=bool(stored.get("tone_map", False)),
            thumbnail_ms=stored.get("thumbnail_ms"),
            preview=_maybe(PreviewFormat, stored.get("preview")),
        )


def default_container(has_video: bool) -> Container:
    """MP4, or M4A for a source without video (an audio clip)."""
    return Container.MP4 if has_video else Container.M4A


def default_video_codec(container: Container, high_bit_depth: bool) -> VideoCodec:
    """H.264 (VP9 in WebM), the codec that plays everywhere; for a 10-bit or HDR source one
    that keeps it (HEVC; VP9 in WebM), so a request that names no codec never loses it."""
    if container is Container.WEBM:
        return VideoCodec.VP9
    return VideoCodec.HEVC if high_bit_depth else VideoCodec.H264


def _plain(value: object) -> object:
    return value.value if isinstance(value, enum.Enum) else value


E = TypeVar("E", bound=enum.Enum)


def _maybe(kind: type[E], value: object) -> E | None:
    return None if value is None else kind(value)
