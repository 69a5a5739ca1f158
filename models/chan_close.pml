/* chan_close.pml: closing a rendezvous channel (src/chan.c) while senders
 * and a receiver block on it and a timer races to claim one of the waits
 * (src/wait.c).
 *
 * Checks, for every interleaving:
 *   - every wait is resumed exactly once (assertions in resume; a wait never
 *     resumed leaves its owner blocked: an invalid end state);
 *   - a resume follows a claim, and nobody touches a waiting operation
 *     (struct weft__chan_op, on its waiter's stack) after its owner has
 *     returned (op_live);
 *   - nothing is lost or duplicated: at the end, the receiver got 0 and the
 *     value of the one sender that got 0, or -EPIPE and no sender got 0;
 *     a sender gets 0, -EPIPE or (the timed one) -ETIMEDOUT.
 * Default scenario: sender 1 is a process with a deadline (its timer may
 * fire at any time), sender 2 and the receiver are outside threads (futex
 * waits), one closer. -DNONBLOCK instead: one sender (a process), a
 * non-blocking receiver (deadline 0) that first tries the lock-free
 * emptiness check of src/chan.h, and the closer; checks that the lock-free
 * -ETIMEDOUT is only given when at one moment during the call the channel
 * was open with no sender waiting (ghost nb_seen).
 *
 * Model step / label            C code (line numbers as of writing; the
 *                               function names are the reference)
 *   lock/unlock of clock         weft__spin_lock(&c->lock)
 *   opq_push, opq_unlink          src/chan.c opq_push (71-81), opq_unlink (83-94)
 *   opq_claim                     opq_claim (98-107): unlink the head, claim
 *                                 its wait, drop it if the claim fails
 *   claim                         src/internal.h weft__wait_claim (306-315):
 *                                 CAS OPEN ticket -> CLAIMED, then result
 *   resume                        src/wait.c resume_from (43-51): a process
 *                                 becomes runnable (weft__sched_ready_from),
 *                                 a thread's futex word is set
 *   sender/receiver               chan_op (364-391): try_send (149-174) /
 *                                 try_recv (176-208) under the lock, then
 *                                 handoff_finish (133-142) after the unlock
 *                                 (copy, status = 0, resume), or block
 *                                 (350-360) -> wait_on (325-340):
 *                                 weft__wait_open (src/wait.c 33-39), arm,
 *                                 unlock, weft__wait_on (172-186) ->
 *                                 wait_proc (114-136) / wait_thread
 *                                 (138-170); a wait ended by a claim with a
 *                                 result < 0 disarms under the lock
 *   timer                         src/timer.c weft__timer_run firing
 *                                 on_timeout (src/wait.c 92-102) under the
 *                                 heap lock, and weft__timer_cancel
 *                                 (timer.c 114-126) after the wait
 *   closer                        chan_close (409-433): closed = true,
 *                                 release fence, claim_all (235-246), unlock,
 *                                 wake_all (248-256): next, status, resume
 *   nb (with NONBLOCK)            chan_op's deadline 0 shortcut (373-375)
 *                                 with weft__chan_empty_unlocked (src/chan.h
 *                                 92-103): load sendq.head, acquire fence,
 *                                 load closed
 *
 * Abstracted: handles, element sizes and note_user; one channel of
 * capacity 0 (a buffered one adds only the ring under the lock); the
 * deadline of the timed sender is "any time" (its timer process may fire
 * whenever it is armed); settle_early never ends a wait (the runtime is
 * running and deadlines are in the future). The scheduler is reduced to
 * "runnable": sched.c and park.pml cover the rest.
 *
 * Memory model. Promela is sequentially consistent. The C code needs:
 *   - claim CAS (acq_rel) then result and status stores, then the resume's
 *     release (the run queue's or the futex word's store), read by the
 *     waiter after its acquire: message passing, acquire/release suffices.
 *   - the lock-free emptiness check: close stores closed, issues a release
 *     fence, then empties the queues (relaxed stores of head); the check
 *     loads head, issues an acquire fence, then loads closed. If the check
 *     reads the head written by close's unlink, the fences synchronize and
 *     it reads closed = true. That is what the model's order of steps
 *     stands for; without the two fences the C code would not get it.
 *
 * BUG variants (check.sh expects each to fail):
 *   BUG_STATUS_AFTER_RESUME  wake_all resumes the waiter before storing
 *                    op->status (lines 252-253 swapped): the waiter reads
 *                    status 0 (sent!) from a closed channel, or the closer
 *                    writes into an operation whose owner has returned.
 *   BUG_NEXT_AFTER_RESUME    wake_all reads op->next after resuming op
 *                    (line 251 moved down): reads a returned waiter's stack.
 *   BUG_NO_CLAIM_CHECK       opq_claim uses an op whose claim failed
 *                    (line 103's check dropped): a wait the timer already
 *                    claimed is resumed a second time.
 *   BUG_CLOSED_FIRST (with NONBLOCK) the lock-free check loads closed
 *                    before the queue head: it answers -ETIMEDOUT for a
 *                    channel that was never open and empty at once.
 *
 * CHECK: pass
 * CHECK: pass -DNONBLOCK
 * CHECK: fail -DBUG_STATUS_AFTER_RESUME
 * CHECK: fail -DBUG_NEXT_AFTER_RESUME
 * CHECK: fail -DBUG_NO_CLAIM_CHECK
 * CHECK: fail -DNONBLOCK -DBUG_CLOSED_FIRST
 */

