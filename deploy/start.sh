#!/bin/sh
# Production start: bring the database schema up to date, then become gunicorn.
# exec hands this process to gunicorn, so TERM (graceful stop) and HUP (reload)
# from the process manager reach it directly. A failed migration stops the start.
set -eu
cd "$(dirname "$0")/.."
if [ -x .venv/bin/gunicorn ]; then
    PATH="$PWD/.venv/bin:$PATH"
fi
flask --app runs_service db upgrade
exec gunicorn -c gunicorn.conf.py wsgi:app
