/* stress_account.c: what the stress scenarios share to keep their accounts:
 * failure records and counters, memory that outlives a hang, the ledger,
 * and spawns, joins and channels that count and check what they do. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "stress.h"

/* ---- failures and counters ------------------------------------------------------- */

static void vfail(struct stress_ctx *c, uint64_t n, const char *fmt, va_list ap)
{
    atomic_fetch_add_explicit(&c->failures, n, memory_order_relaxed);
    if (atomic_exchange(&c->first_claimed, 1) != 0)
        return;
    vsnprintf(c->first, sizeof c->first, fmt, ap);
    atomic_store(&c->first_ready, 1);
}

void stress_fail(struct stress_ctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(c, 1, fmt, ap);
    va_end(ap);
}

void stress_flaw(struct stress_ctx *c, int counter, uint64_t n, const char *fmt, ...)
{
    atomic_fetch_add_explicit(&c->count[counter], n, memory_order_relaxed);
    va_list ap;
    va_start(ap, fmt);
    vfail(c, n, fmt, ap);
    va_end(ap);
}

bool stress_rc(struct stress_ctx *c, int rc, int expected, const char *what)
{
    if (rc == expected)
        return true;
    stress_fail(c, "%s returned %d (%s), expected %d (%s)", what, rc, weft_strerror(rc), expected,
                weft_strerror(expected));
    return false;
}

void stress_flush(struct stress_ctx *c, uint64_t local[C_COUNT])
{
    for (int i = 0; i < C_COUNT; i++)
        if (local[i]) {
            atomic_fetch_add_explicit(&c->count[i], local[i], memory_order_relaxed);
            local[i] = 0;
        }
}

bool stress_msg_check(struct stress_ctx *c, const struct stress_msg *m, uint32_t nfrom,
                      uint32_t nseq)
{
    if (m->from < nfrom && m->seq < nseq && m->tag == stress_msg_make(c, m->from, m->seq).tag)
        return true;
    stress_flaw(c, C_CORRUPT, 1, "corrupt message: from %u (of %u), seq %u (of %u), tag %#llx",
                m->from, nfrom, m->seq, nseq, (unsigned long long)m->tag);
    return false;
}

/* ---- memory ------------------------------------------------------------------------ */

struct stress_block {
    struct stress_block *next;
    max_align_t data[];
};

void *stress_alloc(struct stress_ctx *c, size_t n, size_t size)
{
    struct stress_block *b = NULL;
    if (size == 0 || n <= (SIZE_MAX - sizeof *b) / size)
        b = calloc(1, sizeof *b + n * size);
    if (!b) {
        stress_fail(c, "no memory for %zu times %zu bytes", n, size);
        return NULL;
    }
    b->next = atomic_load(&c->blocks);
    while (!atomic_compare_exchange_weak(&c->blocks, &b->next, b))
        ;
    return b->data;
}

void stress_free_all(struct stress_ctx *c)
{
    for (struct stress_block *b = atomic_load(&c->blocks), *next; b; b = next) {
        next = b->next;
        free(b);
    }
}

/* ---- the ledger -------------------------------------------------------------------- */

bool stress_ledger_init(struct stress_ctx *c, struct stress_ledger *l, uint64_t bits)
{
    l->bits = bits;
    l->words = stress_alloc(c, bits / 64 + 1, sizeof *l->words);
    return l->words != NULL;
}

uint64_t stress_ledger_marked(struct stress_ledger *l, uint64_t from, uint64_t to)
{
    uint64_t n = 0;
    while (from < to && (from & 63))
        n += (atomic_load_explicit(&l->words[from >> 6], memory_order_relaxed) >> (from & 63)) & 1,
            from++;
    for (; from + 64 <= to; from += 64)
        n += (uint64_t)__builtin_popcountll(atomic_load_explicit(&l->words[from >> 6],
                                                                 memory_order_relaxed));
    for (; from < to; from++)
        n += (atomic_load_explicit(&l->words[from >> 6], memory_order_relaxed) >> (from & 63)) & 1;
    return n;
}

/* ---- processes and channels ---------------------------------------------------------- */

weft_pid stress_spawn(struct stress_ctx *c, uint64_t local[C_COUNT], weft_proc_fn fn, void *arg,
                      int worker, const char *name, uint32_t index)
{
    char buf[WEFT_NAME_MAX];
    snprintf(buf, sizeof buf, "%s %u", name, index);
    weft_spawn_opts opts;
    weft_spawn_opts_init(&opts);
    opts.name = buf;
    if (worker >= 0)
        opts.worker = worker % (int)c->p->workers;
    weft_pid pid = 0;
    int rc = weft_spawn(&pid, fn, arg, &opts);
    if (!stress_rc(c, rc, 0, "weft_spawn"))
        return 0;
    local[C_SPAWNED]++;
    return pid;
}

bool stress_join(struct stress_ctx *c, uint64_t local[C_COUNT], weft_pid pid, intptr_t expected,
                 int64_t first_deadline)
{
    if (pid == 0)
        return false; /* its spawn failed, and said so */
    intptr_t r = -12345;
    int rc = -ETIMEDOUT;
    if (first_deadline != WEFT_FOREVER) {
        rc = weft_join(pid, &r, first_deadline);
        if (rc == -ETIMEDOUT)
            local[first_deadline == 0 ? C_POLLS : C_TIMEOUTS]++;
    }
    if (rc == -ETIMEDOUT)
        rc = weft_join(pid, &r, WEFT_FOREVER);
    if (!stress_rc(c, rc, 0, "weft_join"))
        return false;
    if (r != expected) {
        stress_fail(c, "a process returned %ld, expected %ld", (long)r, (long)expected);
        return false;
    }
    local[C_JOINED]++;
    return true;
}

weft_chan stress_chan(struct stress_ctx *c, size_t cap)
{
    weft_chan ch = 0;
    if (!stress_rc(c, weft_chan_make(&ch, sizeof(struct stress_msg), cap), 0, "weft_chan_make"))
        return 0;
    return ch;
}

void stress_chan_end(struct stress_ctx *c, weft_chan ch, bool closed)
{
    if (ch == 0)
        return;
    struct stress_msg m;
    int rc = weft_chan_recv(ch, &m, sizeof m, 0);
    if (rc == 0)
        stress_fail(c, "a message (from %u, seq %u) was left in a channel at the end", m.from,
                    m.seq); /* the ledger counts it lost too */
    else
        stress_rc(c, rc, closed ? -EPIPE : -ETIMEDOUT, "weft_chan_recv on an ended channel");
    stress_rc(c, weft_chan_len(ch), 0, "weft_chan_len at the end");
    stress_rc(c, weft_chan_release(ch), 0, "weft_chan_release");
}

void stress_shuffle(uint64_t *state, uint32_t *a, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = stress_below(state, i);
        uint32_t t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
}