/* Results, as small numbers. */
#define OK 0
#define EPIPE 1
#define ETIMEDOUT 2
#define UNSET 9

/* Waiter phases (src/internal.h WEFT__WAIT_*). */
#define OPEN 1
#define CLAIMED 2
#define PHASE 3

/* Waiters and their operations share ids: 1, 2, 3; 0 is NULL. */
#define NW 4

/* The channel, under clock. sendq_head and closed are also read without
 * the lock (the non-blocking check). */
byte clock;            /* 0: free, else owner id */
bool closed;
byte sendq_head, sendq_tail, recvq_head, recvq_tail;

/* struct weft__chan_op, one per waiter */
byte op_next[NW], op_prev[NW];
bool op_linked[NW];
byte op_ticket[NW];
byte op_status[NW];
byte op_buf[NW];       /* the value sent, or the value received */
bool op_live[NW];      /* ghost: its owner is still inside the call */

/* struct weft__waiter */
byte w_state[NW];      /* sequence << 2 | phase */
byte w_result[NW];
bool w_proc[NW];       /* a process (runnable) or an outside thread (futex) */
bool runnable[NW];
bit w_futex[NW];
byte wakes[NW];        /* ghost: resumes of the current wait */

/* The timed sender's timer, under the heap lock. */
byte heap_lock;
bool in_heap;
byte timer_ticket;
bool timer_user_done;  /* its wait is over: the timer cannot be armed again */

/* Outcomes, for the final check. */
byte send_status[NW];
byte recv_status;
byte recv_val;

#ifdef NONBLOCK
bool nb_active;        /* ghost: inside the lock-free check */
bool nb_seen;          /* ghost: open and nothing to receive at one moment of it */
#define NOTE_NB \
    if \
    :: nb_active && sendq_head == 0 && !closed -> nb_seen = true \
    :: else -> skip \
    fi
#else
#define NOTE_NB skip
#endif

inline live(op)
{
    assert(op_live[op])
}

inline clock_lock(id)
{
    atomic {
        clock == 0 -> clock = id
    }
}

inline clock_unlock()
{
    clock = 0
}

/* opq_push on sendq (send) or recvq. */
inline opq_push(send, op)
{
    atomic {
        op_next[op] = 0;
        if
        :: send ->
            op_prev[op] = sendq_tail;
            if
            :: sendq_tail != 0 -> op_next[sendq_tail] = op
            :: else -> sendq_head = op
            fi;
            sendq_tail = op
        :: else ->
            op_prev[op] = recvq_tail;
            if
            :: recvq_tail != 0 -> op_next[recvq_tail] = op
            :: else -> recvq_head = op
            fi;
            recvq_tail = op
        fi;
        op_linked[op] = true;
        NOTE_NB
    }
}

inline opq_unlink(send, op)
{
    atomic {
        live(op);
        if
        :: op_prev[op] != 0 -> op_next[op_prev[op]] = op_next[op]
        :: else ->
            if
            :: send -> sendq_head = op_next[op]
            :: else -> recvq_head = op_next[op]
            fi
        fi;
        if
        :: op_next[op] != 0 -> op_prev[op_next[op]] = op_prev[op]
        :: else ->
            if
            :: send -> sendq_tail = op_prev[op]
            :: else -> recvq_tail = op_prev[op]
            fi
        fi;
        op_linked[op] = false;
        NOTE_NB
    }
}

