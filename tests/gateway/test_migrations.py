"""Data migrations do what they say on the rows an earlier release stored."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def back_to_the_latest() -> Iterator[None]:
    """Leave the database migrated to the latest state for the tests after these."""
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes("gateway"))


def migrate(target: str) -> object:
    executor = MigrationExecutor(connection)
    executor.migrate([("gateway", target)])
    executor.loader.build_graph()
    return executor.loader.project_state([("gateway", target)]).apps


def test_stored_emails_take_their_canonical_spelling_unless_two_would_collide() -> None:
    apps = migrate("0003_accounts_features_audit")
    User = apps.get_model("gateway", "User")  # type: ignore[attr-defined]
    full_width_ada = "".join(chr(ord(ch) + 0xFEE0) for ch in "ada")
    User.objects.create(email="Grace@Example.com", password="x")
    User.objects.create(email=f"{full_width_ada}@example.com", password="x")
    User.objects.create(email="ADA@example.com", password="x")
    apps = migrate("0004_canonical_emails")
    User = apps.get_model("gateway", "User")  # type: ignore[attr-defined]
    emails = set(User.objects.values_list("email", flat=True))
    assert "grace@example.com" in emails
    assert {f"{full_width_ada}@example.com", "ADA@example.com"} <= emails, "a collision is left to the operator"
