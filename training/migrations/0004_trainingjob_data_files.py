from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('training', '0003_trainingjob_prompt_sets_alter_trainingjob_kind'),
    ]

    operations = [
        migrations.AddField(
            model_name='trainingjob',
            name='data_files',
            field=models.JSONField(blank=True, default=list),
        ),
    ]
