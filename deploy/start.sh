#!/bin/sh
# Production start: bring the database schema up to date, then become gunicorn.
# exec hands this process to gunicorn, so TERM (graceful stop) and HUP (reload)
# from the process manager reach it directly. A failed migration stops the start.
set -eu
cd "$(dirname "$0")/.."
if [ -x .venv/bin/gunicorn ]; then
    PATH="$PWD/.venv/bin:$PATH"
fi
# gunicorn reads WEB_CONCURRENCY itself, before gunicorn.conf.py, and a bad value
# would end in its traceback: check it here, as gunicorn.conf.py checks the others.
case "${WEB_CONCURRENCY-2}" in
    "" | *[!0-9]* | 0 | 0*)
        echo "Error: WEB_CONCURRENCY must be a whole number >= 1, not '${WEB_CONCURRENCY}'." >&2
        exit 2
        ;;
esac
flask --app runs_service db upgrade
exec gunicorn -c gunicorn.conf.py wsgi:app
