/* The child of the signal-latency benchmark: prints "ready", then waits; its SIGTERM handler
 * writes CLOCK_MONOTONIC in nanoseconds to argv[1] and exits.
 * usage: sigchild FILE */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int out = -1;

static void on_term(int sig) {
    (void)sig;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    char buf[32];
    long long ns = (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
    int n = 0;
    char tmp[32];
    do {
        tmp[n++] = '0' + ns % 10;
        ns /= 10;
    } while (ns > 0);
    for (int i = 0; i < n; i++) buf[i] = tmp[n - 1 - i];
    buf[n++] = '\n';
    (void)write(out, buf, n);
    _exit(0);
}

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    out = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    printf("ready\n");
    fflush(stdout);
    for (;;) pause();
}
