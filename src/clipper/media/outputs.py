"""From a job's output choices (domain.outputs) and what its source holds to what FFmpeg
writes: the container, the codecs and their settings, whether stream copy still gives what
was asked, and FFmpeg's arguments for it. A choice that cannot work is OutputUnsupportedError
naming it; `check_choices` finds those that fail whatever the source (at once, in the API),
`plan_output` the rest once the source is known (for an upload also in the API, from its
probe, else on the worker)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from ..domain.clips import CutMode
from ..domain.outputs import (
    AUDIO_BITRATE_DEFAULT_KBPS,
    AUDIO_CODEC,
    COPYABLE_AUDIO,
    COPYABLE_VIDEO,
    ENCODABLE,
    AudioCodec,
    Container,
    OutputOptions,
    PreviewFormat,
    Quality,
    VideoCodec,
    default_container,
    default_video_codec,
)
from .encoders import ffmpeg_encoders
from .errors import OutputUnsupportedError
from .probe import MediaInfo

# FFmpeg's encoders for each codec, the first one this FFmpeg has is used. SVT-AV1 first: it
# is many times faster than libaom at a like size.
VIDEO_ENCODERS: dict[VideoCodec, tuple[str, ...]] = {
    VideoCodec.H264: ("libx264",),
    VideoCodec.HEVC: ("libx265",),
    VideoCodec.VP9: ("libvpx-vp9",),
    VideoCodec.AV1: ("libsvtav1", "libaom-av1"),
}
AUDIO_ENCODERS: dict[AudioCodec, str] = {
    AudioCodec.AAC: "aac",
    AudioCodec.OPUS: "libopus",  # FFmpeg's own opus encoder is experimental
    AudioCodec.MP3: "libmp3lame",
}
PREVIEW_ENCODERS: dict[PreviewFormat, str] = {
    PreviewFormat.GIF: "gif",
    PreviewFormat.WEBP: "libwebp_anim",
}
THUMBNAIL_ENCODER = "mjpeg"

# The CRF of each quality (low, medium, high) per codec. Medium is x264's CRF 23 (what every
# clip was cut with before there were choices) and, for the others, the CRF whose clips came
# out about as large as x264's at 23 on our test material (test patterns, fractals, noise at
# 640x360: HEVC 26, VP9 35, AV1 36), so choosing a codec changes the quality a size buys, not
# the size. Low and high step about half and twice the bytes away (x264: 6 CRF halve the
# bitrate; VP9's and AV1's 0-63 scales need wider steps for the same).
CRF: dict[VideoCodec, tuple[int, int, int]] = {
    VideoCodec.H264: (28, 23, 18),
    VideoCodec.HEVC: (31, 26, 21),
    VideoCodec.VP9: (42, 35, 28),
    VideoCodec.AV1: (43, 36, 29),
}
_QUALITY_INDEX = {Quality.LOW: 0, Quality.MEDIUM: 1, Quality.HIGH: 2}

# PQ or HLG to SDR BT.709 (zscale, from the frames' own colour properties): linear light,
# BT.709 primaries, Hable's curve without desaturation, then BT.709 transfer and matrix.
TONE_MAP_FILTER = (
    "zscale=t=linear:npl=100,format=gbrpf32le,zscale=p=bt709,"
    "tonemap=tonemap=hable:desat=0,zscale=t=bt709:m=bt709:r=tv,format=yuv420p"
)

# FFmpeg's muxer for each container (named, not guessed from the file name).
MUXERS: dict[Container, str] = {
    Container.MP4: "mp4",
    Container.MOV: "mov",
    Container.M4A: "ipod",
    Container.MKV: "matroska",
    Container.WEBM: "webm",
    Container.MP3: "mp3",
}
# ISO BMFF files: their index goes first, so players start before the whole file arrived.
_FASTSTART = frozenset({Container.MP4, Container.MOV, Container.M4A})


@dataclass(frozen=True, slots=True)
class OutputPlan:
    """What one clip's output is: its container and streams, how a re-encode writes them, and
    whether stream copy gives the same (the source's codecs in a container that holds them,
    nothing to scale, convert or re-compress)."""

    container: Container
    video: bool  # the clip has video (the source has, and the container holds it)
    audio: bool
    video_codec: VideoCodec | None  # a re-encode's (None without video)
    video_encoder: str | None
    ten_bit: bool  # a re-encode keeps 10 bits (a 10-bit or HDR source)
    tone_map: bool  # a re-encode maps the source's HDR to SDR
    scale_height: int | None  # a re-encode scales down to this height (even)
    max_height: int | None  # as asked: the clip is no higher
    quality: Quality
    audio_codec: AudioCodec | None  # a re-encode's (None without audio)
    audio_bitrate_kbps: int
    copyable: bool
    thumbnail_ms: int | None = None
    preview: PreviewFormat | None = None

    @property
    def filename(self) -> str:
        return f"clip.{self.container.extension}"


# What every clip was before outputs had choices: MP4, H.264 (8-bit, CRF 23), AAC 128 kbit/s.
STANDARD = OutputPlan(
    container=Container.MP4,
    video=True,
    audio=True,
    video_codec=VideoCodec.H264,
    video_encoder="libx264",
    ten_bit=False,
    tone_map=False,
    scale_height=None,
    max_height=None,
    quality=Quality.MEDIUM,
    audio_codec=AudioCodec.AAC,
    audio_bitrate_kbps=AUDIO_BITRATE_DEFAULT_KBPS,
    copyable=True,
)


def check_choices(options: OutputOptions, cut: CutMode) -> None:
    """What in `options` cannot work whatever the source (OutputUnsupportedError naming it):
    a codec its container cannot hold or this FFmpeg cannot encode, images of an audio-only
    clip, a fast cut (stream copy) asked to re-compress."""
    container = options.container
    encoders = ffmpeg_encoders()
    if (codec := options.video_codec) is not None:
        if container is not None and container.audio_only:
            raise OutputUnsupportedError("videoCodec", f"{container} is audio only: no video")
        holder = container or Container.MP4
        if codec not in ENCODABLE[holder]:
            default = "" if container is not None else " (the default container)"
            can = ", ".join(ENCODABLE[holder])
            raise OutputUnsupportedError(
                "videoCodec",
                f"{holder}{default} cannot hold {codec}: it takes {can}; "
                f"choose another container (mkv takes any)",
            )
        if _encoder(codec, encoders) is None:
            raise OutputUnsupportedError(
                "videoCodec", f"this server's FFmpeg cannot encode {codec}"
            )
    if container is not None and AUDIO_ENCODERS[AUDIO_CODEC[container]] not in encoders:
        raise OutputUnsupportedError(
            "container", f"this server's FFmpeg cannot encode {AUDIO_CODEC[container]} audio"
        )
    for field, asked in (("thumbnail", options.thumbnail_ms), ("preview", options.preview)):
        if asked is not None and container is not None and container.audio_only:
            raise OutputUnsupportedError(field, f"needs video, and {container} clips have none")
    if options.thumbnail_ms is not None and THUMBNAIL_ENCODER not in encoders:
        raise OutputUnsupportedError("thumbnail", "this server's FFmpeg cannot write JPEG")
    if options.preview is not None and PREVIEW_ENCODERS[options.preview] not in encoders:
        raise OutputUnsupportedError(
            "preview", f"this server's FFmpeg cannot write {options.preview}"
        )
    if cut is CutMode.FAST:
        if options.quality is not Quality.MEDIUM:
            raise OutputUnsupportedError("quality", _FAST_COPIES + "quality needs a re-encode")
        if options.audio_bitrate_kbps != AUDIO_BITRATE_DEFAULT_KBPS:
            raise OutputUnsupportedError(
                "audioBitrate", _FAST_COPIES + "a bitrate needs a re-encode"
            )


_FAST_COPIES = "cut fast only copies the source's streams (use cut exact), and "


def plan_output(options: OutputOptions, source: MediaInfo, cut: CutMode) -> OutputPlan:
    """The output `options` make of a source holding `source`; OutputUnsupportedError naming
    the choice at fault when they cannot work with it (a fast cut: when only a re-encode would
    give what they ask)."""
    check_choices(options, cut)
    container = options.container or default_container(source.has_video)
    video = source.has_video and not container.audio_only
    audio = source.has_audio
    if container.audio_only and not audio:
        raise OutputUnsupportedError("container", f"the source has no audio for {container}")
    if not source.has_video:
        for field, asked in (("thumbnail", options.thumbnail_ms), ("preview", options.preview)):
            if asked is not None:
                raise OutputUnsupportedError(field, "needs video, and the source has none")
    high = video and (source.bit_depth > 8 or source.hdr)
    keep_high = high and not options.tone_map
    codec = encoder = None
    if video:
        codec = options.video_codec or default_video_codec(container, keep_high)
        if keep_high and not codec.keeps_10_bit:
            raise OutputUnsupportedError("videoCodec", _downgrade(source, container, codec))
        encoder = _encoder(codec, ffmpeg_encoders())
        if encoder is None:
            raise OutputUnsupportedError(
                "videoCodec",
                f"this server's FFmpeg cannot encode {codec} (the default here): name another",
            )
    scale = None
    if video and options.max_height is not None and source.height > options.max_height:
        scale = options.max_height - options.max_height % 2  # 4:2:0 needs an even height
    audio_codec = AUDIO_CODEC[container] if audio else None
    if audio_codec is not None and AUDIO_ENCODERS[audio_codec] not in ffmpeg_encoders():
        raise OutputUnsupportedError(
            "container", f"this server's FFmpeg cannot encode {audio_codec} audio"
        )
    plan = OutputPlan(
        container=container,
        video=video,
        audio=audio,
        video_codec=codec,
        video_encoder=encoder,
        ten_bit=keep_high,
        tone_map=high and not keep_high and source.hdr,
        scale_height=scale,
        max_height=options.max_height,
        quality=options.quality,
        audio_codec=audio_codec,
        audio_bitrate_kbps=options.audio_bitrate_kbps,
        copyable=True,
        thumbnail_ms=options.thumbnail_ms,
        preview=options.preview,
    )
    blocking = _copy_blockers(options, source, plan)
    if cut is CutMode.FAST and blocking:
        field, why = blocking[0]
        raise OutputUnsupportedError(field, _FAST_COPIES + why)
    return replace(plan, copyable=not blocking)


def _copy_blockers(
    options: OutputOptions, source: MediaInfo, plan: OutputPlan
) -> list[tuple[str, str]]:
    """Why stream copy would not give what was asked (the choice and why); none: it would."""
    blocking: list[tuple[str, str]] = []
    if options.quality is not Quality.MEDIUM:
        blocking.append(("quality", "quality needs a re-encode"))
    if options.audio_bitrate_kbps != AUDIO_BITRATE_DEFAULT_KBPS:
        blocking.append(("audioBitrate", "a bitrate needs a re-encode"))
    container = plan.container
    if plan.video:
        video = source.video_codec
        if options.video_codec is not None and options.video_codec != video:
            blocking.append(("videoCodec", f"the source's video is {video}"))
        if not _holds(COPYABLE_VIDEO[container], video):
            blocking.append(("container", f"{container} cannot hold the source's {video} video"))
        if plan.scale_height is not None:
            blocking.append(("maxHeight", f"the source is {source.height} px high"))
        if options.tone_map and (source.bit_depth > 8 or source.hdr):
            blocking.append(("toneMap", "the source is 10-bit or HDR"))
    if plan.audio:
        audio = source.audio_codec
        if not _holds(COPYABLE_AUDIO[container], audio):
            blocking.append(("container", f"{container} cannot hold the source's {audio} audio"))
    return blocking


def _holds(codecs: frozenset[str] | None, codec: str | None) -> bool:
    return codecs is None or (codec is not None and codec in codecs)


def _encoder(codec: VideoCodec, encoders: frozenset[str]) -> str | None:
    return next((name for name in VIDEO_ENCODERS[codec] if name in encoders), None)


def _downgrade(source: MediaInfo, container: Container, codec: VideoCodec) -> str:
    kind = "HDR" if source.hdr else f"{source.bit_depth}-bit"
    keeping = ", ".join(c for c in ENCODABLE[container] if c.keeps_10_bit)
    return (
        f"the source is {kind} video, and {codec} is made 8-bit SDR here (losing it): choose "
        f"{keeping} in {container}, or set output.toneMap to accept 8-bit SDR"
    )


def encode_arguments(plan: OutputPlan, video_filter: str | None = None) -> list[str]:
    """The codecs' arguments of a re-encode to `plan` (`video_filter`: burned subtitles)."""
    arguments: list[str] = []
    if plan.video:
        scale = None if plan.scale_height is None else f"scale=-2:{plan.scale_height}"
        # Tone mapping first: subtitles are then drawn, and scaled, in the clip's own colours.
        chain = [f for f in (TONE_MAP_FILTER if plan.tone_map else None, video_filter, scale) if f]
        if chain:
            arguments += ["-vf", ",".join(chain)]
        arguments += _video_codec_arguments(plan)
    if plan.audio:
        assert plan.audio_codec is not None
        encoder = AUDIO_ENCODERS[plan.audio_codec]
        arguments += ["-c:a", encoder, "-b:a", f"{plan.audio_bitrate_kbps}k"]
    return arguments


