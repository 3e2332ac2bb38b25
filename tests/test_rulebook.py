"""The rulebook a user reads is in the repository (docs/rulebook.md): the README links it, it
gives every rulebook number the system has as a setting, and what it names as the place a rule is
implemented exists. Nothing a user's clone holds points outside the clone."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from aftersales.domain.settings import Rules

ROOT = Path(__file__).resolve().parents[1]
RULEBOOK = ROOT / "docs" / "rulebook.md"


def test_the_readme_links_the_rulebook_in_the_repository():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "](docs/rulebook.md)" in readme
    assert RULEBOOK.is_file()


def test_the_rulebook_gives_every_rule_number_the_system_has():
    text = RULEBOOK.read_text(encoding="utf-8")
    missing = [name for name in Rules.model_fields
               if f"AFTERSALES_RULE_{name.upper()}" not in text and f"`{name}`" not in text]
    assert not missing, f"rule settings the rulebook does not mention: {missing}"


def test_what_the_rulebook_names_as_the_implementation_exists():
    text = RULEBOOK.read_text(encoding="utf-8")
    named = set(re.findall(r"`((?:aftersales|config)/[\w./-]+)`", text))
    assert len(named) > 20  # every section says where its rule lives
    assert not [path for path in named if not (ROOT / path).exists()]


def test_no_file_of_the_product_points_outside_the_clone():
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    shipped = [path for path in tracked if not path.startswith(("tests/", ".ci/"))]
    outside = re.compile(r"\.\./shared|shared/domain/|/work/")
    pointing = [path for path in shipped
                if (ROOT / path).is_file() and outside.search((ROOT / path).read_text(encoding="utf-8", errors="replace"))]
    assert not pointing, f"these point at files a user's clone does not have: {pointing}"
