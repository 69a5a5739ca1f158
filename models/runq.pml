/* runq.pml: a worker's run queue (src/runq.c) against one or two thieves.
 *
 * Checks: every process made runnable on the owner's queue is taken exactly
 * once, by the owner's pop, by a thief's steal or by a spill to the global
 * queue: never twice (assertion in take), never lost (assertion at the end of
 * init, once every process has stopped). The owner makes NI processes
 * runnable, each by push or push_front in any order, and pops at any time.
 * With the queue's SIZE of 4 slots and NI = 4 (the default, one thief), full
 * queues (spill), steals of two, slot reuse and the ABA case (a thief reads
 * head, the owner pops and push_fronts back to the same index: the thief's
 * CAS must fail) are all reached. -DNTHIEVES=2 -DNI=2 adds a second thief,
 * racing the first one's CAS (steals of one only). NTHIEVES=2 with NI=3
 * also verifies, but takes 15 s and 1.4 GB (14.7 million states).
 *
 * Model step            C code (src/runq.c unless said; struct weft__runq in src/internal.h)
 *   head[q], tail[q],   struct weft__runq: head = (tag << 32) | index is
 *   slot[]                head = tag * TAGM + index here; slots hold process ids
 *   push                weft__runq_push, lines 37-46 (load head, load tail,
 *                         store slot, store tail)
 *   push_front          weft__runq_push_front, lines 48-62 (store slot at index-1,
 *                         then CAS head to (tag+1, index-1))
 *   pop                 weft__runq_pop, lines 64-76
 *   spill_push          src/sched.c spill() and local_push() around
 *                         weft__runq_spill, lines 78-92: half of a full queue
 *                         and p go to the global queue (taken here)
 *   steal               weft__runq_steal, lines 94-121: snapshot head and
 *                         tail, copy half into the thief's own (empty) queue,
 *                         CAS head, run the last one, publish the rest
 *   owner               the worker's own thread: src/sched.c
 *                         weft__sched_ready_from (push_front of the process
 *                         displaced from run-next, else local_push) and
 *                         pick_local (pop)
 *   thief               src/sched.c steal() then the thief's pick_local
 *                         draining its own queue
 *
 * Granularity: each load, store and CAS of head, tail or a slot is one step,
 * except that a load of what only the loading thread writes (the owner's
 * loads of its tail and slots, a thief's of its own tail) joins the next
 * step: it reads the same value wherever it is placed. The steal's copy of
 * one slot into the thief's own queue is one step: the thief's slots are
 * private until its tail store.
 *
 * Memory model. Promela is sequentially consistent; the C code uses acquire
 * and release only, which is enough here because every cross-thread
 * pattern is message passing, never store-then-load (SB):
 *   - owner: slot store, then tail store (release); thief: tail load
 *     (acquire), then slot load. Same for push_front's slot store and its
 *     CAS on head (release), read by the thief's head load (acquire); later
 *     pops and steals are RMWs and continue that release sequence.
 *   - thief: slot load, then CAS on head (acq_rel); owner: head load
 *     (acquire) in push, then the store that reuses the slot. So the thief's
 *     load cannot see the reuse when its CAS succeeded.
 * Not modelled: the 32-bit wrap of index and tag (a thief would have to
 * stall across 2^32 push_fronts or queue operations for a false CAS match).
 *
 * BUG variants (check.sh expects each to fail):
 *   BUG_NO_TAG       push_front keeps the tag (lines 57-58 without the +1):
 *                    a thief's stale snapshot matches again after
 *                    pop + push_front (ABA) and it takes a process the owner
 *                    already ran, and loses the one pushed in front.
 *   BUG_FRONT_ORDER  push_front publishes head before storing the slot (the
 *                    two stores of lines 56 and 58 swapped): a thief that
 *                    sees the new head reads the slot's old content.
 *   BUG_TAIL_FIRST   push stores tail before the slot (lines 43 and 44
 *                    swapped): a thief that sees the new tail steals a
 *                    stale slot.
 *
 * CHECK: pass
 * CHECK: pass -DNTHIEVES=2 -DNI=2
 * CHECK: fail -DBUG_NO_TAG
 * CHECK: fail -DBUG_FRONT_ORDER
 * CHECK: fail -DBUG_TAIL_FIRST
 */

