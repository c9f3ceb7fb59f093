"""The terminal app. Only this package imports textual; the core never imports it.

`build_app(settings)` gives the app for a home folder's vault; tests hand it a vault access with
fake parts, or an open `Assistant`.
"""

from localrag.tui.app import LocalragApp, build_app

__all__ = ["LocalragApp", "build_app"]
