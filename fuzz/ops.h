/* ops.h: the fuzz programs' operations. Each makes one weft call (or none,
 * when it does not apply), checks its result against the model (model.h)
 * and records it there. Each returns true when the calling process must
 * return: the call was canceled (the runtime is stopping). */
#ifndef FZ_OPS_H
#define FZ_OPS_H

#include <stdbool.h>
#include <stdint.h>

#include "model.h"

/* The deadline of a deadline class (program.h): 0, 20 us, 200 us, forever. */
int64_t fz_deadline(int cls);

/* ---- channels (chanops.c); ci is a channel of the model or FZ_NOCHAN ---- */

/* variant 0: a channel of capacity cap in slot; 1: element size 0; 2: too big. */
bool fz_make(int proc, int slot, int cap, int variant);
bool fz_send(int proc, int ci, int cls, bool wrong_size);
bool fz_recv(int proc, int ci, int cls, bool wrong_size);
bool fz_close(int proc, int ci);
bool fz_release(int proc, int ci);
bool fz_retain(int proc, int ci);
bool fz_len(int proc, int ci);
bool fz_cap(int proc, int ci);
/* cases packs n cases of 4 bits each (program.h). */
bool fz_select(int proc, unsigned n, unsigned cases, int cls, int policy);

/* Main's end: closes and drains every channel made so far; true if canceled. */
bool fz_drain_all(int proc);

/* ---- processes (procops.c) ---- */

/* worker: -1 for the scheduler's choice; out of range gives -EINVAL. */
bool fz_spawn(int proc, int body, bool detached, bool named, bool pinned, int worker);
bool fz_join(int proc, int target, int cls);
bool fz_detach(int proc, int target);
bool fz_proc_name(int proc, int target);
bool fz_self(int proc);
bool fz_workers(int proc);
bool fz_dump(int proc);
bool fz_yield(int proc);
bool fz_sleep(int proc, int cls);
/* Ends the process through weft_exit. */
_Noreturn void fz_exit(int proc);


#endif
