/* interp.h: the interpreter of fuzz programs: the processes that run the
 * bodies of a program (program.h), one op at a time. */
#ifndef FZ_INTERP_H
#define FZ_INTERP_H

#include <stdint.h>

/* A spawned process: runs the body of process slot (intptr_t)arg. */
intptr_t fz_proc_entry(void *arg);

/* weft_run's main process: makes the initial channels, runs body 0, then
 * closes and drains every channel (model.h). */
intptr_t fz_main(void *arg);

#endif
