/* park.pml: workers parking and waking (src/sched.c), with the global
 * injection queue fed from outside the runtime.
 *
 * Checks: no lost wake-up and no starved process. An outside thread makes
 * two processes runnable through the global queue (weft__sched_ready_from
 * with no worker). One of them computes forever once started (it holds its
 * worker for good, which DESIGN.md 3.7 allows); the other spawns a child
 * into its worker's own run queue and ends. Every process must get run:
 * the monitor process waits for that and has no end label. Every order of
 * the two pushes and every interleaving with NW workers (2 by default) is
 * searched. With -DNW=3, -DSTART_PARKED=3 starts the three workers parked
 * (as an idle runtime is when the pushes come; they race the pushes from
 * their first wake-up on): 4.8 million states, where starting them
 * searching takes 17.5 million (15 s built at -O1, no CHECK line). Two
 * more scenarios, SPAWN and SB, below.
 *
 * Bounded park. park reads nidle after its re-check (all_idle, itself
 * counted). If every worker was idle it sleeps until woken, as before. If
 * not, its futex wait ends after BUSY_RECHECK at the latest; the model has
 * no clock, so the wait may end by itself at any moment (the "recheck"
 * branch at end_park), and only if some other worker was not idle when it
 * read nidle (the code decides once, at that read, and so does the model).
 * Nobody having woken it, park returns true and find_work makes one more
 * search (global queue, steal, own queues; spins = SPINS here, SPIN_ROUNDS
 * in the code) and parks again.
 *
 * Two searches. A worker in a bounded park is never in a final state (its
 * timeout stays enabled), so the two kinds of loss show differently:
 *  - the safety search (plain CHECK lines): a final state where every worker
 *    sleeps unbounded or computes forever while a process is still queued
 *    is an invalid end state (the monitor still waiting). This is a lost
 *    wake-up of an idle runtime, or the old unbounded park
 *    (BUG_NO_BUSY_RECHECK).
 *  - the non-progress search (pan -l, "np" lines): a worker that keeps
 *    rechecking without ever finding a queued process (BUG_RECHECK_NO_SEARCH),
 *    and any cycle of waking, searching and parking that runs forever
 *    without running a process. pan -l does not report invalid end states,
 *    so SPAWN and SB have a line for each search.
 *
 * The backoff of the bound (park() doubles w->recheck_after after each
 * recheck that found nothing, up to BUSY_RECHECK_MAX; find_work resets it)
 * only changes how long a bounded park lasts, which the model leaves open
 * anyway (its timeout may come at any step).
 *
 * Progress (the np lines). Starting a process (run_it) is progress. The end
 * of a bounded park by its timeout is progress only when nothing waits in
 * the global queue, a run queue or a run-next slot (NOTHING_QUEUED, label
 * progress_idle):
 *  - a worker that rechecks every BUSY_RECHECK forever while another
 *    computes forever and no process is left is what the code means to do:
 *    it polls (every 2 ms, backing off to 128 ms), it does not spin. The same for cycles like these,
 *    which the model allows (the outside thread slow; or one worker stopped
 *    between two steps while the other keeps timing out; or two workers
 *    whose timeouts fall each into the other's window between nidle++ and
 *    the all_idle read, which the clock makes impossible to keep up). A
 *    cycle through a timeout costs 2-128 ms of real time per turn, so it is not
 *    a livelock. With timeouts never progress (-DNOTHING_QUEUED=false) the
 *    np search reports such a cycle at once: one worker stopped with the
 *    first process popped but not yet started, the outside thread not at
 *    its second push yet, the other worker timing out over and over.
 *  - timeouts over and over while a process waits where the search looks
 *    is a starved process: exactly what the bounded park is there to
 *    prevent, and what the np search must be able to see. With timeouts
 *    always progress (-DNOTHING_QUEUED=true), np -DSPAWN
 *    -DBUG_RECHECK_NO_SEARCH passes.
 *  - wake-up cycles without a timeout are never progress (a busy livelock).
 * A process held by a thread between two of its steps (popped but not yet
 * started, a push still in a store buffer) does not count as queued: the
 * search has no fairness, so that thread may never be scheduled again,
 * which no scheduler can help.
 *
 * Model step / label           C code (src/sched.c; line numbers as of writing,
 *                              the function names are the reference)
 *   pusher                     weft__sched_ready_from with w NULL (the !w
 *                              branch, lines 292-296): global_push
 *                              (105-112), then weft__sched_notify(true)
 *                              (238-243): fence (241), notify_local (231-236)
 *   notify_local               notify_local: load nidle, load nspinning,
 *                              unpark_one if idle and nobody spins
 *   unpark_one                 unpark_one (218-227) and unpark_locked
 *                              (195-206): under idle_lock clear parked,
 *                              nidle--, nspinning++, park_futex = 1, wake
 *   worker: top                worker_main -> find_work (679-713):
 *                              pick_local first (681)
 *   worker: search             find_work's loop (688-705): global_pop
 *                              (116-138), steal (546-570), pick_local,
 *                              SPIN_ROUNDS (SPINS here, 698), then park (704)
 *   park                       park (639-675): enter_parked (607-617,
 *                              called at 642): under idle_lock
 *                              stop_spinning, parked = true, nidle++,
 *                              then the fence (616); work_visible
 *                              (572-584) at 650; all_idle (651) and the
 *                              BUSY_RECHECK deadline if not all idle
 *                              (657-660, recheck); futex wait while
 *                              park_futex == 0 (661-665), ended by the
 *                              deadline only with recheck; under idle_lock
 *                              count itself spinning if nobody woke it
 *                              (leave_parked, 622-635, called at 667);
 *                              rechecking = recheck and
 *                              park_futex still 0 (668); park_futex = 0;
 *                              spinning = true
 *   after park                 find_work: spins = park() ? SPIN_ROUNDS : 0
 *                              (704): one search after a timeout, the full
 *                              SPIN_ROUNDS after a wake-up
 *   found                      find_work after its loop: stop_spinning
 *                              (706), and the last searcher that found work
 *                              wakes a helper if work is left (708-711)
 *   run_it                     switch_to the process; a spawner makes its
 *                              child runnable with local_push + notify_local
 *                              (weft__sched_ready_from, lifo false, 315-316)
 *   SPAWN: pick_runnext,       pick_local's run-next exchange (518-520);
 *     steal_runnext, RUNNOW    steal's two-look CAS (557-567);
 *                              weft__sched_run_now (744-753) -> finish_switch
 *                              AFTER_SPAWN (388-393): parent into run-next,
 *                              notify_local, the child runs
 *   SB: WAKER, sb_drain        a process wakes another (src/wait.c
 *                              resume_from -> weft__sched_ready_from, lifo
 *                              false: local_push, notify_local, 315-316),
 *                              then computes; the store buffer, see below
 *
 * Abstracted: the run queues are FIFO arrays with one-step push, pop and
 * steal-half (runq.pml checks their inside); no timers (earliest_timer's
 * deadline, run_due_timers), inbox, stall hook or shutdown (workers_exit);
 * the run-next slot only with SPAWN; the futex wait sleeps until
 * park_futex is non-zero or, with recheck, until its timeout (a spurious
 * return only loops). Critical sections of global_lock are one step when
 * they write one thing others read without the lock (global_len).
 *
 * Memory model. Promela is sequentially consistent. The C code gets the one
 * ordering this needs, store then load across threads (SB: the parker
 * stores nidle/parked then loads the queues, the waker stores the work then
 * loads nidle/nspinning), from its seq_cst fences: park's (line 616) on
 * one side, weft__sched_notify(true)'s (241) or unpark's (210) on the
 * other, with the seq_cst RMWs on global_len and nidle. notify_local with
 * no fence (after local_push, lines 315-316, and in finish_switch) is the
 * same SB pattern with no fence on the waker's side: the plain model cannot
 * see the difference; -DSB models it.
 *
 * SPAWN: the outside thread makes one process runnable; it spawns
 * work-first a child that computes forever, and waits in its worker's
 * run-next slot. A searching worker misses the slot on its last look (or
 * sees it once: a steal takes run-next only at the second look at the
 * same victim tick), the spawner's notify_local runs before that worker
 * counts itself idle (or while it still counts as spinning), and
 * work_visible does not look at run-next slots. With the unbounded park
 * (BUG_NO_BUSY_RECHECK) it sleeps for good: invalid end state. With the
 * bounded park, the spawner's worker is busy, so it rechecks, and its
 * second recheck search at the latest takes the parent (the steal watch
 * survives the park). CHECK lines: pass (safety) and pass np. Three
 * workers: -DSPAWN -DNW=3 verifies (15.5 million states, 12 s built at
 * -O1, too slow for every run; also with START_PARKED=1 or 2). -DSPAWN -DNW=3
 * -DSTART_PARKED=3 is cheap but cannot reach the hole (every searcher is
 * woken after the parent is in run-next; BUG_NO_BUSY_RECHECK passes there
 * too), so it is no CHECK line.
 *
 * SB: the store buffer. The outside thread makes one process runnable; it
 * makes CHILD runnable on its own worker (local_push, notify_local with no
 * fence) and then computes forever, so it never comes back to its queue.
 * The push's store (the run queue's tail, a release store, a plain store
 * on x86) goes into its worker's store buffer (sb[]) and reaches memory in
 * a separate step (sb_drain): at any point after it is made, before or
 * between notify_local's two loads or after them, at the latest at the
 * waker's next locked instruction (idle_lock in unpark_one) or its next
 * step. So notify_local's loads of nidle and nspinning can be done before
 * the push is visible, which x86-TSO allows (store then load, no fence);
 * on ARM a release store followed by relaxed loads allows the same. The
 * worker that parks meanwhile does nidle++ and its fence, and its
 * work_visible still sees the queue empty; the waker read nidle == 0.
 * Both miss. With the unbounded park that worker sleeps for good
 * (CHECK: fail -DSB -DBUG_NO_BUSY_RECHECK, invalid end state); with the
 * bounded park the waker's worker is busy, so it rechecks and steals
 * CHILD (pass, pass np). With the push drained before the loads
 * (-DSB_FENCED, what a seq_cst fence in notify_local would give) the old
 * unbounded park suffices in this scenario (CHECK: pass -DSB -DSB_FENCED
 * -DBUG_NO_BUSY_RECHECK): the reordering is the hole. Only this one store
 * is buffered: the slot store before it reaches memory first (x86 drains
 * in order), and the parker's side is fenced.
 *
 * BUG variants (check.sh expects each to fail):
 *   BUG_NO_RECHECK   park sleeps without work_visible after the fence
 *                    (line 650): a push whose notify saw no idle worker
 *                    is not found when both workers then read all_idle
 *                    and sleep unbounded.
 *   BUG_NO_HANDOFF   find_work's last searcher does not wake a helper
 *                    (lines 708-711): the outside thread saw a spinning
 *                    worker and woke nobody; that worker takes the process
 *                    that computes forever and the other, parked while all
 *                    were idle, stays parked.
 *   BUG_NOTIFY_FIRST the outside thread notifies before it pushes (the two
 *                    steps of the !w branch swapped): the notify sees no
 *                    idle worker, the workers park (all idle) before the push.
 *   BUG_NO_BUSY_RECHECK  the park before BUSY_RECHECK (lines 657-660
 *                    gone): it sleeps until woken. Fails with -DSPAWN and
 *                    with -DSB (invalid end state); the default scenario
 *                    verifies with it too, as the code did.
 *   BUG_RECHECK_NO_SEARCH  after a timeout the worker parks again at once
 *                    (line 704 going straight back to park(), so that the
 *                    recheck is only work_visible): with -DSPAWN the parent
 *                    in run-next is never found, a non-progress cycle of
 *                    timeouts (np).
 *
 * CHECK: pass
 * CHECK: pass -DNW=3 -DSTART_PARKED=3
 * CHECK: pass np
 * CHECK: pass -DSPAWN
 * CHECK: pass np -DSPAWN
 * CHECK: pass -DSB
 * CHECK: pass np -DSB
 * CHECK: pass -DSB -DSB_FENCED -DBUG_NO_BUSY_RECHECK
 * CHECK: fail -DBUG_NO_RECHECK
 * CHECK: fail -DBUG_NO_HANDOFF
 * CHECK: fail -DBUG_NOTIFY_FIRST
 * CHECK: fail -DSPAWN -DBUG_NO_BUSY_RECHECK
 * CHECK: fail -DSB -DBUG_NO_BUSY_RECHECK
 * CHECK: fail np -DSPAWN -DBUG_RECHECK_NO_SEARCH
 */

