# One image, two commands: the web app (default) and the scheduler: run one container with the
# command `points scheduler` beside the web containers (gunicorn runs none; a second scheduler
# only stands by on the database lease).
# Every command below is exercised by .ci/run's packaging step (wheel install, migrate, gunicorn).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    POINTS_AUTO_MIGRATE=false

RUN useradd --create-home --uid 10001 points
WORKDIR /srv/points
COPY pyproject.toml README.md ./
COPY points ./points
COPY api ./api
COPY migrations ./migrations
RUN pip install --no-cache-dir '.[server]' && rm -rf /srv/points/points /srv/points/api

USER points
WORKDIR /home/points
# POINTS_DATABASE_URL must point at PostgreSQL, e.g. postgresql://points@db/points
EXPOSE 8000
CMD ["sh", "-c", "points migrate && exec gunicorn --bind 0.0.0.0:8000 --workers 3 --access-logfile - api.wsgi:app"]
