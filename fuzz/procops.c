/* procops.c: the process operations of the fuzz programs: spawn, join,
 * detach, weft_proc_name, weft_self, yield, sleep and exit.
 *
 * A process slot's pid is known once its spawn returned or the process ran
 * (work-first: the child may run before its spawn returns). A slot with no
 * known pid, and main's slot when named by another process, is named by
 * pid 0 (weft_run itself waits for main: joining it is not the program's
 * business). Joins and detaches follow the model's rules of overlap
 * (model.h): a call is checked exactly when no other join or detach on the
 * same process was in flight or started while it ran. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "interp.h"
#include "ops.h"

/* The pid proc uses to name process slot target. */
static weft_pid pid_of(int proc, int target)
{
    if (target == proc)
        return fz_m.proc[proc].pid;
    if (target == 0 || target >= fz_m.nproc)
        return 0;
    return fz_m.proc[target].pid;
}

bool fz_spawn(int proc, int body, bool detached, bool named, bool pinned, int worker)
{
    if (fz_m.nproc == FZ_PROCS)
        return false; /* every slot is taken: no call */
    bool bad_worker = worker >= (int)fz_m.prog->workers;
    int j = fz_m.nproc++;
    struct fz_proc *p = &fz_m.proc[j];
    *p = (struct fz_proc){.state = FZ_P_SPAWNING, .body = body, .detached = detached,
                          .named = named, .pinned = pinned, .home = pinned ? worker : -1,
                          .result = 0x1000 + j, .opi = -1};
    fz_m.alive++;
    char name[16];
    snprintf(name, sizeof name, "p%d", j);
    weft_spawn_opts opts;
    weft_spawn_opts_init(&opts);
    opts.name = named ? name : NULL;
    opts.detached = detached;
    opts.pinned = pinned;
    opts.worker = worker;
    weft_pid pid = 0;
    int rc = weft_spawn(&pid, fz_proc_entry, (void *)(intptr_t)j, &opts);
    bool stop = fz_result(proc, rc, false, false);
    fz_note(proc, "spawn", rc);
    if (bad_worker) {
        /* Which of the two a stopping runtime reports first is not documented. */
        FZ_CHECK(proc, rc == -EINVAL || rc == -ECANCELED,
                 "weft_spawn on worker %d of %u returned %d (%s)", worker,
                 fz_m.prog->workers, rc, weft_strerror(rc));
    } else if (rc == 0) {
        FZ_CHECK(proc, pid != 0, "weft_spawn gave pid 0");
        FZ_CHECK(proc, !p->pid || p->pid == pid, "weft_spawn gave pid %#llx; the child is %#llx",
                 (unsigned long long)pid, (unsigned long long)p->pid);
        p->pid = pid;
        return stop;
    } else {
        FZ_CHECK(proc, rc == -ECANCELED || (rc == -ENOMEM && fz_alloc_failed()),
                 "weft_spawn returned %d (%s)", rc, weft_strerror(rc));
    }
    FZ_CHECK(proc, p->state == FZ_P_SPAWNING, "weft_spawn failed, but its process ran");
    p->state = FZ_P_FAILED;
    fz_m.alive--;
    return stop;
}

/* The join and detach state of a process when a call on it started. */
struct psnap {
    enum fz_pstate state;
    bool joined, detached;
    unsigned joins, detaches;
    int joining, detaching;
};

static struct psnap psnap_of(const struct fz_proc *t)
{
    return (struct psnap){.state = t->state, .joined = t->joined, .detached = t->detached,
                          .joins = t->joins, .detaches = t->detaches, .joining = t->joining,
                          .detaching = t->detaching};
}

