"""Reading a TOML file into a pydantic model, with one clear error naming the file, entry and reason."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def load_toml_model(path: Path, model: type[M], error: type[Exception], what: str) -> M:
    """Parse `path` as `model`; raise `error` ("<path>: <what> not found", bad TOML, or each bad entry)."""
    try:
        return model.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise error(f"{path}: {what} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{path}: not valid TOML: {exc}") from None
    except ValidationError as exc:
        reasons = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise error(f"{path}: {reasons}") from None
