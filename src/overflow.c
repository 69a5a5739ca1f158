/* overflow.c: names the process whose stack overflowed, then aborts.
 *
 * A fault in a stack's guard page raises SIGSEGV on the overflowing stack,
 * which has no room left, so each worker thread has an alternate signal stack.
 * The handler only uses async-signal-safe calls. A fault that is not a weft
 * stack overflow goes to the handler that was installed before weft's (or to
 * the default action: the fault repeats with it and the program dies).
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fault.h"
#include "internal.h"

enum { ALTSTACK_SIZE = 64 * 1024 };

static struct sigaction old_segv, old_bus;
static bool installed;

/* Appends text to a buffer: async-signal-safe formatting. */
struct out {
    char buf[256];
    size_t len;
};

static void put_str(struct out *o, const char *s)
{
    while (*s && o->len < sizeof o->buf - 1)
        o->buf[o->len++] = *s++;
}

static void put_num(struct out *o, unsigned long long v, unsigned base)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    while (n > 0 && o->len < sizeof o->buf - 1)
        o->buf[o->len++] = tmp[--n];
}

static void report(struct weft__worker *w, struct weft__proc *p)
{
    struct out o = {.len = 0};
    put_str(&o, "weft: stack overflow in process \"");
    if (p->name[0]) {
        put_str(&o, p->name);
    } else {
        put_str(&o, "fn@0x");
        put_num(&o, (uintptr_t)p->fn, 16);
    }
    put_str(&o, "\" (pid 0x");
    put_num(&o, p->pid, 16);
    put_str(&o, ", worker ");
    put_num(&o, w->id, 10);
    put_str(&o, ", stack ");
    put_num(&o, weft__stack_class_size(p->stack_class), 10);
    put_str(&o, " bytes)\n");
    ssize_t ignored = write(STDERR_FILENO, o.buf, o.len);
    (void)ignored;
}

static void chain(int sig, siginfo_t *si, void *uctx)
{
    struct sigaction *old = sig == SIGBUS ? &old_bus : &old_segv;
    if (old->sa_flags & SA_SIGINFO) {
        old->sa_sigaction(sig, si, uctx);
    } else if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN) {
        old->sa_handler(sig);
    } else {
        /* Default action: it happens when the faulting instruction reruns. */
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        sigaction(sig, &dfl, NULL);
    }
}

static void on_fault(int sig, siginfo_t *si, void *uctx)
{
    struct weft__worker *w = weft__worker_current();
    struct weft__proc *p = w ? w->current : NULL;
    if (p && p->stack_lo) {
        char *guard = p->stack_lo;
        char *addr = si->si_addr;
        if (addr >= guard && addr < guard + WEFT__PAGE) {
            report(w, p);
            abort();
        }
    }
    chain(sig, si, uctx);
}

int weft__overflow_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSEGV, &sa, &old_segv) != 0)
        return -EINVAL;
    if (sigaction(SIGBUS, &sa, &old_bus) != 0) {
        sigaction(SIGSEGV, &old_segv, NULL);
        return -EINVAL;
    }
    installed = true;
    return 0;
}

void weft__overflow_uninstall(void)
{
    if (!installed)
        return;
    sigaction(SIGSEGV, &old_segv, NULL);
    sigaction(SIGBUS, &old_bus, NULL);
    installed = false;
}

/* Gives the calling worker thread its alternate signal stack. Returns 0, or
 * -ENOMEM with nothing held: the thread can run without one, but then an
 * overflow on it kills the program with a plain SIGSEGV, unreported. */
int weft__overflow_stack_alloc(struct weft__worker *w)
{
    void *mem = weft__fault_mmap(NULL, ALTSTACK_SIZE, PROT_READ | PROT_WRITE,
                                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        return -ENOMEM;
    w->altstack = mem;
    return 0;
}

void weft__overflow_stack_free(struct weft__worker *w)
{
    if (w->altstack)
        weft__fault_munmap(w->altstack, ALTSTACK_SIZE);
    w->altstack = NULL;
}

void weft__overflow_thread_init(struct weft__worker *w)
{
    stack_t ss = {.ss_sp = w->altstack, .ss_size = ALTSTACK_SIZE, .ss_flags = 0};
    /* Fails only for a stack too small or in use, neither of which this is. */
    if (w->altstack)
        sigaltstack(&ss, NULL);
}

void weft__overflow_thread_term(struct weft__worker *w)
{
    stack_t ss = {.ss_sp = NULL, .ss_size = 0, .ss_flags = SS_DISABLE};
    if (w->altstack)
        sigaltstack(&ss, NULL);
}
