"""Fixtures of the call-centre tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def made_prompts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The prompts, made once (espeak-ng) and shared by every controller and media host a test starts
    as a process of its own."""
    from callcenter.prompts import ensure_prompts

    folder = tmp_path_factory.mktemp("prompts")
    ensure_prompts(folder)
    return folder