#ifndef NTHIEVES
#define NTHIEVES 1     /* -DNTHIEVES=2 -DNI=2: two thieves racing each other */
#endif
#ifndef NI
#define NI 4           /* processes 1..NI; 0 stands for NULL */
#endif
#ifndef SIZE
#define SIZE 4         /* WEFT__RUNQ_SIZE is 256: 4 reaches the same cases */
#endif
#define NQ (1 + NTHIEVES)
#define TAGM 32        /* head = tag * TAGM + index; index stays below TAGM here */
#define BASE 8         /* first index, leaving room for push_front below it */

#define IDX(h) ((h) % TAGM)
#define TAG(h) ((h) / TAGM)
#define SLOT(q, i) slot[(q) * SIZE + ((i) % SIZE)]

byte head[NQ];
byte tail[NQ];
byte slot[NQ * SIZE];
byte taken[NI + 1];    /* ghost: how often each process left the queues */
bool owner_done;       /* ghost: the owner has drained its queue and left */

/* A process leaves the queues: run it, or hand it to the global queue. */
inline take(p)
{
    assert(p >= 1 && p <= NI);
    assert(taken[p] == 0);
    taken[p]++
}

/* Dead locals are cleared, so that they do not split states. */
#define CLEAR d_step { h = 0; nh = 0; t = 0; vt = 0; n = 0; i = 0; ok = false; p = 0 }

/* compare_exchange: on failure h gets head's current value. */
inline cas(q, h, nh, ok)
{
    atomic {
        if
        :: head[q] == h -> head[q] = nh; ok = true
        :: else -> h = head[q]; ok = false
        fi
    }
}

inline push(q, p, ok)
{
    atomic {
        h = head[q];
        t = tail[q];
        ok = t - IDX(h) < SIZE
    }
    if
    :: !ok -> skip
    :: else ->
#ifdef BUG_TAIL_FIRST
        tail[q] = t + 1;
        SLOT(q, t) = p
#else
        SLOT(q, t) = p;
        tail[q] = t + 1
#endif
    fi
}

inline push_front(q, p, ok)
{
    atomic {
        h = head[q];
        t = tail[q]
    }
    do
    :: t - IDX(h) >= SIZE -> ok = false; break
    :: else ->
#ifdef BUG_NO_TAG
        nh = TAG(h) * TAGM + IDX(h) - 1;
#else
        nh = (TAG(h) + 1) * TAGM + IDX(h) - 1;
#endif
#ifdef BUG_FRONT_ORDER
        cas(q, h, nh, ok);
        if
        :: ok -> SLOT(q, IDX(nh)) = p; break
        :: else -> skip
        fi
#else
        SLOT(q, IDX(h) - 1) = p;
        cas(q, h, nh, ok);
        if
        :: ok -> break
        :: else -> skip
        fi
#endif
    od
}

inline pop(q, p)
{
    h = head[q];
    do
    :: atomic {
            t = tail[q];
            if
            :: t == IDX(h) -> p = 0
            :: else -> p = SLOT(q, IDX(h))
            fi
        }
        if
        :: t == IDX(h) -> break
        :: else ->
            cas(q, h, h + 1, ok);
            if
            :: ok -> break
            :: else -> skip
            fi
        fi
    od
}

/* local_push: push, and while the queue is full, weft__runq_spill moves the
 * older half and p to the global queue (taken here). */