/* weft__wait_claim: ok tells whether this claimer won. */
inline claim(w, ticket, result, ok)
{
    atomic {
        if
        :: w_state[w] == ticket -> w_state[w] = (ticket & ~PHASE) | CLAIMED; ok = true
        :: else -> ok = false
        fi
    };
    if
    :: ok -> w_result[w] = result
    :: else -> skip
    fi
}

/* resume_from: the claimer's last touch of the waiter. */
inline resume(w)
{
    atomic {
        assert((w_state[w] & PHASE) == CLAIMED);
        assert(wakes[w] == 0);
        wakes[w]++;
        if
        :: w_proc[w] -> runnable[w] = true
        :: else -> w_futex[w] = 1
        fi
    }
}

/* opq_claim: the first op of the queue whose wait this claims, or 0. */
inline opq_claim(send, op)
{
    do
    :: atomic {
            if
            :: send -> op = sendq_head
            :: else -> op = recvq_head
            fi
        };
        if
        :: op == 0 -> break
        :: else ->
            opq_unlink(send, op);
            claim(op, op_ticket[op], 0, ok); /* result: the case index, 0 */
#ifdef BUG_NO_CLAIM_CHECK
            ok = true;
#endif
            if
            :: ok -> break
            :: else -> skip
            fi
        fi
    od
}

/* The blocking part of a send or receive by waiter me, with its op queued
 * on the channel (locked by the caller, unlocked here): chan.c wait_on
 * and wait.c weft__wait_on. */
inline wait_on(me, send, timed, status)
{
    /* weft__wait_open: a new sequence, OPEN (release store) */
    op_ticket[me] = ((w_state[me] & ~PHASE) + 4) | OPEN;
    w_state[me] = op_ticket[me];
    opq_push(send, me);
    clock_unlock();
    if
    :: w_proc[me] ->
        /* wait_proc */
        if
        :: timed ->
            atomic { /* weft__timer_add, under the heap lock */
                heap_lock == 0 ->
                timer_ticket = op_ticket[me];
                in_heap = true
            }
        :: else -> skip
        fi;
        runnable[me]; /* weft__sched_block_on until resumed */
        runnable[me] = false;
        if
        :: timed && w_result[me] != ETIMEDOUT ->
            atomic { /* weft__timer_cancel */
                heap_lock == 0 ->
                in_heap = false
            }
        :: else -> skip
        fi
    :: else ->
        /* wait_thread: until the claimer's futex store */
        w_futex[me] != 0;
        w_futex[me] = 0
    fi;
    atomic {
        assert(wakes[me] == 1);
        wakes[me] = 0
    };
    if
    :: w_result[me] == 0 -> status = op_status[me] /* r >= 0: completed, unlinked by its completer */
    :: else ->
        clock_lock(me);
        if /* weft__chan_disarm */
        :: op_linked[me] -> opq_unlink(send, me)
        :: else -> skip
        fi;
        clock_unlock();
        status = w_result[me]
    fi
}

proctype sender(byte me; bool timed)
{
    byte r, status = UNSET;
    bool ok;

    op_live[me] = true;
    op_buf[me] = 10 + me;
    clock_lock(me);
    if
    :: closed -> status = EPIPE; clock_unlock()
    :: else ->
        opq_claim(false, r);
        if
        :: r != 0 ->
            clock_unlock();
            /* handoff_finish: copy into the receiver's buffer, status, resume */
            atomic { live(r); op_buf[r] = op_buf[me] };
            atomic { live(r); op_status[r] = OK };
            resume(r);
            status = OK
        :: else ->
            wait_on(me, true, timed, status)
        fi
    fi;
    atomic {
        send_status[me] = status;
        op_live[me] = false;
        if
        :: timed -> timer_user_done = true
        :: else -> skip
        fi
    }
}

proctype receiver(byte me)
{
    byte s, status = UNSET;
    bool ok;

    op_live[me] = true;
    clock_lock(me);
    opq_claim(true, s);
    if
    :: s != 0 ->
        clock_unlock();
        atomic { live(s); op_buf[me] = op_buf[s] };
        atomic { live(s); op_status[s] = OK };
        resume(s);
        status = OK
    :: else ->
        if
        :: closed -> status = EPIPE; clock_unlock()
        :: else -> wait_on(me, false, false, status)
        fi
    fi;
    atomic {
        recv_status = status;
        if
        :: status == OK -> recv_val = op_buf[me]
        :: else -> skip
        fi;
        op_live[me] = false
    }
}

