"""Rentals with their state, price snapshot and cost; agents, their actions; the reconciler's lease."""


import django.db.models.deletion
import uuid
from decimal import Decimal
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('gateway', '0005_orchestration'),
    ]

    operations = [
        migrations.CreateModel(
            name='Lease',
            fields=[
                ('name', models.CharField(max_length=64, primary_key=True, serialize=False)),
                ('holder', models.CharField(max_length=128)),
                ('expires_at', models.DateTimeField()),
            ],
        ),
        migrations.CreateModel(
            name='Agent',
            fields=[
                ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ('name', models.CharField(max_length=100)),
                ('budget_per_hour', models.DecimalField(decimal_places=6, max_digits=14)),
                ('budget_total', models.DecimalField(decimal_places=6, max_digits=14)),
                ('allowed_providers', models.JSONField(default=list)),
                ('allowed_gpu_types', models.JSONField(default=list)),
                ('active', models.BooleanField(default=True)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('key', models.ForeignKey(null=True, on_delete=django.db.models.deletion.CASCADE, related_name='agents', to='gateway.apikey')),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='agents', to='gateway.user')),
            ],
        ),
        migrations.CreateModel(
            name='Rental',
            fields=[
                ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ('idempotency_key', models.CharField(max_length=255, null=True)),
                ('provider', models.CharField(max_length=64)),
                ('offer_id', models.CharField(max_length=36)),
                ('provider_offer_id', models.CharField(max_length=255)),
                ('gpu_type', models.CharField(max_length=64, null=True)),
                ('gpu_count', models.PositiveIntegerField()),
                ('region', models.CharField(default='', max_length=128)),
                ('image', models.CharField(default='', max_length=255)),
                ('ssh_public_key', models.TextField(default='')),
                ('options', models.JSONField(default=dict, help_text='Provider options (names, never secrets).')),
                ('price_per_hour', models.DecimalField(decimal_places=6, max_digits=14)),
                ('currency', models.CharField(default='USD', max_length=3)),
                ('billing_granularity_s', models.PositiveIntegerField()),
                ('state', models.CharField(default='requested', max_length=16)),
                ('instance_id', models.CharField(default='', max_length=255)),
                ('failure_kind', models.CharField(default='', max_length=32)),
                ('failure_reason', models.TextField(default='')),
                ('pending_gpu_count', models.PositiveIntegerField(null=True)),
                ('last_error', models.TextField(default='')),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('started_at', models.DateTimeField(null=True)),
                ('ended_at', models.DateTimeField(null=True)),
                ('billed_before', models.DecimalField(decimal_places=6, default=Decimal('0'), max_digits=14)),
                ('stretch_started_at', models.DateTimeField(null=True)),
                ('final_cost', models.DecimalField(decimal_places=6, max_digits=14, null=True)),
                ('agent', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='rentals', to='gateway.agent')),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='rentals', to='gateway.user')),
            ],
        ),
        migrations.CreateModel(
            name='AgentAction',
            fields=[
                ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ('action_type', models.CharField(max_length=16)),
                ('params', models.JSONField(default=dict)),
                ('status', models.CharField(default='pending', max_length=16)),
                ('result', models.JSONField(null=True)),
                ('reason', models.TextField(default='')),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('agent', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='actions', to='gateway.agent')),
                ('rental', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='actions', to='gateway.rental')),
            ],
        ),
        migrations.AddIndex(
            model_name='rental',
            index=models.Index(fields=['state'], name='gateway_ren_state_c617a7_idx'),
        ),
        migrations.AddIndex(
            model_name='rental',
            index=models.Index(fields=['provider', 'state'], name='gateway_ren_provide_0cb2d7_idx'),
        ),
        migrations.AddConstraint(
            model_name='rental',
            constraint=models.UniqueConstraint(condition=models.Q(('idempotency_key__isnull', False)), fields=('user', 'idempotency_key'), name='one_rental_per_idempotency_key'),
        ),
    ]
