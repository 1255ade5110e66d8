#!/bin/bash
# gunicorn, celery and flask of the Dify api stand-in: reports on stdout what it was started with — for every
# environment variable its name and the sha256 of its value (never the value), for every *_FILE variable that
# names a file its mode, owner, file system type and content hash — then:
#   flask (MODE=job): exits with $STANDIN_EXIT_STATUS (default 0);
#   gunicorn, celery: prints "ready" and runs until SIGTERM, then exits with $STANDIN_TERM_STATUS (default 0).
#   STANDIN_ON_TERM=ignore installs no handler (as PID 1 the kernel then drops SIGTERM).
me=${0##*/}
say() { printf 'standin %s\n' "$*"; }

say "start app=$me pid=$$ uid=$(id -u) gid=$(id -g) pid1=$(cat /proc/1/comm) args=$*"
env -0 | while IFS= read -r -d '' kv; do
  name=${kv%%=*}
  say "env $name $(printf %s "${kv#*=}" | sha256sum | cut -c1-64)"
done
env -0 | while IFS= read -r -d '' kv; do
  name=${kv%%=*}
  path=${kv#*=}
  case $name in *_FILE) ;; *) continue ;; esac
  [ -f "$path" ] || continue
  say "file $name $path mode=$(stat -c %a "$path") uid=$(stat -c %u "$path") fs=$(stat -f -c %T "$path") sha256=$(sha256sum <"$path" | cut -c1-64)"
done

if [ "$me" = flask ]; then
  say "exit ${STANDIN_EXIT_STATUS:-0}"
  exit "${STANDIN_EXIT_STATUS:-0}"
fi
if [ "${STANDIN_ON_TERM:-exit}" != ignore ]; then
  trap 'say "signal TERM"; exit "${STANDIN_TERM_STATUS:-0}"' TERM
fi
say ready
while :; do
  sleep 3600 &
  wait $!
done