#ifndef NW
#define NW 2           /* workers */
#endif
#define NP 3           /* processes 1..NP: two pushed from outside, one child */
#define CHILD 3
#define CAP 4          /* run queue slots in the model */
#ifndef SPINS
#define SPINS 1        /* search rounds before parking (SPIN_ROUNDS is 32) */
#endif
#define OUTSIDE NW     /* the outside thread's lock owner id */
#ifndef START_PARKED
#define START_PARKED 0 /* workers that have parked before the pushes start */
#endif

#define NORMAL 0
#define FOREVER 1      /* computes forever once started */
#define SPAWNER 2      /* makes CHILD runnable on its worker, then ends */
#define RUNNOW 3       /* SPAWN: runs CHILD at once; its rest (2) waits in run-next */
#define WAKER 4        /* SB: makes CHILD runnable here, then computes forever */

byte kind[NP + 1];

/* The global injection queue: a FIFO under global_lock, its length also
 * read without the lock. */
byte gq[NP];
byte gq_head, gq_n;
byte global_lock;      /* 0: free, else owner id + 1 */
byte global_len;

/* Run queues: FIFO per worker. */
byte rq[NW * CAP];
byte rq_head[NW], rq_n[NW];

byte idle_lock;        /* 0: free, else owner id + 1 */
bool parked[NW];       /* written under idle_lock */
bit park_futex[NW];
byte nidle, nspinning;

