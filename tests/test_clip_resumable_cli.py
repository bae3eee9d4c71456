"""`clipper clip FILE` uploads resumably: through a proxy that cuts the connection once in
the middle of the upload, it resumes where the server stands and makes the clip."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import httpx

from clipper.media.cutting import DURATION_TOLERANCE_MS
from clipper.media.probe import probe
from tests.cli_helpers import clipper, start_clipper_up
from tests.media_files import make_video
from tests.proxy import CuttingProxy


def test_clip_resumes_an_upload_whose_connection_is_cut_and_makes_the_clip(
    db_url: str, tmp_path: Path
) -> None:
    sample = make_video(tmp_path / "talk.mp4", seconds=10)
    size = sample.stat().st_size
    data_dir = tmp_path / "data"
    process, address = start_clipper_up(db_url, DATA_DIR=str(data_dir))
    api = httpx.URL(address)
    assert api.port is not None
    try:
        with CuttingProxy((api.host, api.port)) as proxy:
            proxy.cut_after(size // 2)  # the creating POST is a few hundred bytes
            clipped = clipper(
                "clip",
                str(sample),
                "--start",
                "00:00:02",
                "--end",
                "00:00:05",
                "--out",
                str(tmp_path / "highlight.mp4"),
                timeout=120,
                CLIPPER_API_URL=proxy.url,
            )
            cuts = proxy.cuts
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    assert clipped.returncode == 0, clipped.stderr
    assert cuts == 1
    lines = clipped.stdout.splitlines()
    assert any(line.startswith("upload interrupted (") for line in lines), lines
    resumed = [line for line in lines if line.startswith("resuming the upload at ")]
    assert len(resumed) == 1, lines
    assert resumed[0].endswith(f"of {size / 1e6:.1f} MB")
    # The bar's last state: every byte, with the rate and the time left.
    total = f"{size / 1e6:.1f}/{size / 1e6:.1f} MB"
    assert any(line.startswith("upload") and total in line for line in lines), lines
    assert lines[-1] == f"clip saved to {tmp_path / 'highlight.mp4'}"
    [stored] = (data_dir / "sources").glob("*/source")
    assert stored.read_bytes() == sample.read_bytes()  # byte for byte, across the cut
    info = asyncio.run(probe(tmp_path / "highlight.mp4"))
    assert abs(info.duration_ms - 3000) <= DURATION_TOLERANCE_MS
