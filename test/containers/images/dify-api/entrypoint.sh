#!/bin/bash
# Stand-in for the /entrypoint.sh of Dify's api image, written for vaultrun's tests (not Dify's script): MODE
# picks the program and every branch execs it, so the program keeps this script's pid; the container's
# arguments reach it ("$@", for MODE=job).
set -e
case "${MODE:-api}" in
  api)
    exec gunicorn --bind "${DIFY_BIND_ADDRESS:-0.0.0.0}:${DIFY_PORT:-5001}" --workers "${SERVER_WORKER_AMOUNT:-1}" app:app
    ;;
  worker)
    exec celery -A app.celery worker -c "${CELERY_WORKER_AMOUNT:-1}" -Q "${CELERY_QUEUES:-dataset,mail}"
    ;;
  beat)
    exec celery -A app.celery beat
    ;;
  job)
    exec flask "$@"
    ;;
  *)
    echo "entrypoint: unknown MODE=${MODE} (api, worker, beat or job)" >&2
    exit 64
    ;;
esac
