/* The child of the restart-rate benchmark: appends one byte to argv[1] and exits 1 at once.
 * The file's size after the run is the number of starts. */
#include <fcntl.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc > 1) {
        int fd = open(argv[1], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (fd >= 0) {
            (void)write(fd, "x", 1);
        }
    }
    return 1;
}