bool fz_join(int proc, int target, int cls)
{
    weft_pid pid = pid_of(proc, target);
    int64_t deadline = fz_deadline(cls);
    bool forever = deadline < 0;
    struct fz_proc *t = pid && target != proc ? &fz_m.proc[target] : NULL;
    struct psnap s = t ? psnap_of(t) : (struct psnap){0};
    if (t) {
        t->joins++;
        t->joining++;
    }
    intptr_t result = -777;
    fz_forever_begin(forever);
    int rc = weft_join(pid, &result, deadline);
    /* A join may find its process returned even after a deadlock. */
    bool stop = fz_result(proc, rc, forever, true);
    fz_note(proc, "join", rc);
    if (!t) {
        int want = pid ? -EDEADLK : -ESRCH;
        FZ_CHECK(proc, rc == want, "weft_join(%s) returned %d (%s), not %d (%s)",
                 pid ? "self" : "0", rc, weft_strerror(rc), want, weft_strerror(want));
        return stop;
    }
    t->joining--;
    bool other_join = s.joining > 0 || t->joins - s.joins > 1;
    bool other_detach = s.detaching > 0 || t->detaches != s.detaches;
    bool detached = s.detached || t->detached || other_detach;
    switch (rc) {
    case 0:
        FZ_CHECK(proc, !s.joined && !s.detached && !t->joined,
                 "weft_join returned 0 for a process %s", s.detached ? "detached" : "joined before");
        FZ_CHECK(proc, t->state == FZ_P_DONE, "weft_join returned 0 before process %d ended", target);
        FZ_CHECK(proc, result == t->result, "weft_join gave result %#lx, process %d returned %#lx",
                 (long)result, target, (long)t->result);
        t->joined = true;
        break;
    case -ESRCH:
        FZ_CHECK(proc, s.joined || t->joined || other_join || detached,
                 "weft_join returned -ESRCH for a live joinable process");
        break;
    case -EINVAL:
        FZ_CHECK(proc, detached || other_join, "weft_join returned -EINVAL; not detached, no other join");
        break;
    case -ETIMEDOUT:
        FZ_CHECK(proc, deadline >= 0 && !s.joined && !s.detached && s.state != FZ_P_DONE,
                 "weft_join timed out (deadline class %d, process %d %s)", cls, target,
                 s.state == FZ_P_DONE ? "had returned" : "joined or detached");
        if (deadline > 0)
            FZ_CHECK(proc, weft_now() >= deadline, "weft_join timed out before its deadline");
        break;
    case -ECANCELED:
        break;
    case -ENOMEM:
        FZ_CHECK(proc, fz_alloc_failed(), "weft_join returned -ENOMEM");
        break;
    default:
        fz_fail(proc, "weft_join returned %d (%s)", rc, weft_strerror(rc));
    }
    /* Nothing overlapped: exactly one answer. */
    if (!other_join && !other_detach && rc != -ECANCELED && rc != -ENOMEM) {
        if (s.joined)
            FZ_CHECK(proc, rc == -ESRCH, "weft_join of a joined process returned %d", rc);
        else if (!s.detached && s.state == FZ_P_DONE)
            FZ_CHECK(proc, rc == 0, "weft_join of a returned process returned %d", rc);
    }
    return stop;
}

bool fz_detach(int proc, int target)
{
    if (proc == 0 && target == 0 && fz_avoid("main-self-detach"))
        return false;
    weft_pid pid = pid_of(proc, target);
    struct fz_proc *t = pid ? &fz_m.proc[target] : NULL;
    struct psnap s = t ? psnap_of(t) : (struct psnap){0};
    if (t) {
        t->detaches++;
        t->detaching++;
    }
    int rc = weft_detach(pid);
    bool stop = fz_result(proc, rc, false, false);
    fz_note(proc, "detach", rc);
    if (!t) {
        FZ_CHECK(proc, rc == -ESRCH, "weft_detach(0) returned %d (%s)", rc, weft_strerror(rc));
        return stop;
    }
    t->detaching--;
    if (target == 0) {
        /* Main detaching itself: weft_run waits for it all the same; whether
         * weft_run's own join counts as "being joined" is not documented. */
        FZ_CHECK(proc, rc == 0 || rc == -EINVAL, "weft_detach of main by main returned %d (%s)",
                 rc, weft_strerror(rc));
        fz_m.main_detached |= rc == 0;
        t->detached |= rc == 0;
        return stop;
    }
    bool other_join = s.joining > 0 || t->joins != s.joins;
    bool other_detach = s.detaching > 0 || t->detaches - s.detaches > 1;
    switch (rc) {
    case 0:
        FZ_CHECK(proc, !s.joined && !s.detached && !t->joined && !t->detached,
                 "weft_detach returned 0 for a process %s", s.detached ? "detached" : "joined");
        t->detached = true;
        break;
    case -ESRCH:
        FZ_CHECK(proc, s.joined || t->joined || other_join || s.detached || t->detached || other_detach,
                 "weft_detach returned -ESRCH for a live joinable process");
        break;
    case -EINVAL:
        FZ_CHECK(proc, s.detached || t->detached || other_detach || other_join,
                 "weft_detach returned -EINVAL; not detached, not being joined");
        break;
    default:
        fz_fail(proc, "weft_detach returned %d (%s)", rc, weft_strerror(rc));
    }
    if (!other_join && !other_detach) {
        if (s.joined)
            FZ_CHECK(proc, rc == -ESRCH, "weft_detach of a joined process returned %d", rc);
        else if (!s.detached)
            FZ_CHECK(proc, rc == 0, "weft_detach of a joinable process returned %d", rc);
    }
    return stop;
}