def _video_codec_arguments(plan: OutputPlan) -> list[str]:
    assert plan.video_codec is not None
    assert plan.video_encoder is not None
    codec, encoder = plan.video_codec, plan.video_encoder
    crf = str(CRF[codec][_QUALITY_INDEX[plan.quality]])
    # 4:2:0 (what players take); a 10-bit source stays 10-bit where the codec can.
    pixels = ["-pix_fmt", "yuv420p10le" if plan.ten_bit else "yuv420p"]
    # The fastest settings with a sane size: clips are short, and a worker makes many.
    if encoder == "libx264":
        return ["-c:v", encoder, "-preset", "veryfast", "-crf", crf, *pixels]
    if encoder == "libx265":
        profile = ["-profile:v", "main10"] if plan.ten_bit else []
        # hvc1: the tag Apple's players need for HEVC in MP4 and MOV.
        tag = ["-tag:v", "hvc1"] if plan.container in _FASTSTART else []
        quiet = ["-x265-params", "log-level=error"]
        return [
            "-c:v",
            encoder,
            "-preset",
            "veryfast",
            "-crf",
            crf,
            *pixels,
            *profile,
            *tag,
            *quiet,
        ]
    if encoder == "libvpx-vp9":
        # Profile 2: VP9's 10-bit profile. -b:v 0 makes the CRF a constant quality.
        profile = ["-profile:v", "2"] if plan.ten_bit else []
        speed = ["-deadline", "good", "-cpu-used", "5", "-row-mt", "1"]
        return ["-c:v", encoder, *speed, "-b:v", "0", "-crf", crf, *pixels, *profile]
    if encoder == "libsvtav1":
        return ["-c:v", encoder, "-preset", "8", "-crf", crf, *pixels]
    # libaom-av1, only without SVT-AV1.
    speed = ["-cpu-used", "6", "-row-mt", "1"]
    return ["-c:v", encoder, *speed, "-b:v", "0", "-crf", crf, *pixels]


