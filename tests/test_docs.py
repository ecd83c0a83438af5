"""Docs that cannot drift: every setting and every CLI command and option is in the README."""

from __future__ import annotations

import re

import click
import pytest

from qa.cli import main
from qa.settings import Settings

from .conftest import PROJECT

README = (PROJECT / "README.md").read_text()


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_every_setting_is_documented(name):
    assert f"`QA_{name.upper()}`" in README


def _commands(group: click.Group, prefix: str = "qa"):
    for name, cmd in group.commands.items():
        yield f"{prefix} {name}", cmd
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, f"{prefix} {name}")


@pytest.mark.parametrize("path,cmd", list(_commands(main)), ids=lambda v: str(v))
def test_every_command_and_option_is_documented(path, cmd):
    if path.endswith(" list"):
        path = path.removesuffix(" list")  # `qa articles` lists by default
    assert path in README, f"{path} is not in the README"
    for param in cmd.params:
        for flag in param.opts:
            if flag.startswith("--"):
                assert re.search(re.escape(flag) + r"\b", README), f"{path} {flag} undocumented"


def test_readme_opens_with_the_two_commands():
    block = README.split("```sh\n", 1)[1].split("```", 1)[0].strip().splitlines()
    assert [line.split()[:2] for line in block] == [["make", "run"], ["make", "test"]]
