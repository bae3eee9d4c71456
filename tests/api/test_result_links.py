"""Result links are built on PUBLIC_BASE_URL when it is set, never on the Host header a
client sends (which would let anyone mint links to their own host from ours)."""

from __future__ import annotations

import httpx
import psycopg

from tests.api.conftest import ApiFactory, clip


async def _done_job(client: httpx.AsyncClient, db_url: str) -> str:
    job = str((await client.post("/api/jobs", json=clip())).json()["id"])
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        await conn.execute(
            "UPDATE jobs SET status = 'done', result_video_key = %s WHERE id = %s",
            (f"results/{job}/1/clip.mp4", job),
        )
    return job


async def test_links_use_the_public_base_url_whatever_the_host_header(
    make_client: ApiFactory, db_url: str
) -> None:
    client: httpx.AsyncClient = await make_client(public_base_url="https://clips.example.com/")
    job = await _done_job(client, db_url)
    result = await client.get(f"/api/jobs/{job}/result", headers={"Host": "evil.example"})
    url = result.json()["video"]["url"]
    assert url.startswith(f"https://clips.example.com/files/results/{job}/1/clip.mp4?")
    assert "evil.example" not in result.text


async def test_without_it_links_follow_the_request(make_client: ApiFactory, db_url: str) -> None:
    client: httpx.AsyncClient = await make_client()
    job = await _done_job(client, db_url)
    url = (await client.get(f"/api/jobs/{job}/result")).json()["video"]["url"]
    assert url.startswith(f"http://api/files/results/{job}/1/clip.mp4?")
