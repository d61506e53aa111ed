/* The output benchmark's child: writes MIB mebibytes of 100-byte lines to stderr, in 64 KiB
 * writes, then exits 0. usage: spew MIB */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    long mib = argc > 1 ? atol(argv[1]) : 1024;
    static char buf[65500];
    for (size_t i = 0; i < sizeof buf; i += 100) {
        memset(buf + i, 'x', 99);
        buf[i + 99] = '\n';
    }
    long long left = (long long)mib << 20;
    while (left > 0) {
        size_t n = left < (long long)sizeof buf ? (size_t)left : sizeof buf;
        ssize_t w = write(2, buf, n);
        if (w <= 0) return 1;
        left -= w;
    }
    return 0;
}
