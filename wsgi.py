"""WSGI entry point: `gunicorn -c gunicorn.conf.py wsgi:app`."""

from runs_service import create_app

# Serving never migrates (deploy/start.sh runs `flask db upgrade` first): leaving Alembic
# out saves every gunicorn process its memory.
app = create_app(migrations=False)