byte ran[NP + 1];      /* ghost: how often each process was started */

#ifdef SPAWN
byte runnext[NW];      /* the run-next slot */
byte tick[NW];         /* counts scheduling decisions, mod 4 here */
#endif
#ifdef SB
byte sb[NW];           /* a run queue push still in its worker's store buffer */
#endif

/* Nothing waits in a queue or slot that a search looks at: a worker's
 * bounded park running out then is idle time, not a process starved (see
 * "Progress" at the top; -DNOTHING_QUEUED=false or =true for its two
 * experiments). */
#if NW > 2
#define RQ_EMPTY (rq_n[0] == 0 && rq_n[1] == 0 && rq_n[2] == 0)
#else
#define RQ_EMPTY (rq_n[0] == 0 && rq_n[1] == 0)
#endif
#ifdef SPAWN
#if NW > 2
#define RN_EMPTY (runnext[0] == 0 && runnext[1] == 0 && runnext[2] == 0)
#else
#define RN_EMPTY (runnext[0] == 0 && runnext[1] == 0)
#endif
#else
#define RN_EMPTY true
#endif
#ifndef NOTHING_QUEUED
#define NOTHING_QUEUED (gq_n == 0 && RQ_EMPTY && RN_EMPTY)
#endif

#define RQ(w, i) rq[(w) * CAP + (i) % CAP]

