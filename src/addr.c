/* addr.c: socket addresses: numeric IP literals, Unix paths, name
 * resolution on the offload pool, and their text.
 *
 * A weft_addr is a sockaddr_storage plus the length the socket calls take.
 * Every function here fills its output only on success. Resolution runs
 * getaddrinfo on a helper thread (weft_offload): the request block is shared
 * with that thread, and whichever side finishes with it last frees it (see
 * struct lookup).
 */
#include <arpa/inet.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "io.h"

#define UNIX_PATH_MAX sizeof(((struct sockaddr_un *)0)->sun_path)

/* weft.h keeps the address in bytes (it does not include <sys/socket.h>). */
_Static_assert(sizeof(((weft_addr *)0)->sa) >= sizeof(struct sockaddr_storage),
               "weft_addr holds any socket address");
static inline int addr_family(const weft_addr *a)
{
    return ((const struct sockaddr *)(const void *)&a->sa)->sa_family;
}

/* 1: addr holds an address of a family weft knows, with a length that
 * covers it; 0 otherwise. */
static bool addr_valid(const weft_addr *a)
{
    switch (addr_family(a)) {
    case AF_INET: return a->len >= sizeof(struct sockaddr_in) && a->len <= sizeof a->sa;
    case AF_INET6: return a->len >= sizeof(struct sockaddr_in6) && a->len <= sizeof a->sa;
    case AF_UNIX: return a->len >= offsetof(struct sockaddr_un, sun_path) && a->len <= sizeof(struct sockaddr_un);
    default: return false;
    }
}

static int addr_check(const weft_addr *a, const char *fn)
{
    if (!a)
        return weft__misuse(-EINVAL, "%s: addr is NULL", fn);
    if (!addr_valid(a))
        return weft__misuse(-EINVAL, "%s: an address of family %d, length %u", fn,
                            (int)addr_family(a), (unsigned)a->len);
    return 0;
}

/* Parses a literal: 0 with *out filled, or -EINVAL. The port is set. */
static int parse_ip(weft_addr *out, const char *ip, int port)
{
    weft_addr a;
    memset(&a, 0, sizeof a);
    struct sockaddr_in *v4 = (struct sockaddr_in *)&a.sa;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&a.sa;
    if (!ip) {
        v4->sin_family = AF_INET;
        v4->sin_addr.s_addr = htonl(INADDR_ANY);
        v4->sin_port = htons((uint16_t)port);
        a.len = sizeof *v4;
        *out = a;
        return 0;
    }
    if (inet_pton(AF_INET, ip, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        a.len = sizeof *v4;
        *out = a;
        return 0;
    }
    /* IPv6, with an optional zone: "fe80::1%eth0" or "fe80::1%2". */
    char text[INET6_ADDRSTRLEN + IF_NAMESIZE + 1];
    size_t n = strnlen(ip, sizeof text);
    if (n == sizeof text)
        return -EINVAL;
    memcpy(text, ip, n + 1);
    char *zone = strchr(text, '%');
    if (zone)
        *zone++ = '\0';
    if (inet_pton(AF_INET6, text, &v6->sin6_addr) != 1)
        return -EINVAL;
    if (zone) {
        char *end;
        unsigned long idx = strtoul(zone, &end, 10);
        if (*zone >= '0' && *zone <= '9' && *end == '\0' && idx <= UINT32_MAX)
            v6->sin6_scope_id = (uint32_t)idx;
        else if (!*zone || !(v6->sin6_scope_id = if_nametoindex(zone)))
            return -EINVAL; /* an empty or unknown interface */
    }
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons((uint16_t)port);
    a.len = sizeof *v6;
    *out = a;
    return 0;
}

int weft_addr_ip(weft_addr *out, const char *ip, int port)
{
    if (!out)
        return weft__misuse(-EINVAL, "weft_addr_ip: out is NULL");
    if (port < 0 || port > 65535)
        return weft__misuse(-EINVAL, "weft_addr_ip: port %d outside 0..65535", port);
    return parse_ip(out, ip, port);
}

int weft_addr_unix(weft_addr *out, const char *path)
{
    if (!out || !path)
        return weft__misuse(-EINVAL, "weft_addr_unix: %s is NULL", out ? "path" : "out");
    size_t n = strnlen(path, UNIX_PATH_MAX);
    if (n == UNIX_PATH_MAX)
        return -ENAMETOOLONG; /* no room for the terminator */
    if (n == 0)
        return -EINVAL;
    weft_addr a;
    memset(&a, 0, sizeof a);
    struct sockaddr_un *un = (struct sockaddr_un *)&a.sa;
    un->sun_family = AF_UNIX;
    memcpy(un->sun_path, path, n + 1);
    a.len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    *out = a;
    return 0;
}

int weft_addr_port(const weft_addr *addr)
{
    int err = addr_check(addr, "weft_addr_port");
    if (err)
        return err;
    if (addr_family(addr) == AF_INET)
        return ntohs(((const struct sockaddr_in *)&addr->sa)->sin_port);
    if (addr_family(addr) == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)&addr->sa)->sin6_port);
    return -EINVAL; /* a Unix address has no port */
}

