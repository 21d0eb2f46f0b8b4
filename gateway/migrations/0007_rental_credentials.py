"""Which credentials a rental was made with: the platform's, or the user's own."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('gateway', '0006_rentals_agents'),
    ]

    operations = [
        migrations.AddField(
            model_name='rental',
            name='credentials',
            field=models.CharField(default='platform', max_length=16),
        ),
    ]