#ifdef NONBLOCK
/* weft_chan_recv with deadline 0, from a thread. */
proctype nb_receiver(byte me)
{
    byte s, status = UNSET;
    bool ok, nothing, shut;

    op_live[me] = true;
    atomic {
        nb_active = true;
        NOTE_NB
    };
#ifdef BUG_CLOSED_FIRST
    shut = closed;
    nothing = sendq_head == 0;
#else
    nothing = sendq_head == 0;
    /* acquire fence */
    shut = closed;
#endif
    nb_active = false;
    if
    :: nothing && !shut ->
        assert(nb_seen);
        status = ETIMEDOUT
    :: else ->
        clock_lock(me);
        opq_claim(true, s);
        if
        :: s != 0 ->
            clock_unlock();
            atomic { live(s); op_buf[me] = op_buf[s] };
            atomic { live(s); op_status[s] = OK };
            resume(s);
            status = OK
        :: else ->
            if
            :: closed -> status = EPIPE
            :: else -> status = ETIMEDOUT /* block() with deadline 0 */
            fi;
            clock_unlock()
        fi
    fi;
    atomic {
        recv_status = status;
        if
        :: status == OK -> recv_val = op_buf[me]
        :: else -> skip
        fi;
        op_live[me] = false
    }
}
#endif

proctype closer()
{
    byte op, woken, next;
    bool ok;

    clock_lock(NW);
    atomic {
        closed = true;
        NOTE_NB
    };
    /* release fence; claim_all: senders, then receivers */
    opq_claim(true, op);
    do
    :: op != 0 ->
        atomic { live(op); op_next[op] = woken; woken = op };
        opq_claim(true, op)
    :: else -> break
    od;
    opq_claim(false, op);
    do
    :: op != 0 ->
        atomic { live(op); op_next[op] = woken; woken = op };
        opq_claim(false, op)
    :: else -> break
    od;
    clock_unlock();
    /* wake_all */
    op = woken;
    do
    :: op != 0 ->
#ifdef BUG_NEXT_AFTER_RESUME
        atomic { live(op); op_status[op] = EPIPE };
        resume(op);
        atomic { live(op); next = op_next[op] };
#elif defined(BUG_STATUS_AFTER_RESUME)
        atomic { live(op); next = op_next[op] };
        resume(op);
        atomic { live(op); op_status[op] = EPIPE };
#else
        atomic { live(op); next = op_next[op] };
        atomic { live(op); op_status[op] = EPIPE };
        resume(op);
#endif
        op = next
    :: else -> break
    od
}

/* The timed sender's timer: fires once at any time while armed (on_timeout
 * under the heap lock), unless cancelled first. */
proctype timer(byte w)
{
    bool ok;

    do
    :: atomic {
            heap_lock == 0 && in_heap ->
            heap_lock = 1;
            in_heap = false
        };
        claim(w, timer_ticket, ETIMEDOUT, ok);
        if
        :: ok -> resume(w)
        :: else -> skip
        fi;
        heap_lock = 0;
        break
    :: timer_user_done && !in_heap -> break
    od
}

init
{
    byte k, nok;

    atomic {
        send_status[1] = UNSET;
        send_status[2] = UNSET;
        recv_status = UNSET;
        w_proc[1] = true;
        run sender(1, true);
        run timer(1);
#ifdef NONBLOCK
        run nb_receiver(3);
#else
        run sender(2, false);
        run receiver(3);
#endif
        run closer()
    }
    _nr_pr == 1;

    /* Nothing lost, nothing duplicated. */
    nok = 0;
    k = 1;
    do
    :: k <= 2 ->
        assert(send_status[k] == OK || send_status[k] == EPIPE ||
               send_status[k] == ETIMEDOUT && k == 1
#ifdef NONBLOCK
               || send_status[k] == UNSET && k == 2
#endif
               );
        if
        :: send_status[k] == OK -> nok++; assert(recv_status == OK && recv_val == 10 + k)
        :: else -> skip
        fi;
        k++
    :: else -> break
    od;
    assert(recv_status == OK && nok == 1 || recv_status != OK && nok == 0);
#ifdef NONBLOCK
    assert(recv_status == OK || recv_status == EPIPE || recv_status == ETIMEDOUT);
#else
    assert(recv_status == OK || recv_status == EPIPE);
#endif
    assert(clock == 0 && !in_heap)
}
