"""`python -m pyframe` (the README's first command) runs and its two models learn."""
import re
import subprocess
import sys
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_python_m_pyframe_trains_both_idioms():
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-m", "pyframe"], capture_output=True, text=True,
                         env=env, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    accs = [float(a) for a in re.findall(r"validation accuracy ([0-9.]+)%", out.stdout)]
    assert len(accs) == 2, out.stdout
    # a linear model cannot beat about 50% on the spirals; both MLPs must
    assert min(accs) > 80.0, out.stdout
    assert "Total params: 4,547" in out.stdout


def test_readme_python_examples_run(tmp_path):
    src = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    blocks = re.findall(r"```python\n(.*?)```", src, re.S)
    assert len(blocks) >= 3
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    # the examples read top to bottom, as in a notebook: one process runs them all
    code = "\n".join(blocks)
    # in a scratch directory: the examples save files
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=300, cwd=tmp_path)
    assert out.returncode == 0, "README examples failed:\n%s" % out.stderr
    assert (tmp_path / "digits.safetensors").exists()