def stream_maps(plan: OutputPlan) -> list[str]:
    """The source's streams the clip takes: its video (unless the container is audio only)
    and audio, each when it has any; never subtitles."""
    video = [] if plan.container.audio_only else ["-map", "0:v?"]
    return [*video, "-map", "0:a?", "-sn"]


def muxer_arguments(plan: OutputPlan) -> list[str]:
    faststart = ["-movflags", "+faststart"] if plan.container in _FASTSTART else []
    return [*faststart, "-f", MUXERS[plan.container]]


def written_container(path: Path) -> Container | None:
    """The container a file's first bytes say it is (ISO BMFF brands, the EBML DocType, MP3's
    tag or frame sync); None for anything else. For checking what FFmpeg wrote."""
    with path.open("rb") as file:
        head = file.read(4096)
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        return {b"qt  ": Container.MOV, b"M4A ": Container.M4A}.get(brand, Container.MP4)
    if head.startswith(b"\x1a\x45\xdf\xa3"):  # EBML: Matroska, or WebM (its subset)
        doc_type = head.find(b"\x42\x82")
        if doc_type != -1:
            name = head[doc_type + 3 : doc_type + 3 + 8]
            if name.startswith(b"webm"):
                return Container.WEBM
            if name.startswith(b"matroska"):
                return Container.MKV
        return None
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return Container.MP3
    return None
