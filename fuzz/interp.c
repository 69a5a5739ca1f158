/* interp.c: the interpreter of fuzz programs: each process runs its body's
 * ops in order and returns when they are done or when a call was canceled
 * (the runtime is stopping: docs/api.md asks processes to return then). */
#include "interp.h"
#include "ops.h"

/* Runs op o in process proc; true: the process must return. */
static bool exec(int proc, const struct fz_op *o)
{
    int slot = o->a & 3;
    int ci = fz_m.slot[slot];
    switch (o->op) {
    case FZ_SPAWN: {
        int workers = (int)fz_m.prog->workers;
        return fz_spawn(proc, 1 + o->a % 7, o->m & 1, o->m & 2, o->m & 4,
                        o->m & 8 ? o->b % (workers + 1) : -1);
    }
    case FZ_MAKE: return fz_make(proc, slot, (o->a >> 2) % 5, o->m % 4 < 3 ? o->m % 4 : 0);
    case FZ_SEND: return fz_send(proc, ci, (o->a >> 2) & 3, o->m & 1);
    case FZ_RECV: return fz_recv(proc, ci, (o->a >> 2) & 3, o->m & 1);
    case FZ_CLOSE: return fz_close(proc, ci);
    case FZ_RELEASE: return fz_release(proc, ci);
    case FZ_RETAIN: return fz_retain(proc, ci);
    case FZ_SELECT:
    case FZ_SELECT_PRI:
        return fz_select(proc, (o->m & 3) + 1, o->a | (unsigned)o->b << 8, (o->m >> 2) & 3,
                         o->op == FZ_SELECT ? WEFT_SELECT_FAIR : WEFT_SELECT_PRIORITY);
    case FZ_YIELD: return fz_yield(proc);
    case FZ_SLEEP: return fz_sleep(proc, o->a & 3);
    case FZ_JOIN: return fz_join(proc, o->a & 7, (o->a >> 3) & 3);
    case FZ_DETACH: return fz_detach(proc, o->a & 7);
    case FZ_QUERY:
        switch (o->m % 8) {
        case 2: return fz_proc_name(proc, o->a & 7);
        case 3: return fz_self(proc);
        case 4: return fz_dump(proc);
        case 5: return fz_workers(proc);
        default: return o->m & 1 ? fz_cap(proc, ci) : fz_len(proc, ci);
        }
    case FZ_EXIT: fz_exit(proc);
    default: return false; /* FZ_END never reaches a body */
    }
}

/* Runs proc's body; true if it was canceled. */
static bool run_body(int proc)
{
    struct fz_proc *p = &fz_m.proc[proc];
    const struct fz_program *prog = fz_m.prog;
    for (unsigned i = 0; i < prog->nops[p->body]; i++) {
        p->opi = (int)i;
        if (p->pinned)
            FZ_CHECK(proc, weft_worker_id() == p->home,
                     "pinned process runs on worker %d, not on its worker %d", weft_worker_id(),
                     p->home);
        if (exec(proc, &prog->ops[p->body][i]))
            return true;
    }
    return false;
}

/* The process's last act: it counts as ended from here on. */
static intptr_t finish(int proc)
{
    struct fz_proc *p = &fz_m.proc[proc];
    p->state = FZ_P_DONE;
    fz_m.alive--;
    return p->result;
}

intptr_t fz_proc_entry(void *arg)
{
    int proc = (int)(intptr_t)arg;
    struct fz_proc *p = &fz_m.proc[proc];
    weft_pid self = weft_self();
    FZ_CHECK(proc, self != 0, "weft_self gave 0 in a process");
    FZ_CHECK(proc, !p->pid || p->pid == self, "process %d runs as %#llx; its spawn gave %#llx", proc,
             (unsigned long long)self, (unsigned long long)p->pid);
    FZ_CHECK(proc, p->state == FZ_P_SPAWNING, "process %d started twice", proc);
    p->pid = self;
    p->state = FZ_P_RUNNING;
    if (p->pinned && p->home < 0)
        p->home = weft_worker_id(); /* spawned without a worker: the spawner's */
    run_body(proc);
    return finish(proc);
}

intptr_t fz_main(void *arg)
{
    (void)arg;
    struct fz_proc *p = &fz_m.proc[0];
    *p = (struct fz_proc){.state = FZ_P_RUNNING, .body = 0, .pid = weft_self(), .result = 0x1000,
                          .opi = -1};
    fz_m.nproc = 1;
    fz_m.alive = 1;
    fz_m.main_started = true;
    FZ_CHECK(0, p->pid != 0, "weft_self gave 0 in main");
    const struct fz_program *prog = fz_m.prog;
    for (int s = 0; s < FZ_SLOTS; s++)
        if (prog->init_cap[s] >= 0 && fz_make(0, s, prog->init_cap[s], 0))
            return finish(0); /* canceled: not a deadlock, so a bug fz_result reported */
    if (run_body(0))
        return finish(0);
    p->opi = (int)prog->nops[0];
    if (fz_drain_all(0))
        return finish(0);
    fz_m.main_done = true;
    return finish(0);
}
