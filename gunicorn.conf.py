"""gunicorn settings for production; every value can be overridden on the command line."""

import os

# Loopback by default; a deployment behind nginx on another host sets BIND=0.0.0.0:8000.
bind = os.environ.get("BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# Threads give keep-alive connections and overlap database waits inside a worker.
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# Longer than the database connect (5 s) and statement (15 s) timeouts of config.py,
# so a slow database becomes a 503 answer rather than a killed worker.
timeout = 30
graceful_timeout = 30
keepalive = 5
accesslog = "-"
errorlog = "-"
# The app is imported before forking: workers share its memory pages.
preload_app = True
