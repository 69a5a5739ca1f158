/* registry.c: names for pids, dropped when their owner ends.
 *
 * One hash table under one lock: registering and looking up are rare next
 * to sending. The owner's ext records its name (registered, under the
 * registry's lock), so that its end removes it; a name is taken by one pid
 * and a pid has at most one name, as in Erlang. Lock order: the registry,
 * then a mailbox.
 */
#include <stdio.h>
#include <string.h>

#include "actor.h"

enum { BUCKETS = 256 };

struct entry {
    struct entry *next;
    weft_pid pid;
    char name[WEFT_NAME_MAX];
};

static struct {
    pthread_mutex_t lock;
    struct entry *buckets[BUCKETS];
} reg = {.lock = PTHREAD_MUTEX_INITIALIZER};

static struct entry **bucket(const char *name)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 16777619u;
    return &reg.buckets[h % BUCKETS];
}

static struct entry **find(const char *name)
{
    struct entry **e = bucket(name);
    while (*e && strcmp((*e)->name, name) != 0)
        e = &(*e)->next;
    return e;
}

static int check_name(const char *name, const char *fn)
{
    if (!name || !name[0] || strnlen(name, WEFT_NAME_MAX) >= WEFT_NAME_MAX)
        return weft__misuse(-EINVAL, "%s: the name must be 1..%d bytes", fn, WEFT_NAME_MAX - 1);
    return 0;
}

static int do_register(const char *name, weft_pid pid)
{
    struct weft__target t;
    int found = weft__target_acquire(pid, &t);
    if (found)
        return found < 0 ? weft__misuse(-ESRCH, "weft_register: %#llx was never a pid",
                                        (unsigned long long)pid)
                         : -ESRCH;
    struct weft__mbox_ext *ext = weft__mbox_ext(t.mb);
    struct entry *e = weft__alloc(sizeof *e);
    int err = 0;
    if (!e) {
        err = -ENOMEM;
        goto out;
    }
    pthread_mutex_lock(&reg.lock);
    struct entry **slot = find(name);
    weft__spin_lock(&t.mb->lock);
    if (*slot)
        err = -EEXIST;
    else if (!ext || (t.mb->flags & WEFT__MBOX_DEAD))
        err = ext || (t.mb->flags & WEFT__MBOX_DEAD) ? -ESRCH : -ENOMEM;
    else if (ext->registered)
        err = -EBUSY;
    if (!err) {
        ext->registered = true;
        snprintf(ext->name, sizeof ext->name, "%s", name);
        e->pid = pid;
        snprintf(e->name, sizeof e->name, "%s", name);
        e->next = NULL;
        *slot = e;
        e = NULL;
    }
    weft__spin_unlock(&t.mb->lock);
    pthread_mutex_unlock(&reg.lock);
    if (e)
        weft__free(e, sizeof *e);
out:
    weft__target_release(&t);
    return err;
}

int weft_register(const char *name, weft_pid pid)
{
    int err = check_name(name, "weft_register");
    if (err)
        return err;
    WEFT__FROM_ANYWHERE(do_register(name, pid));
}

static int do_unregister(const char *name)
{
    pthread_mutex_lock(&reg.lock);
    struct entry **slot = find(name);
    struct entry *e = *slot;
    if (!e) {
        pthread_mutex_unlock(&reg.lock);
        return -ENOENT;
    }
    *slot = e->next;
    struct weft__target t;
    if (weft__target_acquire(e->pid, &t) == 0) {
        weft__spin_lock(&t.mb->lock);
        if (t.mb->ext && !(t.mb->flags & WEFT__MBOX_DEAD))
            t.mb->ext->registered = false;
        weft__spin_unlock(&t.mb->lock);
        weft__target_release(&t);
    }
    pthread_mutex_unlock(&reg.lock);
    weft__free(e, sizeof *e);
    return 0;
}

int weft_unregister(const char *name)
{
    int err = check_name(name, "weft_unregister");
    if (err)
        return err;
    WEFT__FROM_ANYWHERE(do_unregister(name));
}

static int do_whereis(const char *name, weft_pid *pid)
{
    pthread_mutex_lock(&reg.lock);
    struct entry *e = *find(name);
    if (e)
        *pid = e->pid;
    pthread_mutex_unlock(&reg.lock);
    return e ? 0 : -ENOENT;
}

int weft_whereis(const char *name, weft_pid *pid)
{
    int err = check_name(name, "weft_whereis");
    if (err)
        return err;
    if (!pid)
        return weft__misuse(-EINVAL, "weft_whereis: pid is NULL");
    WEFT__FROM_ANYWHERE(do_whereis(name, pid));
}

void weft__registry_drop(const char *name, weft_pid pid)
{
    pthread_mutex_lock(&reg.lock);
    struct entry **slot = find(name);
    struct entry *e = *slot;
    if (e && e->pid == pid)
        *slot = e->next;
    else
        e = NULL;
    pthread_mutex_unlock(&reg.lock);
    if (e)
        weft__free(e, sizeof *e);
}

void weft__registry_term(void)
{
    pthread_mutex_lock(&reg.lock);
    for (int i = 0; i < BUCKETS; i++)
        while (reg.buckets[i]) {
            struct entry *e = reg.buckets[i];
            reg.buckets[i] = e->next;
            weft__free(e, sizeof *e);
        }
    pthread_mutex_unlock(&reg.lock);
}
