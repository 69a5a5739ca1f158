/* program.c: decoding fuzz inputs into programs (the format is in program.h). */
#include <stdlib.h>
#include <string.h>

#include "program.h"
#include "weft.h"

/* Byte i of the input, 0 past its end. */
static uint8_t at(const uint8_t *data, size_t size, size_t i)
{
    return i < size ? data[i] : 0;
}

void fz_decode(const uint8_t *data, size_t size, struct fz_program *p)
{
    memset(p, 0, sizeof *p);
    uint8_t h0 = at(data, size, 0);
    static const int schedules[4] = {WEFT_SCHEDULE_RANDOM, WEFT_SCHEDULE_PCT,
                                     WEFT_SCHEDULE_RANDOM, WEFT_SCHEDULE_THREADS};
    p->schedule = schedules[h0 & 3];
    p->workers = p->schedule == WEFT_SCHEDULE_THREADS ? 1 : 1 + ((h0 >> 2) & 3);
    p->twice = p->schedule != WEFT_SCHEDULE_THREADS && (h0 & 0x10);
    uint32_t seed = 0;
    for (int i = 0; i < 4; i++)
        seed |= (uint32_t)at(data, size, 1 + (size_t)i) << (8 * i);
    p->seed = (uint64_t)seed + 1;
    p->pct_depth = at(data, size, 5) % 8;
    p->pct_steps = at(data, size, 6) * 8u;
    uint8_t fail = at(data, size, 7);
    p->fail_alloc = fail & 0x80 ? 2u * (fail & 0x7f) + 1 : 0;
    for (int i = 0; i < FZ_SLOTS; i++) {
        unsigned c = at(data, size, 8 + (size_t)i) % 6;
        p->init_cap[i] = c == 0 ? -1 : (int)c - 1;
    }
    unsigned body = 0;
    for (size_t i = FZ_HEADER; i < size; i += FZ_OP_BYTES) {
        uint8_t code = at(data, size, i);
        struct fz_op op = {.op = code & 15, .m = code >> 4, .a = at(data, size, i + 1),
                           .b = at(data, size, i + 2)};
        if (op.op == FZ_END) {
            if (body + 1 < FZ_BODIES)
                body++;
            continue;
        }
        if (p->nops[body] < FZ_OPS)
            p->ops[body][p->nops[body]++] = op;
    }
}

static const char *const names[16] = {
    "end", "spawn", "make", "send", "recv", "close", "release", "retain",
    "select", "select-pri", "yield", "sleep", "join", "detach", "query", "exit"};

const char *fz_op_name(int op)
{
    return op >= 0 && op < 16 ? names[op] : "?";
}

void fz_print(const struct fz_program *p, FILE *f)
{
    static const char *const sched[3] = {"threads", "random", "pct"};
    fprintf(f, "schedule %s, %u worker(s), seed %llu, pct %u/%u, fail alloc %u%s\n",
            sched[p->schedule], p->workers, (unsigned long long)p->seed, p->pct_depth,
            p->pct_steps, p->fail_alloc, p->twice ? ", twice" : "");
    fprintf(f, "initial channels:");
    for (int i = 0; i < FZ_SLOTS; i++)
        fprintf(f, p->init_cap[i] < 0 ? " -" : " cap %d", p->init_cap[i]);
    fputc('\n', f);
    for (unsigned b = 0; b < FZ_BODIES; b++) {
        if (!p->nops[b])
            continue;
        fprintf(f, "body %u:\n", b);
        for (unsigned i = 0; i < p->nops[b]; i++) {
            const struct fz_op *o = &p->ops[b][i];
            fprintf(f, "  %2u %-10s m=%x a=%02x b=%02x\n", i, fz_op_name(o->op), o->m, o->a, o->b);
        }
    }
}

int fz_avoid(const char *bug)
{
    const char *list = getenv("FUZZ_AVOID");
    size_t n = strlen(bug);
    for (const char *p = list; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
        if (strncmp(p, bug, n) == 0 && (p[n] == ',' || p[n] == 0))
            return 1;
    return 0;
}
