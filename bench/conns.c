/* weft-bench-conns: holds N idle HTTP/1.1 keep-alive connections to a server on
 * 127.0.0.1 and measures the server's memory per idle connection (bench/http.sh).
 *
 *   weft-bench-conns --port P --n N [--pid PID] [--settle-ms MS] [--hold-ms MS]
 *
 * With --pid (the server's process id): one warm-up connection makes one request
 * and is closed; after MS ms (default 500) the server's VmRSS is read from
 * /proc/PID/status ("before"). Then N connections are opened, 64 at a time
 * (64 connect and send, then their 64 responses are read): each makes one GET
 * request and reads the whole response (status 200, Content-Length bytes of
 * body), so that the server's connection process has run and now waits for
 * the next request. All N stay open and idle. After MS ms
 * the server's VmRSS is read again ("after"), every connection is checked to be
 * still open (the server closed none), and the program prints one line on
 * stdout:
 *
 *     conns <N> <rss_before_bytes> <rss_after_bytes> <bytes_per_connection>
 *
 * with bytes_per_connection = (after - before) / N. Then it closes all N
 * (each close sends a FIN: every response was read, so no reset) and waits,
 * 10 s at most, until the server's count of open descriptors (/proc/PID/fd) is
 * back to what it was before: the server has seen every close and released its
 * side. Without --pid it only opens the N connections, holds them --hold-ms ms
 * (default 0) and closes them.
 *
 * The soft RLIMIT_NOFILE is raised to the hard limit (any user may); N + 16
 * descriptors must fit in it. Exit status: 0 on success, 1 on a failure
 * (connect, a bad response, a connection the server closed, descriptors not
 * released), 2 on a usage error. Needs only libc (Linux).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("weft-bench-conns: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void usage(void) {
    fputs("usage: weft-bench-conns --port P --n N [--pid PID] [--settle-ms MS] [--hold-ms MS]\n", stderr);
    exit(2);
}

static long parse_long(const char *flag, const char *s, long min, long max) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) {
        fprintf(stderr, "weft-bench-conns: %s needs an integer in [%ld, %ld], got '%s'\n", flag, min, max, s);
        exit(2);
    }
    return v;
}

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void sleep_ms(long ms) {
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&t, &t) == -1 && errno == EINTR) {}
}

/* The server's VmRSS in bytes. */
static long long vm_rss(long pid) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    FILE *f = fopen(path, "r");
    if (!f) die("cannot open %s: %s", path, strerror(errno));
    long long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %lld kB", &kb) == 1) break;
    fclose(f);
    if (kb < 0) die("no VmRSS line in %s", path);
    return kb * 1024;
}

/* The server's number of open descriptors. */
static long open_fds(long pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/fd", pid);
    DIR *d = opendir(path);
    if (!d) die("cannot open %s: %s", path, strerror(errno));
    long n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

static struct sockaddr_in server;
static char request[128];
static size_t request_len;

/* Connects and sends one GET; returns the socket. */
static int connect_and_send(long i) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket (connection %ld): %s", i, strerror(errno));
    struct timeval tv = {10, 0}; /* a server that does not answer in 10 s fails the run */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&server, sizeof server) == -1)
        die("connect (connection %ld): %s", i, strerror(errno));
    for (size_t off = 0; off < request_len;) {
        ssize_t k = send(fd, request + off, request_len - off, MSG_NOSIGNAL);
        if (k < 0) {
            if (errno == EINTR) continue;
            die("send (connection %ld): %s", i, strerror(errno));
        }
        off += (size_t)k;
    }
    return fd;
}

/* Reads the whole response to the GET sent on fd (connection i). */
static void read_response(int fd, long i) {
    char buf[4096];
    size_t have = 0;
    char *eoh = NULL;
    long body = -1;
    for (;;) {
        if (!eoh) {
            buf[have] = 0;
            eoh = strstr(buf, "\r\n\r\n");
            if (eoh) {
                if (strncmp(buf, "HTTP/1.1 200", 12) != 0) {
                    char *eol = strstr(buf, "\r\n");
                    die("connection %ld: status line '%.*s', want HTTP/1.1 200", i, (int)(eol - buf), buf);
                }
                for (char *h = strstr(buf, "\r\n") + 2; h < eoh; h = strstr(h, "\r\n") + 2)
                    if (strncasecmp(h, "Content-Length:", 15) == 0) body = strtol(h + 15, NULL, 10);
                if (body < 0) die("connection %ld: no Content-Length in the response", i);
            }
        }
        if (eoh && have >= (size_t)(eoh + 4 - buf) + (size_t)body) {
            if (have > (size_t)(eoh + 4 - buf) + (size_t)body)
                die("connection %ld: more bytes than the response", i);
            return;
        }
        if (have == sizeof buf - 1) die("connection %ld: response longer than %zu bytes", i, sizeof buf - 1);
        ssize_t k = recv(fd, buf + have, sizeof buf - 1 - have, 0);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) die("recv (connection %ld): %s", i, strerror(errno));
        if (k == 0) die("connection %ld: closed by the server before the end of the response", i);
        have += (size_t)k;
    }
}