inline lock(l, id)
{
    atomic {
        l == 0 -> l = id + 1
    }
}

inline unlock(l)
{
    l = 0
}

/* Owner's push (weft__runq_push; the model's queues never fill). */
inline rq_push(w, p)
{
    atomic {
        assert(rq_n[w] < CAP);
        RQ(w, rq_head[w] + rq_n[w]) = p;
        rq_n[w]++
    }
}

inline rq_pop(w, p)
{
    atomic {
        if
        :: rq_n[w] > 0 ->
            p = RQ(w, rq_head[w]);
            RQ(w, rq_head[w]) = 0;
            rq_head[w] = (rq_head[w] + 1) % CAP;
            rq_n[w]--
        :: else -> p = 0
        fi
    }
}

/* weft__runq_steal: half of v's queue (rounded up), the last one to run,
 * the others into w's (empty) queue. */
inline rq_steal(w, v, p)
{
    atomic {
        c = rq_n[v] - rq_n[v] / 2;
        p = 0;
        do
        :: c > 0 ->
            if
            :: p != 0 -> rq_push(w, p)
            :: else -> skip
            fi;
            rq_pop(v, p);
            c--
        :: else -> break
        od
    }
}

/* unpark_one: wake one parked worker, trying them from a random start.
 * Lock acquisition joins the first write of the critical section, and the
 * release the last one: threads that do not take idle_lock cannot tell. */
