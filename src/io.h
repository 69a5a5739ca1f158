/* io.h: the io layer's internals: file descriptor readiness (poll.c), the
 * offload pool (offload.c), sockets (socket.c, addr.c).
 *
 * Readiness is edge-triggered underneath: every descriptor is registered
 * once with EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET. Each direction of a
 * descriptor counts the edges the poller has seen (an event count); a
 * caller samples the count, tries its syscall, and on EAGAIN waits for the
 * count to move past its sample. An edge between the sample and the wait is
 * then never lost, and any number of processes can wait on one direction:
 * an edge wakes them all, and none consumes it for the others.
 */
#ifndef WEFT_IO_H
#define WEFT_IO_H

#include "chan.h"

/* The readiness state of one descriptor number. Type-stable: a block lives
 * as long as the runtime and is reused (gen moves on) when the number is
 * closed through weft and opened again. */
struct weft__fd;

/* A direction of a descriptor: WEFT_FD_READ or WEFT_FD_WRITE. */

/* A sample of a direction's event count, with the descriptor's generation. */
typedef uint64_t weft__fd_token;

/* The state of fd (not registered with the poller until a wait needs it).
 * 0, or -EBADF (fd < 0 or beyond the limit of open files), -ENOMEM,
 * -ESHUTDOWN (the io layer is not running). */
int weft__fd_get(int fd, struct weft__fd **out);

/* The descriptor fd is new (socket, accept): whatever weft knew of an
 * earlier descriptor of that number is dropped (its waiters get -EBADF).
 * Cheap when nothing was known. */
void weft__fd_opened(int fd);

/* Samples direction dir of d, before the syscall it may wait after. */
weft__fd_token weft__fd_sample(struct weft__fd *d, int dir);

/* Waits until direction dir of d has seen an edge after sample (then the
 * caller retries its syscall), registering the descriptor with the poller
 * first if it was not. Returns 0, or -EBADF (closed or forgotten through
 * weft since the sample), -ETIMEDOUT, -ECANCELED, -ENOMEM, -EPERM (epoll
 * refuses the descriptor: a regular file, always ready). The caller has
 * run weft__kill_check (a process) at its entry. */
int weft__fd_await(struct weft__fd *d, int dir, weft__fd_token sample, int64_t deadline);

/* A read that got less than it asked for emptied the descriptor: it
 * notes the sample it took before (set_drained). A later read whose sample
 * is still that one (no edge since) can wait at once instead of trying a
 * syscall that would find nothing (weft__fd_drained), unless a hang-up or
 * an error was seen: that edge may have come before the sample. */
bool weft__fd_drained(struct weft__fd *d, weft__fd_token sample);
void weft__fd_set_drained(struct weft__fd *d, weft__fd_token sample);

/* What a socket call needs to know of d: whether recv/send work on it. */
bool weft__fd_not_socket(struct weft__fd *d);
void weft__fd_set_not_socket(struct weft__fd *d);

/* select.c: WEFT_CASE_FD. */
extern const struct weft__case_kind weft__fd_case_kind;

/* runtime.c: the io layer starts with the scheduler and stops after every
 * process has ended. */
int weft__io_start(void);
void weft__io_stop(void);

/* offload.c: started lazily by weft_offload; stop joins its threads. */
int weft__offload_init(unsigned max_threads);
void weft__offload_stop(void);

#endif
