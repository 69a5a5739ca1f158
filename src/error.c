/* error.c: names of the codes weft returns. */
#include <string.h>

#include "internal.h"

const char *weft_strerror(int err)
{
    switch (err) {
    case 0: return "success";
    case -EINVAL: return "invalid argument";
    case -ESRCH: return "no such process (unknown, stale or released pid)";
    case -EBADF: return "bad handle (unknown, stale or closed)";
    case -ENOMEM: return "out of memory";
    case -ETIMEDOUT: return "deadline passed";
    case -ECANCELED: return "canceled: the runtime is shutting down";
    case -ESHUTDOWN: return "no runtime is running";
    case -EBUSY: return "busy: in use (a running runtime, a pid that has a name)";
    case -EEXIST: return "already exists (a name taken)";
    case -ENOENT: return "no such entry (name, monitor or child)";
    case -EDEADLK: return "deadlock: the call or the program would wait forever";
    case -EPERM: return "not allowed from this context";
    case -E2BIG: return "argument too large";
    case -EAGAIN: return "resource temporarily unavailable";
    case -EPIPE: return "closed";
    case -EMSGSIZE: return "wrong message size";
    case -EOVERFLOW: return "too many references";
    case -EALREADY: return "already done (a dataflow variable bound or failed before)";
    default: break;
    }
    return err < 0 ? "unknown error" : "not an error code";
}