inline unpark_one(id)
{
    atomic {
        idle_lock == 0 -> idle_lock = id + 1;
        if
        :: i = 0
        :: i = 1
#if NW > 2
        :: i = 2
#endif
        fi;
        n = 0;
        do
        :: n < NW && !parked[(i + n) % NW] -> n++
        :: else -> break
        od;
        if
        :: n < NW ->
            v = (i + n) % NW;
            parked[v] = false;
            nidle--
        :: else ->
            idle_lock = 0
        fi;
        i = 0
    };
    if
    :: n < NW ->
        nspinning++; /* it wakes up looking for work */
        atomic {
            park_futex[v] = 1;
            idle_lock = 0
        }
    :: else -> skip
    fi;
    atomic { n = 0; v = 0 }
}

/* notify_local: two relaxed loads, then maybe unpark_one. Called after a
 * seq_cst fence by weft__sched_notify(true). */
inline notify_local(id)
{
    if
    :: nidle != 0 ->
        if
        :: nspinning == 0 -> unpark_one(id)
        :: else -> skip
        fi
    :: else -> skip
    fi
}

#ifdef SB
/* The store buffer (x86-TSO): the waker's push reaches memory at any point
 * after it is made, in one step; before its next locked instruction. */
inline sb_drain(me)
{
    atomic {
        if
        :: sb[me] != 0 -> rq_push(me, sb[me]); sb[me] = 0
        :: else -> skip
        fi
    }
}

inline sb_maybe_drain(me)
{
    if
    :: sb_drain(me)
    :: skip
    fi
}

/* notify_local right after a push, with no fence: its two loads may run
 * before the push is visible to other threads. */
inline notify_local_sb(me)
{
#ifdef SB_FENCED
    sb_drain(me); /* a seq_cst fence before the loads */
#else
    sb_maybe_drain(me);
#endif
    if
    :: nidle != 0 ->
        sb_maybe_drain(me);
        if
        :: nspinning == 0 ->
            sb_drain(me); /* idle_lock's locked instruction drains it */
            unpark_one(me)
        :: else -> skip
        fi
    :: else -> skip
    fi
}
#endif

#ifdef SPAWN
/* pick_local's run-next part: the owner counts a decision, then takes the
 * slot by exchange if it looked full. */
inline pick_runnext(me, p)
{
    atomic {
        tick[me] = (tick[me] + 1) % 4;
        p = runnext[me]
    };
    if
    :: p != 0 ->
        atomic {
            p = runnext[me];
            runnext[me] = 0
        }
    :: else -> skip
    fi
}

/* steal()'s run-next part: taken by CAS only when seen twice at one tick. */
inline steal_runnext(me, v, p)
{
    if
    :: p == 0 ->
        c = runnext[v];
        i = tick[v];
        if
        :: c != 0 ->
            if
            :: watch == c && watch_tick == i ->
                atomic {
                    if
                    :: runnext[v] == c -> runnext[v] = 0; p = c; watch = 0; watch_tick = 0
                    :: else -> skip
                    fi
                }
            :: else -> skip
            fi;
            if
            :: p == 0 -> watch = c; watch_tick = i
            :: else -> skip
            fi
        :: else -> skip
        fi;
        c = 0
    :: else -> skip
    fi
}
#endif

proctype pusher()
{
    byte k = 1, i, n, v;

    do
#if defined(SPAWN) || defined(SB)
    :: k <= 1 ->
#else
    :: k <= 2 ->
#endif
#ifdef BUG_NOTIFY_FIRST
        notify_local(OUTSIDE);
#endif
        atomic { /* global_push: lock, append, global_len++, unlock */
            global_lock == 0 ->
            gq[(gq_head + gq_n) % NP] = k;
            gq_n++;
            global_len++
        };
#ifndef BUG_NOTIFY_FIRST
        notify_local(OUTSIDE); /* after weft__sched_notify's fence */
#endif
        k++
    :: else -> break
    od
}

