/* The output benchmark's child: writes MIB mebibytes of 100-byte lines to stderr, in 64 KiB
 * writes, then exits 0. usage: spew MIB [text]
 * With "text", the lines look like an access log with varying numbers (pre-generated, 16
 * different buffers in turn), so that gzip has real work; without, every line is x's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BUFS 16

int main(int argc, char **argv) {
    long mib = argc > 1 ? atol(argv[1]) : 1024;
    int text = argc > 2 && strcmp(argv[2], "text") == 0;
    static char buf[BUFS][65500];
    unsigned long long seed = 88172645463325252ULL;
    for (int b = 0; b < BUFS; b++) {
        for (size_t i = 0; i < sizeof buf[b]; i += 100) {
            if (text) {
                seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17;
                char line[128];
                int n = snprintf(line, sizeof line,
                                 "GET /api/v1/items/%06llu?page=%llu 200 %llu.%03llums user=%08llx agent=bench",
                                 seed % 1000000, (seed >> 20) % 100, (seed >> 27) % 1000,
                                 (seed >> 37) % 1000, (seed >> 3) & 0xffffffffULL);
                memset(line + n, ' ', sizeof line - n);
                memcpy(buf[b] + i, line, 99);
            } else {
                memset(buf[b] + i, 'x', 99);
            }
            buf[b][i + 99] = '\n';
        }
        if (!text) break;
    }
    long long left = (long long)mib << 20;
    for (int b = 0; left > 0; b = text ? (b + 1) % BUFS : 0) {
        size_t n = left < (long long)sizeof buf[b] ? (size_t)left : sizeof buf[b];
        ssize_t w = write(2, buf[b], n);
        if (w <= 0) return 1;
        left -= w;
    }
    return 0;
}