/* ---- text ----------------------------------------------------------------------------- */

int weft_addr_format(const weft_addr *addr, char *buf, size_t size)
{
    int err = addr_check(addr, "weft_addr_format");
    if (err)
        return err;
    if (!buf)
        return weft__misuse(-EINVAL, "weft_addr_format: buf is NULL");
    char text[INET6_ADDRSTRLEN + IF_NAMESIZE + 16 + UNIX_PATH_MAX];
    int n;
    if (addr_family(addr) == AF_INET) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)&addr->sa;
        char ip[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &v4->sin_addr, ip, sizeof ip);
        n = snprintf(text, sizeof text, "%s:%u", ip, (unsigned)ntohs(v4->sin_port));
    } else if (addr_family(addr) == AF_INET6) {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)&addr->sa;
        char ip[INET6_ADDRSTRLEN], zone[IF_NAMESIZE + 12] = "";
        inet_ntop(AF_INET6, &v6->sin6_addr, ip, sizeof ip);
        if (v6->sin6_scope_id) {
            char name[IF_NAMESIZE];
            if (if_indextoname(v6->sin6_scope_id, name))
                snprintf(zone, sizeof zone, "%%%s", name);
            else
                snprintf(zone, sizeof zone, "%%%u", (unsigned)v6->sin6_scope_id);
        }
        n = snprintf(text, sizeof text, "[%s%s]:%u", ip, zone, (unsigned)ntohs(v6->sin6_port));
    } else {
        /* A path; an abstract name (it starts with a NUL) shows as "@name";
         * an unnamed socket (an accepted peer, say) as "unix:". */
        const struct sockaddr_un *un = (const struct sockaddr_un *)&addr->sa;
        size_t len = addr->len - offsetof(struct sockaddr_un, sun_path);
        if (len > 0 && un->sun_path[0] != '\0')
            len = strnlen(un->sun_path, len);
        memcpy(text, "unix:", 5);
        for (size_t i = 0; i < len; i++)
            text[5 + i] = un->sun_path[i] ? un->sun_path[i] : '@';
        n = (int)(5 + len);
        text[n] = '\0';
    }
    if (size == 0)
        return -ENOSPC;
    if ((size_t)n >= size) {
        memcpy(buf, text, size - 1);
        buf[size - 1] = '\0';
        return -ENOSPC;
    }
    memcpy(buf, text, (size_t)n + 1);
    return n;
}

/* ---- resolution ------------------------------------------------------------------------ */

/* A lookup, shared by the caller and a helper thread. The caller frees it
 * when weft_offload returns, unless the call failed with -ETIMEDOUT or
 * -ECANCELED: weft_offload then hands it to lookup_abandon, which frees it
 * on the helper thread (after lookup_run, if that ran). */
struct lookup {
    int family, max;
    int result;          /* addresses in found (>= 1), or a negative code */
    int cap;             /* found's size: at most max, allocated by the helper */
    weft_addr *found;
    size_t size;         /* of this block */
    char host[];
};

static void lookup_free(struct lookup *l)
{
    weft__free(l->found, (size_t)l->cap * sizeof *l->found);
    weft__free(l, l->size);
}

static int gai_code(int rc, int sys_errno)
{
    switch (rc) {
    case EAI_NONAME:
#ifdef EAI_NODATA
    case EAI_NODATA:
#endif
#ifdef EAI_ADDRFAMILY
    case EAI_ADDRFAMILY:
#endif
        return -ENXIO;
    case EAI_AGAIN: return -EAGAIN;
    case EAI_FAIL: return -EIO;
    case EAI_MEMORY: return -ENOMEM;
    case EAI_SYSTEM: return sys_errno > 0 ? -sys_errno : -EIO;
    default: return -EINVAL; /* EAI_FAMILY, EAI_SERVICE, EAI_BADFLAGS, EAI_SOCKTYPE */
    }
}

