/* The bare limit for the restart rate: fork, exec the counting child, wait, for SECONDS seconds.
 * usage: forkloop SECONDS COUNT_BINARY FILE */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: forkloop SECONDS COUNT_BINARY FILE\n");
        return 2;
    }
    double end = now() + atof(argv[1]);
    long starts = 0;
    while (now() < end) {
        pid_t pid = fork();
        if (pid == 0) {
            char *args[] = {argv[2], argv[3], NULL};
            execv(argv[2], args);
            _exit(127);
        }
        int status;
        waitpid(pid, &status, 0);
        starts++;
    }
    printf("%ld\n", starts);
    return 0;
}
