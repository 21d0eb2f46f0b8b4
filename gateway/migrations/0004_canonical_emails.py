"""Accounts are unique by the canonical spelling of their email (NFKC, case-folded): rewrite the
addresses stored before that rule. Where two existing accounts collapse into one spelling, both
are left as they are (an operator decides which to keep); new look-alikes are refused."""

from django.db import migrations

from gpubroker.gateway.identity.emails import canonical_email


def canonicalise(apps, schema_editor):  # type: ignore[no-untyped-def]
    User = apps.get_model("gateway", "User")
    users = list(User.objects.only("pk", "email"))
    spellings: dict[str, list[int]] = {}
    for user in users:
        spellings.setdefault(canonical_email(user.email), []).append(user.pk)
    for user in users:
        canonical = canonical_email(user.email)
        if canonical != user.email and len(spellings[canonical]) == 1:
            User.objects.filter(pk=user.pk).update(email=canonical)


class Migration(migrations.Migration):
    dependencies = [("gateway", "0003_accounts_features_audit")]
    operations = [migrations.RunPython(canonicalise, migrations.RunPython.noop)]
