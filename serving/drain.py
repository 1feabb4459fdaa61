"""Graceful shutdown of one serving process: SIGTERM and SIGINT drain the app before uvicorn's own shutdown."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

__all__ = ["Drain"]

log = logging.getLogger("skymarket.serving")

Handler = Callable[[int, FrameType | None], Any]


class Drain:
    """Makes SIGTERM and SIGINT drain the app before uvicorn's own shutdown (installed by the app's lifespan).

    The first signal marks the services draining (/readyz: 503), then hands the signal to the handler that was
    there (uvicorn's: stop accepting, wait for in-flight requests, run the app's shutdown), at once or after
    `delay_s`. A second signal hands it over at once. sse-starlette 1.x (pinned through LangServe) patches
    uvicorn's handler to end every open stream the moment a signal arrives; draining lets them finish, so its
    exit event is held back while uvicorn's handler runs (a later sse-starlette without it changes nothing).

    Args:
        services: the app's services (`draining`).
        delay_s: how long requests are still taken after the first signal.
    """

    def __init__(self, services: Any, *, delay_s: float = 0.0) -> None:
        self.services = services
        self.delay_s = delay_s
        self._timer: threading.Timer | None = None

    def install(self) -> bool:
        """Chains onto the current SIGTERM and SIGINT handlers; False outside the main thread (an app served
        in a test's thread), where signals cannot be handled."""
        if threading.current_thread() is not threading.main_thread():
            return False
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(sig)
            if callable(previous):
                signal.signal(sig, self._handler(previous))
        return True

    def _handler(self, previous: Handler) -> Handler:
        def on_signal(sig: int, frame: FrameType | None) -> None:
            if self.services.draining:  # a second signal: stop waiting
                if self._timer is not None:
                    self._timer.cancel()
                    self._timer = None
                _hand_over(previous, sig, frame)
                return
            self.services.draining = True
            log.info("%s: draining (/readyz 503); taking requests for %.1f s more", signal.Signals(sig).name,
                     self.delay_s)
            if self.delay_s > 0:
                self._timer = threading.Timer(self.delay_s, _hand_over, (previous, sig, frame))
                self._timer.daemon = True
                self._timer.start()
            else:
                _hand_over(previous, sig, frame)

        return on_signal


def _hand_over(previous: Handler, sig: int, frame: FrameType | None) -> None:
    """Calls uvicorn's handler with sse-starlette's stream-ending exit event held back."""
    status = getattr(sys.modules.get("sse_starlette.sse"), "AppStatus", None)
    event = getattr(status, "should_exit_event", None)
    if status is not None:
        status.should_exit_event = None  # its handler sets this event: every open stream would end
    try:
        previous(sig, frame)
    finally:
        if status is not None:
            status.should_exit_event = event
            status.should_exit = False  # streams opened during the delay would end at their start