static bool same_host(const struct sockaddr *a, const weft_addr *b)
{
    if (a->sa_family != addr_family(b))
        return false;
    if (a->sa_family == AF_INET)
        return memcmp(&((const struct sockaddr_in *)a)->sin_addr,
                      &((const struct sockaddr_in *)&b->sa)->sin_addr, sizeof(struct in_addr)) == 0;
    const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a;
    const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)&b->sa;
    return memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0 &&
           x->sin6_scope_id == y->sin6_scope_id;
}

static bool usable(const struct addrinfo *ai)
{
    return (ai->ai_family == AF_INET || ai->ai_family == AF_INET6) && ai->ai_addr &&
           ai->ai_addrlen <= sizeof(struct sockaddr_storage);
}

/* On a helper thread: getaddrinfo, then its distinct addresses (port 0),
 * at most max of them, into a block the helper allocates. */
static void lookup_run(void *arg)
{
    struct lookup *l = arg;
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = l->family;
    hints.ai_socktype = SOCK_STREAM; /* else one answer per socket type */
    int rc = getaddrinfo(l->host, NULL, &hints, &res);
    if (rc != 0) {
        l->result = gai_code(rc, errno);
        return;
    }
    int count = 0;
    for (struct addrinfo *ai = res; ai && count < l->max; ai = ai->ai_next)
        count += usable(ai);
    l->found = count ? weft__alloc((size_t)count * sizeof *l->found) : NULL;
    l->cap = l->found ? count : 0;
    if (!l->found) {
        freeaddrinfo(res);
        l->result = count ? -ENOMEM : -ENXIO;
        return;
    }
    int n = 0;
    for (struct addrinfo *ai = res; ai && n < count; ai = ai->ai_next) {
        bool dup = !usable(ai);
        for (int i = 0; i < n && !dup; i++)
            dup = same_host(ai->ai_addr, &l->found[i]);
        if (dup)
            continue;
        memset(&l->found[n], 0, sizeof l->found[n]);
        memcpy(&l->found[n].sa, ai->ai_addr, ai->ai_addrlen);
        l->found[n].len = (socklen_t)ai->ai_addrlen;
        n++;
    }
    freeaddrinfo(res);
    l->result = n;
}

/* On a helper thread, once the caller has given up. */
static void lookup_abandon(void *arg)
{
    lookup_free(arg);
}

static void set_port(weft_addr *a, int port)
{
    if (addr_family(a) == AF_INET)
        ((struct sockaddr_in *)&a->sa)->sin_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in6 *)&a->sa)->sin6_port = htons((uint16_t)port);
}

int weft_addr_resolve(const char *host, int port, int family, weft_addr *out, int max,
                      int64_t deadline)
{
    if (!host || !out)
        return weft__misuse(-EINVAL, "weft_addr_resolve: %s is NULL", host ? "out" : "host");
    if (max <= 0)
        return weft__misuse(-EINVAL, "weft_addr_resolve: max %d", max);
    if (port < 0 || port > 65535)
        return weft__misuse(-EINVAL, "weft_addr_resolve: port %d outside 0..65535", port);
    if (family != AF_UNSPEC && family != AF_INET && family != AF_INET6)
        return weft__misuse(-EINVAL, "weft_addr_resolve: family %d (AF_UNSPEC, AF_INET, AF_INET6)",
                            family);
    /* A literal needs no name server, nor a runtime. */
    weft_addr lit;
    if (parse_ip(&lit, host, port) == 0) {
        if (family != AF_UNSPEC && addr_family(&lit) != family)
            return -ENXIO;
        *out = lit;
        return 1;
    }
    size_t hlen = strlen(host);
    if (hlen == 0 || hlen > 1024)
        return -ENXIO; /* no name is empty or that long (DNS: 253 bytes) */
    size_t size = offsetof(struct lookup, host) + hlen + 1;
    struct lookup *l = weft__alloc(size);
    if (!l)
        return -ENOMEM;
    l->family = family;
    l->max = max;
    l->result = -EIO;
    l->found = NULL;
    l->cap = 0;
    l->size = size;
    memcpy(l->host, host, hlen + 1);
    int err = weft_offload(lookup_run, l, lookup_abandon, deadline);
    if (err == -ETIMEDOUT || err == -ECANCELED)
        return err; /* l is lookup_abandon's */
    if (err) {
        lookup_free(l);
        return err;
    }
    int n = l->result;
    for (int i = 0; i < n; i++) {
        set_port(&l->found[i], port);
        out[i] = l->found[i];
    }
    lookup_free(l);
    return n;
}
