"""Rental events waiting for Kafka: written with the state change they announce (a transactional outbox)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('gateway', '0008_rental_budgets'),
    ]

    operations = [
        migrations.CreateModel(
            name='RentalEventRecord',
            fields=[
                ('id', models.BigAutoField(primary_key=True, serialize=False)),
                ('event', models.JSONField(help_text='The rental-event/1 record, without its sequence.')),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('rental', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='unsent_events', to='gateway.rental')),
            ],
        ),
    ]
