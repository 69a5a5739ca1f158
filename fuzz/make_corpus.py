#!/usr/bin/env python3
"""make_corpus.py: writes the seed corpus of the fuzz programs (fuzz/corpus/).

Each input is a small hand-made program in the encoding of program.h; the
names say what each exercises. The outputs are committed; run this again
(python3 fuzz/make_corpus.py) after changing the encoding.
"""
import os

POLL, SHORT, LONG, FOREVER = 0, 1, 2, 3  # deadline classes
RANDOM, PCT, THREADS = 0, 1, 3           # schedules (header byte 0, bits 0-1)


def header(sched=RANDOM, workers=1, twice=False, seed=1, depth=0, steps=0, fail=None,
           chans=(None, None, None, None)):
    """chans: the initial capacity of each slot's channel, or None."""
    b0 = sched | ((workers - 1) << 2) | (0x10 if twice else 0)
    h = [b0] + list(seed.to_bytes(4, "little")) + [depth, steps // 8]
    h.append(0 if fail is None else 0x80 | ((fail - 1) // 2))
    h += [0 if c is None else c + 1 for c in chans]
    return bytes(h)


def op(code, m=0, a=0, b=0):
    return bytes([code | (m << 4), a, b])


END = op(0)
def spawn(body, detached=False, named=True, pinned=False, worker=None):
    """worker: None for the scheduler's choice, else b % (workers + 1)."""
    m = detached | (named << 1) | (pinned << 2) | ((worker is not None) << 3)
    return op(1, m, body - 1, worker or 0)
def make(slot, cap, variant=0): return op(2, variant, slot | (cap << 2))
def send(slot, cls=FOREVER, wrong=False): return op(3, int(wrong), slot | (cls << 2))
def recv(slot, cls=FOREVER, wrong=False): return op(4, int(wrong), slot | (cls << 2))
def close(slot): return op(5, 0, slot)
def release(slot): return op(6, 0, slot)
def retain(slot): return op(7, 0, slot)


def select(cases, cls=FOREVER, priority=False):
    """cases: (kind, slot, disabled) with kind 's' or 'r'."""
    bits = 0
    for i, (kind, slot, disabled) in enumerate(cases):
        bits |= ((kind == "s") | (slot << 1) | (disabled << 3)) << (4 * i)
    return op(9 if priority else 8, (len(cases) - 1) | (cls << 2), bits & 0xFF, bits >> 8)


YIELD = op(10)
def sleep(cls): return op(11, 0, cls)
def join(proc, cls=FOREVER): return op(12, 0, proc | (cls << 3))
def detach(proc): return op(13, 0, proc)
def length(slot): return op(14, 0, slot)
def capacity(slot): return op(14, 1, slot)
def name(proc): return op(14, 2, proc)
SELF = op(14, 3)
DUMP = op(14, 4)
WORKERS = op(14, 5)
EXIT = op(15)


def program(hdr, *bodies):
    """bodies[0] is main's; each body is a list of ops."""
    return hdr + END.join(b"".join(body) for body in bodies)


CORPUS = {
    # rendezvous ping-pong between main and one child
    "pingpong": program(header(chans=(0, 0, None, None)),
                        [spawn(1), send(0), recv(1), send(0), recv(1), join(1)],
                        [recv(0), send(1), recv(0), send(1)]),
    # two senders into one buffered channel; per-sender FIFO
    "buffered-fifo": program(header(workers=2, chans=(2, None, None, None)),
                             [spawn(1), spawn(2)] + [recv(0)] * 6 + [join(1), join(2)],
                             [send(0)] * 3, [send(0)] * 3),
    # values buffered at close are drained, then -EPIPE; sends after close fail
    "close-drain": program(header(chans=(4, None, None, None)),
                           [send(0, POLL), send(0, POLL), close(0), send(0, POLL), recv(0, POLL),
                            recv(0, POLL), recv(0, POLL), close(0)]),
    # release twice, use after release, retain after release
    "release-twice": program(header(chans=(1, 0, None, None)),
                             [send(0, POLL), release(0), release(0), send(0, POLL), recv(0, POLL),
                              retain(0), close(0), length(0), capacity(0)]),
    # a second reference keeps the channel; the last release destroys it
    "retain-release": program(header(chans=(2, None, None, None)),
                              [retain(0), send(0, POLL), release(0), length(0), recv(0, POLL),
                               send(0, POLL), release(0), release(0), capacity(0), make(0, 3),
                               send(0, POLL)]),
    # a blocked receiver woken by a destroying release (-EBADF)
    "release-wakes": program(header(chans=(0, None, None, None)),
                             [spawn(1), YIELD, release(0), join(1)],
                             [recv(0, FOREVER), send(0, SHORT)]),
    # fair select over two channels fed by two children
    "select-fair": program(header(workers=2, chans=(1, 1, None, None)),
                           [spawn(1), spawn(2)] + [select([("r", 0, 0), ("r", 1, 0)])] * 4,
                           [send(0), send(0)], [send(1), send(1)]),
    # priority select with both cases ready, then send and receive cases mixed
    "select-priority": program(header(chans=(2, 2, 0, None)),
                               [send(0, POLL), send(1, POLL),
                                select([("r", 1, 0), ("r", 0, 0)], POLL, priority=True),
                                select([("s", 2, 0), ("r", 0, 0), ("s", 1, 0)], SHORT, priority=True),
                                select([("r", 2, 0), ("s", 2, 0)], SHORT)]),
    # timeouts: nothing ready, every case disabled, rendezvous with no peer
    "select-timeout": program(header(chans=(0, 3, None, None)),
                              [select([("r", 0, 0), ("s", 0, 0)], SHORT),
                               select([("r", 1, 1), ("s", 0, 1)], LONG),
                               select([("r", 3, 0)], POLL), send(0, SHORT), recv(1, SHORT),
                               recv(0, POLL)]),
    # join twice, detach after join, detached spawn, self-join, names
    "join-detach": program(header(),
                           [spawn(1), join(1), join(1, POLL), detach(1), spawn(2, detached=True),
                            join(2, POLL), name(2), spawn(1, named=False), name(3), detach(3),
                            join(3, POLL), join(0), name(0), SELF, join(5)],
                           [YIELD, name(0), SELF], [sleep(SHORT), detach(2)]),
    # main waits forever for a value nobody sends: -EDEADLK
    "deadlock": program(header(chans=(0, None, None, None)), [recv(0, FOREVER)]),
    # a cycle of waits: two children each wait for the other; main joins one
    "deadlock-cycle": program(header(workers=2, chans=(0, 0, None, None)),
                              [spawn(1), spawn(2), join(1)],
                              [recv(0), send(1)], [recv(1), send(0)]),
    # sleeps and yields between sends with deadlines
    "sleep-yield": program(header(chans=(1, None, None, None)),
                           [spawn(1), sleep(SHORT), YIELD, recv(0, LONG), sleep(POLL),
                            recv(0, LONG), join(1, LONG), join(1)],
                           [YIELD, send(0, SHORT), sleep(LONG), send(0, LONG)]),
    # a child ends through weft_exit; then main does
    "exit": program(header(chans=(1, None, None, None)),
                    [spawn(1), recv(0), join(1), EXIT, send(0, POLL)],
                    [send(0), EXIT, send(0)]),
    # misuse: wrong sizes, bad makes, queries on slots that hold nothing
    "misuse": program(header(chans=(1, None, None, None)),
                      [send(0, POLL, wrong=True), recv(0, POLL, wrong=True), make(1, 0, 1),
                       make(1, 0, 2), send(1, POLL), close(1), release(1), retain(1),
                       length(2), capacity(0), select([("r", 3, 0)], POLL)]),
    # the ping-pong under PCT on three workers, run twice (determinism)
    "pct-twice": program(header(sched=PCT, workers=3, twice=True, seed=7, depth=3, steps=64,
                                chans=(0, 1, None, None)),
                         [spawn(1), spawn(2), send(0), recv(1), send(0), recv(1), join(2)],
                         [recv(0), send(1), recv(0), send(1)],
                         [select([("r", 1, 0), ("s", 0, 0)], LONG), YIELD]),
    # real threads (one worker)
    "threads": program(header(sched=THREADS, chans=(0, 2, None, None)),
                       [spawn(1), send(0), recv(1), select([("r", 1, 0)], LONG), join(1)],
                       [recv(0), send(1), send(1, SHORT)]),
    # an allocation fails midway: codes must say -ENOMEM, nothing leaks
    "alloc-fail": program(header(fail=41, chans=(1, 1, None, None)),
                          [spawn(1), make(2, 4), make(3, 2), send(2, SHORT), recv(2, SHORT),
                           join(1, LONG), spawn(2), join(2)],
                          [send(0), sleep(SHORT), recv(0, SHORT)], [YIELD]),
    # pinned processes on given workers, a worker out of range, dumps
    "pinned-dump": program(header(workers=3, seed=5, chans=(1, 0, None, None)),
                           [spawn(1, pinned=True, worker=2), spawn(2, pinned=True),
                            spawn(3, worker=1), spawn(3, worker=3), DUMP, WORKERS, recv(0),
                            send(1), join(1), join(2), DUMP],
                           [YIELD, SELF, send(0), SELF, sleep(SHORT), SELF],
                           [recv(1), SELF, YIELD, SELF, DUMP], [YIELD, WORKERS]),
    # every process slot in use; a chain of spawns
    "many-procs": program(header(workers=4, seed=3, chans=(3, 0, None, None)),
                          [spawn(1), spawn(1), spawn(2)] + [recv(0, LONG)] * 4,
                          [spawn(2), send(0, LONG), send(0, LONG)],
                          [spawn(3), send(1, SHORT)], [recv(1, LONG), SELF]),
}


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
    os.makedirs(out, exist_ok=True)
    for name_, data in sorted(CORPUS.items()):
        with open(os.path.join(out, name_), "wb") as f:
            f.write(data)
    print(f"{len(CORPUS)} inputs in {out}")


if __name__ == "__main__":
    main()
