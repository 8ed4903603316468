"""The web application of `hotline serve`, built from the settings (one process, or each of the
processes of `hotline serve --workers N`, which uvicorn builds through `from_environment`)."""

from __future__ import annotations

from fastapi import FastAPI

from hotline.config import Settings, load_settings
from hotline.context import HotlineContext


def build_app(settings: Settings) -> FastAPI:
    from agent_ui.app import create_app

    ctx = HotlineContext.from_settings(settings)
    ctx.gazetteer  # noqa: B018 (a broken gazetteer stops the start with its message)
    if settings.callcenter.mode == "split":
        ctx.relay_events()
    return create_app(ctx, background=True)


def from_environment() -> FastAPI:
    """uvicorn's factory for each web process: the configuration named by $HOTLINE_CONFIG."""
    return build_app(load_settings())
