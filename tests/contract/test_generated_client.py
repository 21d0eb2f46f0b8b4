"""Anyone's generated SDK works: a client generated with openapi-python-client from the document a
production gateway serves builds, and a new user does with it what the README shows: sign up,
make an API key, list and page through every offer exactly once, meet the plan's 403 on ranking
(parsed as the error the document declares), and rank once an operator has moved them to Pro."""

from __future__ import annotations

import base64
import importlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from gpubroker.core.plugins import RegisteredProvider
from gpubroker.core.testkit.replay import ReplayServer
from tests.conftest import Services
from tests.integration.processes import (
    BIN,
    OPERATOR_KEY,
    gateway_process,
    get_json,
    production_env,
    run_worker,
    seed_credentials,
)

pytestmark = pytest.mark.integration

PACKAGE = "generated_gpubroker_client"  # not gpubroker_client: the project ships a package of that name


def generate(url: str, folder: Path) -> Any:
    """The client package generated from the served document, imported."""
    document = folder / "openapi.json"
    document.write_text(json.dumps(get_json(url + "/api/v2/openapi.json")))
    tools = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}  # its ruff post-hooks
    command = [BIN / "openapi-python-client", "generate", "--path", document, "--meta", "none"]
    result = subprocess.run(
        [*command, "--output-path", folder / PACKAGE], capture_output=True, text=True, env=tools, timeout=300
    )
    assert result.returncode == 0 and "Warning" not in result.stdout + result.stderr, result.stdout + result.stderr
    sys.path.insert(0, str(folder))
    try:
        return importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(folder))


def patiently(call: Any, **arguments: Any) -> Any:
    """A generated ``sync_detailed`` call, waiting out the plan's rate limit as a client should
    (``Retry-After``): a Free user paging through every offer goes past ten requests a second."""
    while True:
        answer = call(**arguments)
        if answer.status_code != 429:
            return answer
        time.sleep(float(answer.headers["retry-after"]))


def user_id_of(access_token: str) -> int:
    """The account id in a token's subject (``user:42``); reading a claim needs no key."""
    payload = access_token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return int(claims["sub"].removeprefix("user:"))


def test_a_generated_client_signs_up_makes_a_key_pages_through_offers_and_ranks(
    services: Services, vastai: RegisteredProvider, tmp_path: Path
) -> None:
    env = production_env(services, tmp_path)
    seed_credentials(services, vastai)
    with ReplayServer(vastai.adapter.recordings) as replay:
        polled = run_worker(env, "vastai", replay)
        assert polled.returncode == 0, polled.stderr
    with gateway_process(env) as url:
        sdk = generate(url, tmp_path)
        api = importlib.import_module(f"{PACKAGE}.api")
        auth, offers, admin = (
            importlib.import_module(f"{api.__name__}.{name}") for name in ("auth", "offers", "admin")
        )
        models = importlib.import_module(f"{PACKAGE}.models")
        for module in ("register", "create_api_key"):
            importlib.import_module(f"{auth.__name__}.{module}")
        for module in ("list_offers", "rank_offers"):
            importlib.import_module(f"{offers.__name__}.{module}")
        importlib.import_module(f"{admin.__name__}.set_user_plan")

        anonymous = sdk.Client(base_url=url, raise_on_unexpected_status=True)
        email = f"sdk-{os.getpid()}-{id(tmp_path)}@example.com"
        credentials = models.Credentials(email=email, password="a long enough password")
        tokens = auth.register.sync(client=anonymous, body=credentials)
        assert isinstance(tokens, models.TokenPair), tokens

        signed_in = sdk.AuthenticatedClient(base_url=url, token=tokens.access_token, raise_on_unexpected_status=True)
        new_key = auth.create_api_key.sync(client=signed_in, body=models.NewKeyBody(name="sdk"))
        assert isinstance(new_key, models.NewKey) and new_key.key.startswith("gpb_")

        keyed = sdk.AuthenticatedClient(
            base_url=url, token=new_key.key, prefix="", auth_header_name="X-API-Key", raise_on_unexpected_status=True
        )

        unset = importlib.import_module(f"{PACKAGE}.types").UNSET

        def page_after(cursor: str | None) -> Any:
            return patiently(offers.list_offers.sync_detailed, client=keyed, limit=20, cursor=cursor or unset).parsed

        page = page_after(None)
        assert isinstance(page, models.OfferPage) and page.total > 20
        seen = [offer.id for offer in page.items]
        while isinstance(page.next_cursor, str):
            page = page_after(page.next_cursor)
            assert isinstance(page, models.OfferPage)
            seen += [offer.id for offer in page.items]
        assert len(seen) == len(set(seen)) == page.total, "every offer exactly once"

        refused = patiently(offers.rank_offers.sync_detailed, client=keyed, w_price=0.7, w_performance=0.3)
        assert refused.status_code == 403 and isinstance(refused.parsed, models.Error)
        assert "pro" in refused.parsed.detail[0].message

        operator = sdk.AuthenticatedClient(
            base_url=url, token=OPERATOR_KEY, prefix="", auth_header_name="X-API-Key", raise_on_unexpected_status=True
        )
        body = models.PlanBody(plan=models.Plan.PRO)
        moved = admin.set_user_plan.sync(user_id_of(tokens.access_token), client=operator, body=body)
        assert isinstance(moved, models.UserOut) and moved.plan == models.Plan.PRO
        ranked = patiently(
            offers.rank_offers.sync_detailed, client=keyed, w_price=0.7, w_performance=0.3, limit=5
        ).parsed
        assert isinstance(ranked, models.RankingPage) and ranked.items
        closeness = [item.closeness for item in ranked.items]
        assert closeness == sorted(closeness, reverse=True)
