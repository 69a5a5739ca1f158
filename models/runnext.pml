/* runnext.pml: a worker's run-next slot (src/sched.c) against thieves.
 *
 * Checks: every time a process is made runnable on the owner's worker it
 * runs exactly once: never twice (assertion in take), never lost
 * (assertion at the end, once every process has stopped). The owner makes
 * processes 1..NI runnable LIFO (a wake by the running process), in any
 * order with its own picks; process 1 is made runnable a second time once
 * it has run, so that a thief's stale look at the slot can name a process
 * that has left it and come back (pointer ABA: taking it then is right,
 * it is runnable). Displaced processes go to the front of the run queue,
 * which here is an atomic FIFO (runq.pml checks the real one). One thief
 * by default; -DNTHIEVES=2 -DNI=2 has two (NI=3 with two thieves also
 * verifies: 14 million states, 11 s).
 *
 * Model step / label        C code (src/sched.c; line numbers as of writing,
 *                           the function names are the reference)
 *   ready_lifo              weft__sched_ready_from, lifo branch (297-314):
 *                           a relaxed load; empty: plain store, done; else
 *                           exchange, and the displaced process (if a thief
 *                           did not empty the slot meanwhile) goes to
 *                           weft__runq_push_front
 *   pick                    pick_local (504-528): tick store, a relaxed
 *                           load of run-next, exchange with NULL; else
 *                           weft__runq_pop
 *   thief                   steal() (546-570): the victim's run queue
 *                           first, then run-next: load the slot and the
 *                           victim's tick, and CAS the slot to NULL only if
 *                           both equal the previous look (steal_watch)
 *
 * Memory model. Promela is sequentially consistent. The C code publishes
 * the process through the slot with release (store, exchange acq_rel) and
 * takes it with acquire (exchange, the thief's acquire load and seq_cst
 * CAS): message passing only, acquire/release is enough. The claim is the
 * atomicity of exchange and CAS, which the model keeps.
 *
 * BUG variants (check.sh expects each to fail):
 *   BUG_DISPLACE_STORE  the owner displaces with a load and a store instead
 *                       of the exchange of line 304: a thief's CAS between
 *                       them takes the process the owner then also pushes.
 *   BUG_THIEF_STORE     the thief empties the slot with a load and a store
 *                       instead of its CAS (line 562): it can take a
 *                       process the owner took meanwhile.
 *
 * CHECK: pass
 * CHECK: pass -DNTHIEVES=2 -DNI=2
 * CHECK: fail -DBUG_DISPLACE_STORE
 * CHECK: fail -DBUG_THIEF_STORE
 */

#ifndef NTHIEVES
#define NTHIEVES 1
#endif
#ifndef NI
#define NI 3           /* processes 1..NI; 0 stands for NULL */
#endif
#define LIVES (NI + 1) /* runnable events: 1..NI, then 1 again */
#define CAP 4

byte runnext;
byte tick;             /* the owner's scheduling decisions, mod 4 here */
byte rq[CAP];          /* the owner's run queue: FIFO, front pushes too */
byte rq_head, rq_n;
byte made[NI + 1];     /* ghost: times made runnable */
byte ran[NI + 1];      /* ghost: times taken to run */
bool owner_done;

inline take(p)
{
    atomic {
        assert(p >= 1 && p <= NI);
        ran[p]++;
        assert(ran[p] <= made[p])
    }
}

inline push_front(p)
{
    atomic {
        assert(rq_n < CAP);
        rq_head = (rq_head + CAP - 1) % CAP;
        rq[rq_head] = p;
        rq_n++
    }
}

inline rq_pop(p)
{
    atomic {
        if
        :: rq_n > 0 ->
            p = rq[rq_head];
            rq[rq_head] = 0;
            rq_head = (rq_head + 1) % CAP;
            rq_n--
        :: else -> p = 0
        fi
    }
}

proctype owner()
{
    byte next = 1, p, old, lives = 0;

    do
    :: lives < LIVES && (next <= NI || ran[1] == made[1]) ->
        /* make a process runnable, LIFO; 1 comes back once it has run */
        atomic {
            if
            :: next <= NI -> p = next; next++
            :: else -> p = 1
            fi;
            made[p]++;
            lives++
        };
        if
        :: runnext == 0 -> runnext = p /* only the owner fills the slot */
        :: else ->
#ifdef BUG_DISPLACE_STORE
            old = runnext;
            runnext = p;
#else
            atomic { old = runnext; runnext = p };
#endif
            if
            :: old != 0 -> push_front(old)
            :: else -> skip
            fi
        fi;
        atomic { p = 0; old = 0 }
    :: /* pick_local */
        atomic {
            tick = (tick + 1) % 4;
            p = runnext
        };
        if
        :: p != 0 -> atomic { p = runnext; runnext = 0 }
        :: else -> skip
        fi;
        if
        :: p == 0 -> rq_pop(p)
        :: else -> skip
        fi;
        if
        :: p != 0 -> take(p)
        :: else -> skip
        fi;
        p = 0
    :: lives == LIVES && runnext == 0 && rq_n == 0 -> break
    od;
    owner_done = true
}

proctype thief()
{
    byte p, rn, vtick, watch, watch_tick;

    do
    :: rq_n > 0 || runnext != 0 -> /* a look at nothing changes nothing */
        rq_pop(p); /* weft__runq_steal, one process at a time here */
        if
        :: p == 0 ->
            rn = runnext;
            vtick = tick;
            if
            :: rn != 0 ->
                if
                :: watch == rn && watch_tick == vtick ->
#ifdef BUG_THIEF_STORE
                    if
                    :: runnext != 0 -> runnext = 0; p = rn
                    :: else -> skip
                    fi;
#else
                    atomic {
                        if
                        :: runnext == rn -> runnext = 0; p = rn
                        :: else -> skip
                        fi
                    };
#endif
                    if
                    :: p != 0 -> watch = 0; watch_tick = 0
                    :: else -> skip
                    fi
                :: else -> skip
                fi;
                if
                :: p == 0 -> watch = rn; watch_tick = vtick
                :: else -> skip
                fi
            :: else -> skip
            fi
        :: else -> skip
        fi;
        if
        :: p != 0 -> take(p)
        :: else -> skip
        fi;
        atomic { p = 0; rn = 0; vtick = 0 }
    :: owner_done -> break
    od
}

init
{
    byte k;
    atomic {
        run owner();
        k = 0;
        do
        :: k < NTHIEVES -> run thief(); k++
        :: else -> break
        od;
        k = 0
    }
    _nr_pr == 1;
    k = 1;
    do
    :: k <= NI -> assert(ran[k] == made[k]); k++
    :: else -> break
    od
}
