"""Which typed keys hold the app's parts? One place, so handlers and workers agree."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from inlet_bridge.clock import Clock
    from inlet_bridge.domain.config import HotelsConfig
    from inlet_bridge.group_commit import GroupCommitter
    from inlet_bridge.metrics import Metrics
    from inlet_bridge.settings import Settings
    from inlet_bridge.store.db import Database
    from inlet_bridge.workers.runtime import Runtime

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
HOTELS: web.AppKey[HotelsConfig] = web.AppKey("hotels")
CLOCK: web.AppKey[Clock] = web.AppKey("clock")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
DATABASE: web.AppKey[Database] = web.AppKey("database")
COMMITTER: web.AppKey[GroupCommitter] = web.AppKey("committer")
RUNTIME: web.AppKey[Runtime] = web.AppKey("runtime")
REQUEST_ID: web.RequestKey[str] = web.RequestKey("request_id", str)
