/*
 * The benchmark's two small native helpers, one file (compiled by scripts/bench/bench.mjs with cc):
 *
 *   runner time TOOL ARGS...   forks, execs TOOL, waits with wait4(): prints "wall_ns user_us sys_us status"
 *                              (rusage of the whole tree the tool waited for, the exec'ed child included).
 *   runner check NAME=VALUE... the child the tools run: exits 0 when every NAME holds exactly VALUE in its
 *                              environment, else prints the names that differ (never values) and exits 3.
 *   runner hold NAME=VALUE...  the same check, then (when it passed) waits for a signal: the resident child.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int check(int argc, char **argv) {
  int bad = 0;
  for (int i = 2; i < argc; i++) {
    char *eq = strchr(argv[i], '=');
    if (!eq) return 2;
    *eq = '\0';
    const char *got = getenv(argv[i]);
    if (!got || strcmp(got, eq + 1) != 0) {
      if (bad < 5) fprintf(stderr, "check: %s %s\n", argv[i], got ? "differs" : "missing");
      bad++;
    }
  }
  return bad ? 3 : 0;
}

static int timed(char **argv) {
  struct timespec t0, t1;
  struct rusage ru;
  int status = 0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  pid_t pid = fork();
  if (pid < 0) return 1;
  if (pid == 0) {
    execv(argv[0], argv);
    _exit(127);
  }
  if (wait4(pid, &status, 0, &ru) < 0) return 1;
  clock_gettime(CLOCK_MONOTONIC, &t1);
  long long wall = (long long)(t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec);
  long long user = (long long)ru.ru_utime.tv_sec * 1000000LL + ru.ru_utime.tv_usec;
  long long sys = (long long)ru.ru_stime.tv_sec * 1000000LL + ru.ru_stime.tv_usec;
  printf("%lld %lld %lld %d\n", wall, user, sys, WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "check") == 0) return check(argc, argv);
  if (argc >= 2 && strcmp(argv[1], "hold") == 0) {
    int rc = check(argc, argv);
    if (rc != 0) return rc;
    for (;;) pause();
  }
  if (argc >= 3 && strcmp(argv[1], "time") == 0) return timed(argv + 2);
  fprintf(stderr, "usage: runner time TOOL ARGS... | runner check|hold NAME=VALUE...\n");
  return 2;
}
