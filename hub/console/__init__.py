"""The web console for operators, auditors and agency staff, served by the hub at ``/console/``
(README, "Web console"): server-rendered HTML over the same functions as the API."""

from hub.console.pages import add_console, create_console

__all__ = ["add_console", "create_console"]
