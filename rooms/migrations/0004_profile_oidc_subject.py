from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('rooms', '0003_api_tokens'),
    ]

    operations = [
        migrations.AddField(
            model_name='profile',
            name='oidc_subject',
            field=models.CharField(blank=True, default=None, max_length=255, null=True, unique=True),
        ),
    ]
