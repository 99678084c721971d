"""Running the server: event loop choice, startup, signals, graceful shutdown.

Must not import: anything of the project but `mlops_contracts`: no `pulumi` or its providers, `components`,
`specs`, `mlops` or `mlops_training` (it runs inside the serving container, whose image installs only
`mlops_serving` and the contracts)."""
from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable

from .app import App, create_app
from .httpserver import HttpServer
from .settings import Settings

log = logging.getLogger("mlops_serving")


async def serve(
    settings: Settings,
    *,
    stop: asyncio.Event | None = None,
    on_listening: Callable[[App, HttpServer], None] | None = None,
) -> bool:
    """Listen, load the model in the background, serve until SIGTERM/SIGINT (or `stop`), then drain.

    Returns True when every connection closed within the shutdown timeout.
    """
    loop = asyncio.get_running_loop()
    app = create_app(settings)
    server = HttpServer(app, settings)
    port = await server.start()
    log.info("listening on http://%s:%d (model %s, max_batch=%d, max_wait_us=%d, capture=%s)",
             settings.host, port, settings.model_path, settings.max_batch, settings.max_wait_us,
             settings.capture_dir or "off")
    stop = stop or asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # not the main thread (tests run the server in a thread) or not a Unix loop
    if on_listening is not None:
        on_listening(app, server)
    loader = asyncio.ensure_future(app.startup(loop))
    await stop.wait()
    server.begin_shutdown()
    clean = await server.drain()
    if not loader.done():
        # The load runs in a thread that cannot be interrupted; nothing is being served anyway.
        log.warning("shutdown while the model was still loading")
    await app.shutdown(loop)
    log.info("stopped")
    return clean


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop when installed (about 2x asyncio's throughput here), else asyncio's default loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run(settings: Settings) -> int:
    """Serve until a signal; the process exit status (0 after a clean shutdown)."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        clean = runner.run(serve(settings))
    return 0 if clean else 1