int main(int argc, char **argv) {
    long port = -1, n = -1, pid = 0, settle_ms = 500, hold_ms = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc) usage();
        const char *v = argv[++i];
        if (!strcmp(a, "--port")) port = parse_long(a, v, 1, 65535);
        else if (!strcmp(a, "--n")) n = parse_long(a, v, 1, 10000000);
        else if (!strcmp(a, "--pid")) pid = parse_long(a, v, 1, 1L << 30);
        else if (!strcmp(a, "--settle-ms")) settle_ms = parse_long(a, v, 0, 600000);
        else if (!strcmp(a, "--hold-ms")) hold_ms = parse_long(a, v, 0, 86400000);
        else usage();
    }
    if (port < 0 || n < 0) usage();

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && (rlim_t)n + 16 > rl.rlim_cur) {
        fprintf(stderr, "weft-bench-conns: %ld connections need %ld descriptors; the hard limit is %llu\n",
                n, n + 16, (unsigned long long)rl.rlim_max);
        exit(2);
    }

    server.sin_family = AF_INET;
    server.sin_port = htons((uint16_t)port);
    server.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    request_len = (size_t)snprintf(request, sizeof request, "GET / HTTP/1.1\r\nHost: 127.0.0.1:%ld\r\n\r\n", port);

    long long before = 0;
    long fds_before = 0;
    if (pid) {
        int fd = connect_and_send(-1); /* the warm-up connection */
        read_response(fd, -1);
        close(fd);
        sleep_ms(settle_ms);
        before = vm_rss(pid);
        fds_before = open_fds(pid);
    }

    int *fds = malloc((size_t)n * sizeof *fds);
    if (!fds) die("out of memory");
    double t0 = now_ms();
    /* In batches of 64: connect and send on each, then read the 64 responses (fast, and
     * far below the server's accept backlog). */
    for (long i = 0; i < n; i += 64) {
        long end = i + 64 < n ? i + 64 : n;
        for (long j = i; j < end; j++) fds[j] = connect_and_send(j);
        for (long j = i; j < end; j++) read_response(fds[j], j);
    }
    double t_open = now_ms() - t0;

    if (pid) {
        sleep_ms(settle_ms);
        long long after = vm_rss(pid);
        long fds_open = open_fds(pid);
        /* Still open: no EOF (nor an error) is waiting on any of them. */
        long closed = 0;
        for (long i = 0; i < n; i++) {
            char c;
            ssize_t k = recv(fds[i], &c, 1, MSG_PEEK | MSG_DONTWAIT);
            if (!(k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))) closed++;
        }
        if (closed) die("%ld of %ld idle connections were closed (or written to) by the server", closed, n);
        printf("conns %ld %lld %lld %.0f\n", n, before, after, (double)(after - before) / (double)n);
        fflush(stdout);
        fprintf(stderr, "weft-bench-conns: %ld connections opened in %.0f ms; server fds %ld -> %ld\n",
                n, t_open, fds_before, fds_open);
    } else {
        sleep_ms(hold_ms);
    }

    for (long i = 0; i < n; i++)
        if (close(fds[i]) == -1) die("close (connection %ld): %s", i, strerror(errno));
    free(fds);

    if (pid) {
        double t1 = now_ms();
        long fds_now;
        while ((fds_now = open_fds(pid)) > fds_before) {
            if (now_ms() - t1 > 10000)
                die("the server still has %ld descriptors open 10 s after the close (%ld before)", fds_now, fds_before);
            sleep_ms(10);
        }
        fprintf(stderr, "weft-bench-conns: all %ld closed; server fds back to %ld in %.0f ms\n",
                n, fds_now, now_ms() - t1);
    }
    return 0;
}
