"""/metrics needs an admin key when API keys are on; the health probes never need one."""

from __future__ import annotations

import httpx

from tests.api.conftest import ApiFactory, create_key


async def test_with_keys_on_metrics_need_an_admin_key(make_client: ApiFactory, db_url: str) -> None:
    client: httpx.AsyncClient = await make_client(enable_api_keys=True)
    user = await create_key(db_url, admin=False)
    admin = await create_key(db_url, admin=True)

    anonymous = await client.get("/metrics")
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "UNAUTHORIZED"
    wrong = await client.get("/metrics", headers={"X-API-Key": admin[:-2] + "xx"})
    assert wrong.status_code == 401
    forbidden = await client.get("/metrics", headers={"Authorization": f"Bearer {user}"})
    assert forbidden.status_code == 403
    assert forbidden.json()["error"]["code"] == "FORBIDDEN"
    allowed = await client.get("/metrics", headers={"Authorization": f"Bearer {admin}"})
    assert allowed.status_code == 200
    assert "clipper_jobs" in allowed.text

    for probe in ("/healthz", "/readyz"):
        assert (await client.get(probe)).status_code == 200, probe


async def test_with_keys_off_metrics_stay_open(client: httpx.AsyncClient) -> None:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert "clipper_jobs" in response.text
