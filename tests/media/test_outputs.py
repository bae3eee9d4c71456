"""Output choices with the wheel's real FFmpeg: each container holds what it should, stream
copy stays the fast path only when it gives what was asked, maxHeight scales down, a 10-bit
HDR source stays 10-bit HDR unless told otherwise, and thumbnails and previews show the clip."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import av
import pytest

from clipper.domain.clips import CutMode
from clipper.domain.outputs import (
    Container,
    OutputOptions,
    PreviewFormat,
    Quality,
    VideoCodec,
)
from clipper.media import outputs
from clipper.media.cutting import Cut, cut_segment, verify
from clipper.media.encoders import ffmpeg_encoders, parse_encoders
from clipper.media.errors import InvalidOutputError, OutputUnsupportedError
from clipper.media.images import image_header, inspect_image, make_preview, make_thumbnail
from clipper.media.outputs import OutputPlan, check_choices, plan_output, written_container
from clipper.media.probe import MediaInfo, probe
from tests.media_files import frame_numbers, make_hdr_video, make_numbered_video, make_video


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("outputs")


@pytest.fixture(scope="module")
def sdr(folder: Path) -> Path:
    """320x240 H.264 and AAC, 25 fps, keyframes at 0, 2 and 4 s."""
    return make_video(folder / "sdr.mp4", seconds=6)


@pytest.fixture(scope="module")
def hdr(folder: Path) -> Path:
    return make_hdr_video(folder / "hdr.mp4", seconds=3)


@pytest.fixture(scope="module")
def tone(folder: Path) -> Path:
    return make_video(folder / "tone.m4a", seconds=4, video=False)


async def _ignore(stage: str, share: float) -> None:
    pass


async def _cut(
    source: Path,
    options: OutputOptions,
    folder: Path,
    start_ms: int = 1_000,
    end_ms: int = 2_600,
    mode: CutMode = CutMode.EXACT,
) -> tuple[Cut, Path, OutputPlan]:
    info = await probe(source)
    plan = plan_output(options, info, mode)
    output = folder / plan.filename
    cut = await cut_segment(
        source,
        info,
        start_ms,
        end_ms,
        output,
        on_progress=_ignore,
        timeout_seconds=120,
        mode=mode,
        plan=plan,
    )
    return cut, output, plan


@pytest.mark.parametrize(
    ("container", "name", "video", "audio"),
    [
        (Container.MP4, "clip.mp4", "h264", "aac"),
        (Container.WEBM, "clip.webm", "vp9", "opus"),
        (Container.MOV, "clip.mov", "h264", "aac"),
        (Container.MKV, "clip.mkv", "h264", "aac"),
        (Container.M4A, "clip.m4a", None, "aac"),
        (Container.MP3, "clip.mp3", None, "mp3"),
    ],
)
async def test_each_container_holds_its_codecs(
    sdr: Path,
    tmp_path: Path,
    container: Container,
    name: str,
    video: str | None,
    audio: str,
) -> None:
    cut, output, _ = await _cut(sdr, OutputOptions(container=container), tmp_path)
    assert output.name == name
    assert written_container(output) is container
    clip = await probe(output)
    assert (clip.video_codec, clip.audio_codec) == (
        video,
        audio,
    )
    assert clip.has_video is (video is not None)  # an audio-only container drops the video
    assert abs(clip.duration_ms - cut.duration_ms) <= 150


async def test_the_container_as_written_is_read_from_the_file_not_its_name(
    sdr: Path, tmp_path: Path
) -> None:
    _, output, _ = await _cut(sdr, OutputOptions(container=Container.MKV), tmp_path)
    disguised = output.rename(tmp_path / "clip.mp4")
    assert written_container(disguised) is Container.MKV
    (tmp_path / "junk.mp4").write_bytes(b"not a media file at all")
    assert written_container(tmp_path / "junk.mp4") is None


@pytest.mark.parametrize(
    ("options", "method", "video", "audio"),
    [
        (OutputOptions(), "copy", "h264", "aac"),  # MP4 holds the source's H.264 and AAC
        (OutputOptions(container=Container.MKV), "copy", "h264", "aac"),
        (OutputOptions(max_height=480), "copy", "h264", "aac"),  # no taller: nothing to scale
        (OutputOptions(video_codec=VideoCodec.H264), "copy", "h264", "aac"),  # the source's
        (OutputOptions(container=Container.WEBM), "encode", "vp9", "opus"),  # no H.264 in WebM
        (OutputOptions(video_codec=VideoCodec.HEVC), "encode", "hevc", "aac"),
        (OutputOptions(quality=Quality.HIGH), "encode", "h264", "aac"),
        (OutputOptions(max_height=120), "encode", "h264", "aac"),
        (OutputOptions(audio_bitrate_kbps=64), "encode", "h264", "aac"),
        (OutputOptions(container=Container.MP3), "encode", None, "mp3"),  # MP3 holds no AAC
        (OutputOptions(container=Container.M4A), "copy", None, "aac"),  # M4A does
    ],
)
async def test_stream_copy_only_when_it_gives_what_was_asked(
    sdr: Path,
    tmp_path: Path,
    options: OutputOptions,
    method: str,
    video: str | None,
    audio: str,
) -> None:
    # From the keyframe at 2 s: an exact cut can copy.
    cut, output, plan = await _cut(sdr, options, tmp_path, 2_000, 3_000)
    assert (cut.method, plan.copyable) == (method, method == "copy")
    clip = await probe(output)
    assert (clip.video_codec, clip.audio_codec) == (
        video,
        audio,
    )


async def test_max_height_scales_down_keeping_the_aspect_ratio(sdr: Path, tmp_path: Path) -> None:
    _, output, _ = await _cut(sdr, OutputOptions(max_height=120), tmp_path)
    clip = await probe(output)
    assert (clip.width, clip.height) == (160, 120)
    # An odd limit is rounded down to even (4:2:0 needs it).
    _, odd, _ = await _cut(sdr, OutputOptions(max_height=121, container=Container.MKV), tmp_path)
    assert ((await probe(odd)).width, (await probe(odd)).height) == (160, 120)


def _colour(path: Path) -> tuple[str, int, int, int]:
    with av.open(str(path)) as container:
        context = container.streams.video[0].codec_context
        return (
            str(context.pix_fmt),
            int(context.color_primaries),
            int(context.color_trc),
            int(context.colorspace),
        )


# BT.2020 primaries, PQ transfer, BT.2020 non-constant matrix (ITU-T H.273 numbers).
_HDR10 = (9, 16, 9)


@pytest.mark.parametrize(
    ("options", "codec"),
    [
        (OutputOptions(), "hevc"),  # the default for a 10-bit source: not H.264
        (OutputOptions(video_codec=VideoCodec.AV1), "av1"),
        (OutputOptions(container=Container.WEBM), "vp9"),  # profile 2
        (OutputOptions(container=Container.MKV, max_height=120), "hevc"),
    ],
)
async def test_a_10_bit_hdr_source_stays_10_bit_hdr(
    hdr: Path, tmp_path: Path, options: OutputOptions, codec: str
) -> None:
    source = await probe(hdr)
    assert (source.bit_depth, source.hdr) == (10, True)
    cut, output, _ = await _cut(hdr, options, tmp_path, 500, 1_500)
    assert cut.method == "encode"  # 500 ms is no keyframe
    clip = await probe(output)
    assert (clip.video_codec, clip.bit_depth, clip.hdr) == (codec, 10, True)
    assert _colour(output) == ("yuv420p10le", *_HDR10)
    if codec == "vp9":
        with av.open(str(output)) as container:
            assert container.streams.video[0].codec_context.profile == "Profile 2"


async def test_tone_map_makes_8_bit_sdr_h264_of_an_hdr_source(hdr: Path, tmp_path: Path) -> None:
    _, output, plan = await _cut(hdr, OutputOptions(tone_map=True), tmp_path, 500, 1_500)
    assert plan.video_codec is VideoCodec.H264  # an 8-bit output takes the 8-bit default
    clip = await probe(output)
    assert (clip.video_codec, clip.bit_depth, clip.hdr) == ("h264", 8, False)
    pixels, primaries, transfer, _ = _colour(output)
    assert (pixels, primaries, transfer) == ("yuv420p", 1, 1)  # BT.709


async def test_h264_of_an_hdr_source_is_refused_unless_tone_mapped(hdr: Path) -> None:
    source = await probe(hdr)
    with pytest.raises(OutputUnsupportedError) as refused:
        plan_output(OutputOptions(video_codec=VideoCodec.H264), source, CutMode.EXACT)
    assert refused.value.field == "videoCodec"
    assert "toneMap" in refused.value.reason
    assert "hevc" in refused.value.reason  # what to choose instead
    accepted = OutputOptions(video_codec=VideoCodec.H264, tone_map=True)
    assert plan_output(accepted, source, CutMode.EXACT).ten_bit is False


async def test_a_fast_cut_of_an_hdr_source_copies_it_10_bit(hdr: Path, tmp_path: Path) -> None:
    cut, output, _ = await _cut(hdr, OutputOptions(), tmp_path, 500, 1_500, CutMode.FAST)
    assert (cut.method, cut.start_ms) == ("copy", 0)
    clip = await probe(output)
    assert (clip.video_codec, clip.bit_depth, clip.hdr) == ("hevc", 10, True)


async def test_an_audio_source_makes_m4a_by_default_and_mp4_when_asked(
    tone: Path, tmp_path: Path
) -> None:
    cut, output, _ = await _cut(tone, OutputOptions(), tmp_path)
    assert (output.name, cut.method, written_container(output)) == (
        "clip.m4a",
        "copy",
        Container.M4A,
    )
    _, mp4, _ = await _cut(tone, OutputOptions(container=Container.MP4), tmp_path)
    clip = await probe(mp4)
    assert (written_container(mp4), clip.has_video, clip.audio_codec) == (
        Container.MP4,
        False,
        "aac",
    )
    _, mp3, _ = await _cut(tone, OutputOptions(container=Container.MP3), tmp_path)
    assert (await probe(mp3)).audio_codec == "mp3"  # the codec's name, not its decoder's


async def test_images_of_an_audio_source_are_refused(tone: Path) -> None:
    source = await probe(tone)
    for options, field in (
        (OutputOptions(thumbnail_ms=0), "thumbnail"),
        (OutputOptions(preview=PreviewFormat.GIF), "preview"),
    ):
        with pytest.raises(OutputUnsupportedError) as refused:
            plan_output(options, source, CutMode.EXACT)
        assert refused.value.field == field


@pytest.mark.parametrize(
    ("options", "field"),
    [
        (OutputOptions(container=Container.WEBM, video_codec=VideoCodec.H264), "videoCodec"),
        (OutputOptions(container=Container.MOV, video_codec=VideoCodec.AV1), "videoCodec"),
        (OutputOptions(video_codec=VideoCodec.VP9), "videoCodec"),  # the default mp4
        (OutputOptions(container=Container.M4A, video_codec=VideoCodec.H264), "videoCodec"),
        (OutputOptions(container=Container.MP3, thumbnail_ms=0), "thumbnail"),
        (OutputOptions(container=Container.M4A, preview=PreviewFormat.WEBP), "preview"),
    ],
)
def test_choices_that_never_work_are_refused_naming_the_choice(
    options: OutputOptions, field: str
) -> None:
    with pytest.raises(OutputUnsupportedError) as refused:
        check_choices(options, CutMode.EXACT)
    assert refused.value.field == field
    assert str(refused.value).startswith(f"output.{field}: ")


@pytest.mark.parametrize(
    ("options", "field"),
    [
        (OutputOptions(quality=Quality.LOW), "quality"),
        (OutputOptions(audio_bitrate_kbps=96), "audioBitrate"),
    ],
)
def test_a_fast_cut_refuses_a_re_encode_whatever_the_source(
    options: OutputOptions, field: str
) -> None:
    check_choices(options, CutMode.EXACT)  # fine when exact
    with pytest.raises(OutputUnsupportedError) as refused:
        check_choices(options, CutMode.FAST)
    assert refused.value.field == field


@pytest.mark.parametrize(
    ("options", "field"),
    [
        (OutputOptions(container=Container.WEBM), "container"),  # no H.264 in WebM
        (OutputOptions(container=Container.MP3), "container"),  # no AAC in MP3
        (OutputOptions(video_codec=VideoCodec.HEVC), "videoCodec"),
        (OutputOptions(max_height=120), "maxHeight"),
    ],
)
async def test_a_fast_cut_refuses_what_the_source_needs_re_encoded_for(
    sdr: Path, options: OutputOptions, field: str
) -> None:
    source = await probe(sdr)
    with pytest.raises(OutputUnsupportedError) as refused:
        plan_output(options, source, CutMode.FAST)
    assert refused.value.field == field
    assert "cut fast" in refused.value.reason


def test_a_codec_this_ffmpeg_cannot_encode_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    without_x265 = ffmpeg_encoders() - {"libx265"}
    monkeypatch.setattr(outputs, "ffmpeg_encoders", lambda: without_x265)
    with pytest.raises(OutputUnsupportedError) as refused:
        check_choices(OutputOptions(video_codec=VideoCodec.HEVC), CutMode.EXACT)
    assert (refused.value.field, refused.value.reason) == (
        "videoCodec",
        "this server's FFmpeg cannot encode hevc",
    )
    # AV1 falls back to libaom when SVT-AV1 is missing.
    monkeypatch.setattr(outputs, "ffmpeg_encoders", lambda: ffmpeg_encoders() - {"libsvtav1"})
    info = MediaInfo(1_000, True, False, 0, video_codec="h264", height=240, bit_depth=8)
    plan = plan_output(OutputOptions(video_codec=VideoCodec.AV1), info, CutMode.EXACT)
    assert plan.video_encoder == "libaom-av1"


def test_the_encoder_list_is_read_from_ffmpeg() -> None:
    listed = (
        "Encoders:\n V..... = Video\n ------\n V....D libx264              libx264 H.264\n"
        " A....D aac                  AAC (Advanced Audio Coding)\n"
    )
    assert parse_encoders(listed) == {"libx264", "aac"}
    shipped = ffmpeg_encoders()
    assert {"libx264", "libx265", "libvpx-vp9", "libsvtav1", "libopus", "libmp3lame"} <= shipped
    assert ffmpeg_encoders() is shipped  # asked once


async def test_verify_refuses_a_clip_unlike_its_plan(sdr: Path, tmp_path: Path) -> None:
    cut, output, plan = await _cut(sdr, OutputOptions(), tmp_path)  # an H.264 MP4
    info = await probe(sdr)
    as_webm = replace(plan, container=Container.WEBM)
    with pytest.raises(InvalidOutputError, match="not webm"):
        await verify(output, cut.duration_ms, info, as_webm, cut.method)
    as_hevc = replace(plan, video_codec=VideoCodec.HEVC)
    with pytest.raises(InvalidOutputError, match="not hevc"):
        await verify(output, cut.duration_ms, info, as_hevc, "encode")
    lower = replace(plan, max_height=200)
    with pytest.raises(InvalidOutputError, match="240 px high"):
        await verify(output, cut.duration_ms, info, lower, cut.method)
    ten_bit = replace(plan, ten_bit=True)
    with pytest.raises(InvalidOutputError, match="8-bit, not 10-bit"):
        await verify(output, cut.duration_ms, info, ten_bit, "encode")


async def test_quality_levels_order_sizes_and_codecs_stay_comparable(
    sdr: Path, tmp_path: Path
) -> None:
    made = iter(range(100))

    async def size(options: OutputOptions) -> int:
        folder = tmp_path / str(next(made))
        folder.mkdir()
        _, output, _ = await _cut(sdr, replace(options, container=Container.MKV), folder)
        return output.stat().st_size

    h264 = [await size(OutputOptions(quality=quality)) for quality in Quality]
    assert h264 == sorted(h264)
    assert len(set(h264)) == 3
    medium = {
        codec: await size(OutputOptions(video_codec=codec))
        for codec in (VideoCodec.H264, VideoCodec.HEVC, VideoCodec.AV1)
    }
    # Comparable: within a factor of 3 of H.264's (a wrong scale would be 10x off).
    assert all(h264[1] / 3 < each < h264[1] * 3 for each in medium.values()), medium


@pytest.fixture(scope="module")
def numbered(folder: Path) -> Path:
    """25 fps, each frame showing its number."""
    return make_numbered_video(folder / "numbered.mp4", seconds=6)


@pytest.mark.parametrize(
    ("at_ms", "frame"),
    [(0, 31), (1_000, 56), (1_700, 73), (5_000, 74)],  # past the end: its last frame
)
async def test_the_thumbnail_shows_the_clips_frame_at_its_time(
    numbered: Path, tmp_path: Path, at_ms: int, frame: int
) -> None:
    # An exact cut from 1.25 s starts on frame 31 (on screen from 1.240 s).
    _, clip, _ = await _cut(numbered, OutputOptions(thumbnail_ms=at_ms), tmp_path, 1_250, 3_000)
    poster = tmp_path / "poster.jpg"
    await make_thumbnail(clip, at_ms, poster, hdr=False, timeout_seconds=60)
    assert poster.read_bytes()[:3] == b"\xff\xd8\xff"  # a JPEG
    assert image_header(poster.read_bytes())[0] == "jpeg"
    assert frame_numbers(poster) == [frame]


@pytest.mark.parametrize("kind", list(PreviewFormat))
async def test_the_preview_is_a_small_animation_of_the_clips_start(
    tmp_path: Path, kind: PreviewFormat
) -> None:
    wide = await asyncio.to_thread(make_video, tmp_path / "wide.mp4", 5, size="640x480")
    _, clip, _ = await _cut(wide, OutputOptions(), tmp_path, 0, 4_000)
    preview = tmp_path / f"preview.{kind}"
    await make_preview(clip, kind, 4_000, preview, hdr=False, timeout_seconds=60)
    facts = await inspect_image(preview, timeout_seconds=60)
    # The first 3 s at 10 frames a second, scaled to 320 px wide (the aspect kept).
    assert (facts.kind, facts.width, facts.height) == (kind.value, 320, 240)
    assert 28 <= facts.frames <= 31


async def test_a_preview_of_an_hdr_clip_is_tone_mapped_and_still_animated(
    hdr: Path, tmp_path: Path
) -> None:
    _, clip, _ = await _cut(hdr, OutputOptions(), tmp_path, 0, 2_000)
    preview = tmp_path / "preview.gif"
    await make_preview(clip, PreviewFormat.GIF, 2_000, preview, hdr=True, timeout_seconds=60)
    facts = await inspect_image(preview, timeout_seconds=60)
    assert facts.kind == "gif"
    assert facts.frames > 1


async def test_an_image_that_does_not_decode_is_invalid(tmp_path: Path) -> None:
    broken = tmp_path / "poster.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0" + bytes(200))
    with pytest.raises(InvalidOutputError):
        await inspect_image(broken, timeout_seconds=30)
