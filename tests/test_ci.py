"""CI runs the README's two set-up commands as written (a fresh machine sees what CI sees).

Guards: .ci/run, .ci/readme_commands.py, README.md."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load_readme_commands():
    spec = importlib.util.spec_from_file_location("readme_commands", ROOT / ".ci" / "readme_commands.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ci_runs_exactly_the_readme_setup_commands():
    demo, tests = load_readme_commands().setup_commands((ROOT / "README.md").read_text())
    assert demo.startswith("pip install torch==2.13.0 ") and demo.endswith("deltapref demo --quick")
    assert tests.startswith("pip install torch==2.13.0 ") and tests.endswith("python -m pytest")
    ci = (ROOT / ".ci" / "run").read_text()
    assert "readme_commands.py README.md" in ci
    assert 'eval "$demo_command"' in ci and 'eval "$test_command"' in ci
    # nothing else in CI installs the package or runs the tests: only the README's lines do
    code = [line for line in ci.splitlines() if not line.lstrip().startswith("#")]
    assert not any("-m pytest" in line or "install torch" in line for line in code)


@pytest.mark.parametrize(
    "setup",
    [
        "```bash\npip install x && deltapref demo --quick\n```\n",  # one block only
        "```bash\na && deltapref demo\n```\n```bash\nb && python -m pytest\n```\n```bash\nc\n```\n",  # three
        "```bash\na\nb && deltapref demo\n```\n```bash\npython -m pytest\n```\n",  # two lines in a block
        "```bash\npython -m pytest\n```\n```bash\ndeltapref demo\n```\n",  # wrong order
    ],
)
def test_readme_setup_section_that_ci_cannot_follow_is_refused(setup):
    with pytest.raises(ValueError):
        load_readme_commands().setup_commands(f"# x\n\n## Set-up\n\n{setup}\n## Data\n\n```bash\nmore\n```\n")
