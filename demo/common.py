"""Gradio-side helpers every tab shares: error guarding, who is signed in, the ZeroGPU decorator, queue settings.

The tabs (`demo/tabs/`) import from here and from `handlers.py`, never from `studio.py` (which imports the tabs).
"""

from __future__ import annotations

import functools
import inspect
import logging

import gradio as gr

from reason_iad.errors import UserError

LOG = logging.getLogger("reason_iad.studio")
KNOWLEDGE_WRITE = {"concurrency_id": "kb-write", "concurrency_limit": 1}  # writes go one at a time
MODEL_RUN = {"concurrency_id": "model", "concurrency_limit": 1}  # one model run at a time on this replica


def gpu(duration):
    """ZeroGPU's decorator with a duration computed per request (`duration(*args, **kwargs)` -> seconds).

    A no-op off Spaces' ZeroGPU hardware (the `spaces` package itself says so).
    """
    try:
        import spaces
    except ImportError:  # pragma: no cover - spaces is pinned
        return lambda fn: fn
    return spaces.GPU(duration=duration)


def on_zero_gpu() -> bool:
    """True on a ZeroGPU Space."""
    try:
        import spaces.config
    except ImportError:  # pragma: no cover - spaces is pinned
        return False
    return bool(spaces.config.Config.zero_gpu)


def _user_message(err: Exception) -> gr.Error:
    """The message the user sees for an exception; anything but `UserError` is logged with its traceback."""
    if isinstance(err, gr.Error):
        return err
    if isinstance(err, UserError):
        return gr.Error(str(err), print_exception=False)
    LOG.exception("studio handler failed")
    return gr.Error(
        f"Something went wrong ({type(err).__name__}); details are in the server log.", print_exception=False
    )


def guarded(fn):
    """Turn `UserError` into a Gradio error message and anything else into a short, logged message.

    Generator functions (streaming handlers) stay generator functions, so Gradio still streams them.
    """
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def streaming(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except Exception as err:  # noqa: BLE001 - the user sees a message, the log keeps the traceback
                raise _user_message(err) from None

        return streaming

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as err:  # noqa: BLE001 - the user sees a message, the log keeps the traceback
            raise _user_message(err) from None

    return wrapper


def author_of(request: gr.Request | None, profile: gr.OAuthProfile | None) -> str | None:
    """Who is signed in: the Hugging Face account (OAuth on a Space) or else the password login's user name."""
    if profile is not None:
        return profile.username
    return getattr(request, "username", None)
