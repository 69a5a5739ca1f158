/* error.c: names of the codes weft returns. */
#include <limits.h>
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
    case -ECANCELED: return "canceled (the runtime is shutting down, or a graph was cancelled)";
    case -ESHUTDOWN: return "no runtime is running";
    case -EBUSY: return "busy: in use (a running runtime, a pid that has a name)";
    case -EEXIST: return "already exists (a name taken)";
    case -ENOENT: return "no such entry (name, monitor or child)";
    case -EDEADLK: return "deadlock: the call or the program would wait forever";
    case -EPERM: return "not allowed from this context";
    case -E2BIG: return "argument too large";
    case -EAGAIN: return "resource temporarily unavailable";
    case -EPIPE: return "closed (a channel or stream; a connection whose peer is gone)";
    case -EMSGSIZE: return "wrong message size";
    case -EOVERFLOW: return "too many references";
    case -EALREADY: return "already done (a dataflow variable bound, a graph run, before)";
    case -EINPROGRESS: return "in progress (a graph's run has not ended)";
    case -ENOTCONN: return "not connected (a socket, a graph's port)";
    case -EISCONN: return "already connected (a socket, a graph's port)";
    case -ENAMETOOLONG: return "name too long";
    case -ECONNABORTED: return "aborted (a connection, or a graph's node process that was killed)";
    case -ECONNRESET: return "connection reset by the peer";
    case -ENXIO: return "no such address (a name that does not resolve)";
    default: break;
    }
    if (err >= 0)
        return "not an error code";
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
    /* Codes a user's function chose (a graph node's -ERANGE): the C
     * library's text, which is static and the same in every thread. */
    const char *text = err > INT_MIN ? strerrordesc_np(-err) : NULL;
    if (text)
        return text;
#endif
    return "unknown error";
}
