import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_ml_package_imports_without_django_and_without_torch_until_used():
    code = (
        "import sys\n"
        "import rewardmodels.ml as ml\n"
        "ml.config_from_dict({'epochs': 2})\n"
        "assert 'torch' not in sys.modules, 'importing the package or validating a config loads torch'\n"
        "ml.train, ml.load_scorer, ml.bradley_terry_loss, ml.cost_loss\n"
        "import rewardmodels.ml.trainer, rewardmodels.ml.scoring, rewardmodels.ml.data, rewardmodels.ml.metrics\n"
        "assert 'torch' in sys.modules\n"
        "assert callable(ml.train) and ml.train.__module__ == 'rewardmodels.ml.trainer'\n"
        "assert 'django' not in sys.modules, sorted(m for m in sys.modules if m.startswith('django'))\n"
        "print('ok')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