proctype worker(byte me)
{
    bool spinning, vis;
    bit recheck;           /* park's recheck: its wait may time out */
    byte p, v, i, n, c, spins;
#ifdef SPAWN
    byte watch, watch_tick; /* steal_watch, steal_watch_tick */
#endif

    if
    :: me >= NW - START_PARKED -> /* parked before the pushes */
#ifndef BUG_NO_BUSY_RECHECK
        recheck = START_PARKED < NW; /* the others were not idle */
#endif
        goto sleep
    :: else -> skip
    fi;
top:
#ifdef SPAWN
    pick_runnext(me, p);
    if
    :: p == 0 -> rq_pop(me, p)
    :: else -> skip
    fi;
#else
    rq_pop(me, p); /* pick_local */
#endif
    if
    :: p != 0 -> goto run_it
    :: else -> skip
    fi;
    if
    :: !spinning -> spinning = true; nspinning++
    :: else -> skip
    fi;
search:
    /* global_pop */
    if
    :: global_len != 0 ->
        atomic {
            global_lock == 0 -> global_lock = me + 1;
            n = global_len / NW + 1;
            if
            :: n > global_len -> n = global_len
            :: else -> skip
            fi;
            assert(n <= gq_n);
            if /* the room left in the run queue, and at most half of it */
            :: n > CAP - rq_n[me] + 1 -> n = CAP - rq_n[me] + 1
            :: else -> skip
            fi;
            if
            :: n > CAP / 2 -> n = CAP / 2
            :: else -> skip
            fi;
            if /* another worker took it since the unlocked look */
            :: n > 0 ->
                p = gq[gq_head];
                gq[gq_head] = 0;
                gq_head = (gq_head + 1) % NP;
                gq_n--
            :: else -> skip
            fi;
            i = 1
        };
        do /* the rest into its own run queue, still under the lock */
        :: i < n ->
            atomic {
                v = gq[gq_head];
                gq[gq_head] = 0;
                gq_head = (gq_head + 1) % NP;
                gq_n--;
                rq_push(me, v);
                v = 0
            };
            i++
        :: else -> break
        od;
        atomic {
            global_len = global_len - n;
            global_lock = 0;
            n = 0;
            i = 0
        }
    :: else -> skip
    fi;
    if
    :: p != 0 -> goto found
    :: else -> skip
    fi;
    /* steal: every other worker's queue. Its random start is left out:
     * at most one run queue holds work at a time in this scenario (the
     * spawner's; global_pop keeps n - 1 = 0 for itself unless NW = 2). */
    n = 0;
    do
    :: n < NW && p == 0 ->
        v = n;
        if
        :: v != me ->
            rq_steal(me, v, p);
#ifdef SPAWN
            steal_runnext(me, v, p);
#endif
            skip
        :: else -> skip
        fi;
        n++
    :: else -> break
    od;
    atomic { i = 0; n = 0; v = 0 };
    if
    :: p != 0 -> goto found
    :: else -> skip
    fi;
#ifdef SPAWN
    pick_runnext(me, p);
    if
    :: p == 0 -> rq_pop(me, p)
    :: else -> skip
    fi;
#else
    rq_pop(me, p);
#endif
    if
    :: p != 0 -> goto found
    :: else -> skip
    fi;
    if
    :: spins < SPINS -> spins++; goto search
    :: else -> skip
    fi;

park:
    atomic {
        idle_lock == 0 -> idle_lock = me + 1;
        if /* stop_spinning */
        :: spinning -> spinning = false; assert(nspinning > 0); nspinning--
        :: else -> skip
        fi
    };
    atomic {
        parked[me] = true;
        nidle++;
        idle_lock = 0
    };
    /* seq_cst fence */
#ifdef BUG_NO_RECHECK
    vis = false;
#else
    vis = global_len != 0; /* work_visible */
    n = 0;
    do
    :: !vis && n < NW -> vis = rq_n[n] != 0; n++
    :: else -> break
    od;
    n = 0;
#endif
#ifndef BUG_NO_BUSY_RECHECK
    if /* all_idle: nidle == nworkers, itself counted */
    :: !vis -> recheck = nidle != NW
    :: else -> skip
    fi;
#endif
sleep:
    if
    :: !vis ->
end_park:
        if
        :: park_futex[me] != 0 /* woken */
        :: recheck ->          /* BUSY_RECHECK ran out */
            if
            :: NOTHING_QUEUED ->
progress_idle:
                skip
            :: else -> skip
            fi
        fi
    :: else -> skip
    fi;
    vis = false;
    atomic {
        idle_lock == 0 -> idle_lock = me + 1;
        if
        :: parked[me] -> /* woke by itself: count itself as spinning */
            parked[me] = false;
            nidle--;
            vis = true
        :: else -> idle_lock = 0
        fi
    };
    if
    :: vis ->
        atomic {
            nspinning++;
            idle_lock = 0;
            vis = false
        }
    :: else -> skip
    fi;
    atomic { /* rechecking: its timeout ended the park, nobody woke it */
        if
        :: recheck && park_futex[me] == 0 -> spins = SPINS /* one search */
        :: else -> spins = 0
        fi;
        recheck = false;
        park_futex[me] = 0
    };
    spinning = true;
#ifdef BUG_RECHECK_NO_SEARCH
    if
    :: spins == SPINS -> goto park
    :: else -> skip
    fi;
#endif
    goto search;

found:
    spins = 0;
    if /* stop_spinning */
    :: spinning -> spinning = false; assert(nspinning > 0); nspinning--
    :: else -> skip
    fi;
#ifndef BUG_NO_HANDOFF
    /* The last searcher found work: more may be waiting, wake a helper. */
    if
    :: nspinning == 0 ->
        if
        :: rq_n[me] > 0 -> vis = true
        :: else -> vis = global_len > 0
        fi;
        if
        :: vis -> vis = false; notify_local(me) /* weft__sched_notify(true) */
        :: else -> skip
        fi
    :: else -> skip
    fi;
#endif

run_it:
progress:
    atomic {
        assert(p >= 1 && p <= NP);
        assert(ran[p] == 0);
        ran[p]++
    }
    if
    :: kind[p] == FOREVER ->
end_forever:
        false
    :: kind[p] == SPAWNER ->
        rq_push(me, CHILD); /* local_push */
        notify_local(me)    /* no fence: see the note at the top */
#ifdef SB
    :: kind[p] == WAKER ->
        sb[me] = CHILD;     /* local_push: the tail store, buffered */
        notify_local_sb(me);
        sb_drain(me);       /* reaches memory at the latest now */
end_waker:
        false               /* then computes forever */
#endif
#ifdef SPAWN
    :: kind[p] == RUNNOW ->
        /* weft__sched_run_now: switch to CHILD; finish_switch
         * (AFTER_SPAWN) puts the rest of p in run-next, notify_local */
        atomic { assert(runnext[me] == 0); runnext[me] = 2 };
        notify_local(me);
        p = CHILD;
        goto run_it
#endif
    :: else -> skip
    fi;
    p = 0;
    goto top
}

/* Waits for every process to have been started. Not an end state: a
 * system that stops with this still waiting has lost a wake-up. */
proctype monitor()
{
#ifdef SB
    ran[1] != 0 && ran[CHILD] != 0
#else
    ran[1] != 0 && ran[2] != 0 && ran[CHILD] != 0
#endif
}

init
{
    byte k;
    atomic {
#ifdef SPAWN
        kind[1] = RUNNOW;
        kind[2] = NORMAL;
        kind[CHILD] = FOREVER;
#elif defined(SB)
        kind[1] = WAKER;
        kind[CHILD] = NORMAL;
#else
        if /* which of the two outside pushes is the one that computes forever */
        :: kind[1] = FOREVER; kind[2] = SPAWNER
        :: kind[1] = SPAWNER; kind[2] = FOREVER
        fi;
        kind[CHILD] = NORMAL;
#endif
        k = 0;
        do
        :: k < NW ->
            if
            :: k >= NW - START_PARKED -> parked[k] = true; nidle++
            :: else -> skip
            fi;
            run worker(k);
            k++
        :: else -> break
        od;
        k = 0;
        run pusher();
        run monitor()
    }
}
