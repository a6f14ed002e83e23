/* spawn-batch - the floor of a batch runner that starts a process per job:
 * runs PROGRAM N times, P at a time, each with posix_spawnp (vfork + exec
 * inside glibc) and waitpid, no shell, no output captured. bench/run times
 * `ember run` against it.
 * Usage: spawn-batch N P PROGRAM [ARG]...; exit status 0, or 1 if a job
 * could not start or failed. */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

extern char **environ;

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: spawn-batch N P PROGRAM [ARG]...\n");
        return 2;
    }
    long n = atol(argv[1]), p = atol(argv[2]), started = 0, running = 0;
    int failed = 0;
    if (n < 0 || p < 1) return 2;
    while (started < n || running > 0) {
        while (started < n && running < p) {
            pid_t pid;
            if (posix_spawnp(&pid, argv[3], NULL, NULL, argv + 3, environ) != 0) return 1;
            started++, running++;
        }
        int st;
        if (wait(&st) < 0) return 1;
        running--;
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) failed = 1;
    }
    return failed;
}
