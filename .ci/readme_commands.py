"""Print the two set-up commands of README.md, one a line: the demo, then the tests.

They are the ```bash blocks of the README's "## Set-up" section; anything else there (a third
block, a block of several lines, a missing one) is an error, so CI fails when README and CI
could run different commands.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

SECTION = re.compile(r"^## Set-up\b.*?$(.*?)(?=^## |\Z)", re.M | re.S)
BLOCK = re.compile(r"^```bash\n(.*?)^```", re.M | re.S)


def setup_commands(readme: str) -> list[str]:
    """The README's set-up commands, in order; raises ValueError unless exactly two one-liners."""
    section = SECTION.search(readme)
    if section is None:
        raise ValueError("README.md has no '## Set-up' section")
    blocks = [block.strip() for block in BLOCK.findall(section.group(1))]
    if len(blocks) != 2 or any("\n" in block for block in blocks):
        raise ValueError(f"README.md's Set-up section must hold exactly two one-line bash blocks, found {blocks}")
    demo, tests = blocks
    if "deltapref demo" not in demo or "pytest" not in tests:
        raise ValueError(f"README.md's set-up commands must be the demo, then the tests: {blocks}")
    return blocks


if __name__ == "__main__":
    try:
        print("\n".join(setup_commands(Path(sys.argv[1]).read_text(encoding="utf-8"))))
    except (OSError, ValueError) as error:
        sys.exit(f"readme_commands: {error}")