bool fz_proc_name(int proc, int target)
{
    weft_pid pid = target == 0 ? fz_m.proc[0].pid : pid_of(proc, target);
    struct fz_proc *t = pid ? &fz_m.proc[target] : NULL;
    struct psnap s = t ? psnap_of(t) : (struct psnap){0};
    char buf[WEFT_NAME_MAX];
    int rc = weft_proc_name(pid, buf, sizeof buf);
    bool stop = fz_result(proc, rc, false, false);
    fz_note(proc, "proc_name", rc);
    if (!t) {
        FZ_CHECK(proc, rc == -ESRCH, "weft_proc_name(0) returned %d", rc);
        return stop;
    }
    bool other = s.joining > 0 || t->joins != s.joins;
    /* weft_run joins main once it returned. */
    bool gone_maybe = s.joined || t->joined || other || s.detached || t->detached ||
                      s.detaching > 0 || t->detaches != s.detaches ||
                      (target == 0 && t->state == FZ_P_DONE);
    if (rc >= 0) {
        FZ_CHECK(proc, !s.joined && !t->joined, "weft_proc_name of a joined process returned %d", rc);
        char want[WEFT_NAME_MAX];
        snprintf(want, sizeof want, "%s", target == 0 ? "main" : "p");
        if (target == 0 || t->named) {
            if (target)
                snprintf(want, sizeof want, "p%d", target);
            FZ_CHECK(proc, strcmp(buf, want) == 0 && rc == (int)strlen(want),
                     "weft_proc_name gave \"%s\" (%d), not \"%s\"", buf, rc, want);
        } else {
            FZ_CHECK(proc, strncmp(buf, "fn@", 3) == 0 && rc == (int)strlen(buf),
                     "weft_proc_name of an unnamed process gave \"%s\" (%d)", buf, rc);
        }
    } else {
        FZ_CHECK(proc, rc == -ESRCH && gone_maybe, "weft_proc_name returned %d (%s)", rc,
                 weft_strerror(rc));
    }
    return stop;
}

bool fz_self(int proc)
{
    weft_pid self = weft_self();
    int w = weft_worker_id();
    fz_note(proc, "self", w);
    FZ_CHECK(proc, self == fz_m.proc[proc].pid, "weft_self gave %#llx, not %#llx",
             (unsigned long long)self, (unsigned long long)fz_m.proc[proc].pid);
    FZ_CHECK(proc, w >= 0 && (unsigned)w < fz_m.prog->workers, "weft_worker_id gave %d of %u", w,
             fz_m.prog->workers);
    return false;
}

bool fz_workers(int proc)
{
    int n = weft_workers();
    fz_note(proc, "workers", n);
    FZ_CHECK(proc, n == (int)fz_m.prog->workers, "weft_workers gave %d, not %u", n,
             fz_m.prog->workers);
    return false;
}

bool fz_dump(int proc)
{
    static int devnull = -1;
    if (devnull < 0)
        devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    FZ_CHECK(proc, devnull >= 0, "cannot open /dev/null");
    int rc = weft_dump(devnull);
    bool stop = fz_result(proc, rc, false, false);
    fz_note(proc, "dump", rc);
    FZ_CHECK(proc, rc == 0 || (rc == -ENOMEM && fz_alloc_failed()), "weft_dump returned %d (%s)",
             rc, weft_strerror(rc));
    return stop;
}

bool fz_yield(int proc)
{
    int rc = weft_yield();
    bool stop = fz_result(proc, rc, false, false);
    fz_note(proc, "yield", rc);
    FZ_CHECK(proc, rc == 0 || rc == -ECANCELED, "weft_yield returned %d (%s)", rc, weft_strerror(rc));
    return stop;
}

bool fz_sleep(int proc, int cls)
{
    int64_t deadline = fz_deadline(cls);
    bool forever = deadline < 0;
    fz_forever_begin(forever);
    int rc = weft_sleep(deadline);
    bool stop = fz_result(proc, rc, forever, false);
    fz_note(proc, "sleep", rc);
    FZ_CHECK(proc, rc == 0 || rc == -ECANCELED || (rc == -ENOMEM && fz_alloc_failed()),
             "weft_sleep returned %d (%s)", rc, weft_strerror(rc));
    FZ_CHECK(proc, rc != 0 || weft_now() >= deadline, "weft_sleep returned before its deadline");
    return stop;
}

void fz_exit(int proc)
{
    struct fz_proc *p = &fz_m.proc[proc];
    p->result = 0x2000 + proc;
    if (proc == 0)
        fz_m.main_done = true;
    p->state = FZ_P_DONE;
    fz_m.alive--;
    fz_note(proc, "exit", p->result);
    weft_exit(p->result);
    fz_fail(proc, "weft_exit returned");
}
