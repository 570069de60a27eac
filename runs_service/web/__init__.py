"""The dashboard blueprint: pages for people (SPEC §8)."""

from runs_service.web.views import bp, register_dashboard

__all__ = ["bp", "register_dashboard"]
