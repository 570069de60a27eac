"""gunicorn settings for production; every value can be overridden on the command line.

Signals: TERM stops gracefully, HUP re-reads this file and replaces the workers
without dropping requests, TTIN/TTOU add or remove a worker.
"""

import os


def _whole_number(name: str, default: int) -> int:
    """An integer setting of at least 1 from the environment; a bad one stops with one line."""
    raw = os.environ.get(name, str(default))
    try:
        value = int(raw.strip())
    except ValueError:
        value = 0
    if value < 1:
        # SystemExit passes gunicorn's config loader without a traceback.
        raise SystemExit(f"Error: {name} must be a whole number >= 1, not {raw!r}.")
    return value


# Loopback by default: only nginx on the same host reaches the app, which is what
# makes its X-Forwarded-* headers trustworthy (deploy/nginx.conf). Behind nginx on
# another host, bind a private address (BIND=10.0.0.5:8000), never a public one.
bind = os.environ.get("BIND", "127.0.0.1:8000")
# Sizing (README, "Deployment"): about one worker per CPU core; each worker serves
# `threads` requests at once and holds at most as many PostgreSQL connections.
workers = _whole_number("WEB_CONCURRENCY", 2)
# Threads overlap database waits inside a worker and give direct clients keep-alive.
worker_class = "gthread"
threads = _whole_number("GUNICORN_THREADS", 4)
# Above the database timeouts of config.py (5 s to connect, 15 s per statement), so a
# stalled database turns into a 503 before anything else gives up. A gthread worker
# sends its heartbeat from its main loop: this catches a hung process, while slow
# requests are bounded by those database timeouts.
timeout = 30
# On TERM or HUP a worker stops accepting and finishes what it holds, for this long.
graceful_timeout = 30
keepalive = 5
# Access log on stdout, errors on stderr: the process manager collects both. With
# RUNS_PROXY_COUNT set, the client address (%(h)s) is the one ProxyFix resolved
# from X-Forwarded-For, not nginx's.
accesslog = "-"
errorlog = "-"
proc_name = "runs_service"
# Forwarded headers are trusted in one place, the app's ProxyFix (RUNS_PROXY_COUNT).
# gunicorn's own default would also believe X-Forwarded-Proto/-Ssl from any loopback
# peer whatever RUNS_PROXY_COUNT says, and answer 400 when two of them disagree.
secure_scheme_headers: dict[str, str] = {}
# gunicorn's control socket defaults to one path per user ($HOME/.gunicorn/gunicorn.ctl):
# a second instance on the host would take it over. Signals are the interface here.
control_socket_disable = True
# The app is imported before forking: workers share its memory pages. It opens no
# database connection at import, so none is shared across the fork. A code change
# therefore needs a restart; HUP only re-reads this file and renews the workers.
preload_app = True


def post_fork(server, worker):
    """Move everything loaded before the fork out of the garbage collector's sight.

    With preload_app the application, its modules and their caches already exist; left
    to the collector, every full collection walks them again. Frozen, they cost nothing
    (the effect on read latency is in BENCHMARKS.md).
    """
    import gc

    gc.freeze()
