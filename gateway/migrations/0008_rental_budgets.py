"""Users' own budgets for their rentals, per hour and in total."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('gateway', '0007_rental_credentials'),
    ]

    operations = [
        migrations.CreateModel(
            name='RentalBudget',
            fields=[
                ('user', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='rental_budget', serialize=False, to='gateway.user')),
                ('budget_per_hour', models.DecimalField(decimal_places=6, max_digits=14, null=True)),
                ('budget_total', models.DecimalField(decimal_places=6, max_digits=14, null=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
            ],
        ),
    ]
