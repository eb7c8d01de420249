"""``callmetrics serve``: the application on uvicorn, stopped gracefully by SIGINT or SIGTERM.

uvicorn is the production ASGI server FastAPI is built for: an event loop (uvloop) and a C
HTTP parser (httptools) take the connections, and the synchronous route runs in its thread
pool, so the DuckDB queries of several requests run side by side. On SIGINT or SIGTERM it
stops accepting connections, lets in-flight requests finish, closes the warehouse pool and
the process exits 0.
"""

from __future__ import annotations

import argparse
import os
import signal
from dataclasses import replace
from types import FrameType

import uvicorn

from callmetrics.api.app import ApiSettings, create_app
from callmetrics.settings import API_CACHE_MB_ENV, API_POOL_SIZE_ENV, Settings


class _Server(uvicorn.Server):
    """uvicorn re-raises a captured SIGTERM after its graceful shutdown (so the process dies
    of the signal); a service manager expects exit status 0 after a clean stop."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        if sig in (signal.SIGINT, signal.SIGTERM):
            self._captured_signals.clear()


def run_serve(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    if args.pool_size is not None:
        settings = replace(settings, api_pool_size=args.pool_size)
    if args.cache_mb is not None:
        settings = replace(settings, api_cache_mb=args.cache_mb)
    common = dict(host=args.host, port=args.port, access_log=False, log_level="info",
                  timeout_graceful_shutdown=30, server_header=False)
    if args.workers > 1:
        # Each worker process builds its own application (and pool) from the environment:
        # the options reach the workers as the variables they stand for.
        os.environ[API_POOL_SIZE_ENV] = str(settings.api_pool_size)
        os.environ[API_CACHE_MB_ENV] = str(settings.api_cache_mb)
        uvicorn.run("callmetrics.api.app:create_app", factory=True, workers=args.workers,
                    **common)
        return 0
    config = uvicorn.Config(create_app(ApiSettings.from_settings(settings)), **common)
    _Server(config).run()
    return 0