inline spill_push(q, p)
{
    push(q, p, ok);
    do
    :: ok -> break
    :: else ->
        atomic {
            h = head[q];
            t = tail[q];
            n = (t - IDX(h)) / 2;
            if
            :: n == 0 || t - IDX(h) < SIZE -> skip
            :: else ->
                i = 0;
                do
                :: i < n -> batch[i] = SLOT(q, IDX(h) + i); i++
                :: else -> break
                od
            fi
        }
        if
        :: n == 0 || t - IDX(h) < SIZE -> push(q, p, ok) /* a thief made room */
        :: else ->
            cas(q, h, h + n, ok);
            if
            :: ok ->
                d_step {
                    i = 0;
                    do
                    :: i < n -> take(batch[i]); batch[i] = 0; i++
                    :: else -> break
                    od;
                    take(p)
                }
            :: else -> push(q, p, ok) /* thieves took some: retry the push */
            fi
        fi
    od
}

/* Thief q (its own queue, empty) steals from victim v; got is 0 or the
 * process to run. */
inline steal(q, v, got)
{
    do
    :: atomic {
            t = tail[q];
            h = head[v]
        };
        atomic {
            vt = tail[v];
            n = vt - IDX(h);
            n = n - n / 2
        }
        if
        :: n == 0 -> got = 0; break
        :: n > SIZE / 2 -> skip /* inconsistent snapshot */
        :: else ->
            i = 0;
            do
            :: i < n -> SLOT(q, t + i) = SLOT(v, IDX(h) + i); i++
            :: else -> break
            od;
            cas(v, h, h + n, ok);
            if
            :: ok ->
                n--;
                got = SLOT(q, t + n);
                if
                :: n > 0 -> tail[q] = t + n
                :: else -> skip
                fi;
                break
            :: else -> skip
            fi
        fi
    od
}

proctype owner()
{
    byte h, nh, t, vt, n, p, i, next = 1;
    byte batch[SIZE / 2];
    bool ok;

    do
    :: next <= NI -> spill_push(0, next); next++; CLEAR
    :: next <= NI ->
        /* the process displaced from run-next goes in front */
        push_front(0, next, ok);
        if
        :: !ok -> spill_push(0, next)
        :: else -> skip
        fi;
        next++;
        CLEAR
    :: pop(0, p);
        if
        :: p != 0 -> d_step { take(p) }
        :: else -> skip
        fi;
        CLEAR
    :: next > NI -> break
    od;
    do
    :: pop(0, p);
        if
        :: p != 0 -> d_step { take(p) }; CLEAR
        :: else -> break
        fi
    od;
    owner_done = true
}

proctype thief(byte me)
{
    byte h, nh, t, vt, n, p, i;
    bool ok;

    do
    :: /* A snapshot of an empty queue returns NULL and changes nothing:
        * the thief looks only when there may be something to take. */
        tail[0] != IDX(head[0]) || owner_done;
        steal(me, 0, p);
        if
        :: p != 0 ->
            /* Run it, then its own pick_local pops what it published: that
             * queue is private here (nobody steals from a thief), so the
             * drain is one step. */
            d_step {
                take(p);
                do
                :: tail[me] != head[me] ->
                    take(SLOT(me, head[me]));
                    SLOT(me, head[me]) = 0;
                    head[me]++
                :: else -> break
                od;
                head[me] = BASE; /* empty and private: same state at any index */
                tail[me] = BASE
            };
            CLEAR
        :: else ->
            CLEAR;
            if
            :: owner_done -> break
            :: else -> skip
            fi
        fi
    od
}

init
{
    byte k;
    atomic {
        k = 0;
        do
        :: k < NQ -> head[k] = BASE; tail[k] = BASE; k++
        :: else -> break
        od;
        k = 0;
        run owner();
        k = 1;
        do
        :: k <= NTHIEVES -> run thief(k); k++
        :: else -> break
        od;
        k = 0
    }
    _nr_pr == 1;
    k = 1;
    do
    :: k <= NI -> assert(taken[k] == 1); k++
    :: else -> break
    od
}
