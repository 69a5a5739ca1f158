/* bank.c: a bank of account actors that moves money without a lock.
 *
 * Each account is a stackless actor that alone holds its balance: every
 * change is a message handled in turn by its handler, so no balance needs a
 * lock and none is ever read half-written. Tellers are processes that issue
 * random transfers at the same time; a transfer of x from account A to
 * account B is two requests, each a weft_call answered with weft_reply:
 *  - WITHDRAW x to A: A takes x off its balance and answers OK, or, if the
 *    balance is below x, changes nothing and answers REFUSED (an account
 *    never goes negative);
 *  - then, only if A said OK, DEPOSIT x to B, which always answers OK.
 * Between the two the money is in the teller's hands: the accounts' sum is
 * short of the total while transfers are under way, and whole again once
 * every teller has finished. At the end app asks every account for its
 * balance and its counters (BALANCE, a weft_call), then closes the accounts
 * (CLOSE) and waits for their DOWN messages (weft_monitor).
 *
 * What is checked (the program exits 0 only if all hold):
 *  - transfers done + refused = transfers issued, by each teller, and the
 *    accounts agree: withdrawals granted = deposits = transfers done,
 *    withdrawals refused = transfers refused;
 *  - the sum of the balances at the end equals the sum at the start;
 *  - each account's balance is its initial balance plus what the tellers
 *    saw flow into it minus what they saw flow out of it;
 *  - no balance was ever negative (each account checks after every change)
 *    and no request was malformed;
 *  - every account ended normally.
 *
 * Usage: example-bank [--accounts M] [--tellers T] [--transfers K per
 * teller] [--workers W]. */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weft.h"
#include "options.h"

/* Requests to an account (weft_call), and its answers. */
enum { TAG_WITHDRAW = 1, TAG_DEPOSIT, TAG_BALANCE, TAG_CLOSE, TAG_OK, TAG_REFUSED };

/* Largest amount of one transfer; initial balances are about twice that,
 * so that some withdrawals are refused. */
enum { MAX_AMOUNT = 60 };

/* An account's state, owned by its actor (freed by on_exit). */
struct account {
    long balance;
    long granted, refused, deposits; /* withdrawals granted and refused, deposits */
    long errors;                     /* malformed requests, failed replies, balance < 0 */
};

/* The answer to BALANCE. */
struct statement {
    long balance;
    long granted, refused, deposits;
    long errors;
};

static void close_account(void *state, intptr_t reason)
{
    (void)reason;
    free(state);
}

/* account: one request at a time, in arrival order. */
static void account(void *state, weft_msg *msg)
{
    struct account *a = state;
    long amount = 0;
    if (msg->tag == TAG_WITHDRAW || msg->tag == TAG_DEPOSIT) {
        if (msg->size == sizeof amount)
            memcpy(&amount, msg->data, sizeof amount);
        if (amount <= 0) { /* malformed: refused, and counted against us */
            a->errors++;
            weft_reply(msg, TAG_REFUSED, NULL, 0);
            return;
        }
    }
    int err;
    switch (msg->tag) {
    case TAG_WITHDRAW:
        if (amount > a->balance) {
            a->refused++;
            err = weft_reply(msg, TAG_REFUSED, NULL, 0);
        } else {
            a->balance -= amount;
            a->granted++;
            err = weft_reply(msg, TAG_OK, NULL, 0);
        }
        break;
    case TAG_DEPOSIT:
        a->balance += amount;
        a->deposits++;
        err = weft_reply(msg, TAG_OK, NULL, 0);
        break;
    case TAG_BALANCE: {
        struct statement s = {a->balance, a->granted, a->refused, a->deposits, a->errors};
        err = weft_reply(msg, TAG_OK, &s, sizeof s);
        break;
    }
    case TAG_CLOSE:
        weft_exit(WEFT_EXIT_NORMAL); /* ends the actor when we return */
        return;
    default:
        err = -EPROTO;
        break;
    }
    if (err || a->balance < 0)
        a->errors++;
}

struct bank {
    long accounts, tellers, transfers; /* M, T, K per teller */
    weft_pid *pid;                     /* [M] the accounts */
    long *initial;                     /* [M] initial balances */
};

/* A teller's work and what it saw. */
struct teller {
    const struct bank *bank;
    uint64_t rng;
    long done, refused;
    long *net; /* [M] money that flowed into (+) and out of (-) each account */
};

/* xorshift64*: the tellers' random source. */
static uint64_t next_random(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1Dull;
}

/* Sends one request to account pid and returns the answer's tag, or a
 * negative weft error. */
static int request(weft_pid pid, int tag, long amount)
{
    weft_msg reply;
    int err = weft_call(pid, tag, &amount, sizeof amount, &reply, WEFT_FOREVER);
    if (err)
        return err;
    int answer = reply.tag;
    weft_msg_free(&reply);
    return answer;
}

/* teller: K transfers between random distinct accounts. Returns 0, or a
 * negative weft error (or -EPROTO for an answer that makes no sense). */
static intptr_t teller(void *arg)
{
    struct teller *t = arg;
    const struct bank *b = t->bank;
    for (long k = 0; k < b->transfers; k++) {
        long from = (long)(next_random(&t->rng) % (uint64_t)b->accounts);
        long to = (long)(next_random(&t->rng) % (uint64_t)(b->accounts - 1));
        if (to >= from)
            to++; /* distinct from `from`, uniform over the others */
        long amount = 1 + (long)(next_random(&t->rng) % MAX_AMOUNT);
        int answer = request(b->pid[from], TAG_WITHDRAW, amount);
        if (answer == TAG_REFUSED) {
            t->refused++;
            continue;
        }
        if (answer != TAG_OK)
            return answer < 0 ? answer : -EPROTO;
        t->net[from] -= amount; /* the money is in our hands now */
        answer = request(b->pid[to], TAG_DEPOSIT, amount);
        if (answer != TAG_OK)
            return answer < 0 ? answer : -EPROTO;
        t->net[to] += amount;
        t->done++;
    }
    return 0;
}

/* Opens the M accounts. */
static int open_accounts(struct bank *b)
{
    for (long i = 0; i < b->accounts; i++) {
        struct account *a = calloc(1, sizeof *a);
        if (!a)
            return -ENOMEM;
        b->initial[i] = MAX_AMOUNT + (i * 7919) % (2 * MAX_AMOUNT);
        a->balance = b->initial[i];
        weft_actor_opts opts;
        weft_actor_opts_init(&opts);
        char name[WEFT_NAME_MAX];
        snprintf(name, sizeof name, "account-%ld", i);
        opts.name = name;
        opts.on_exit = close_account;
        int err = weft_actor_spawn(&b->pid[i], account, a, &opts);
        if (err) {
            free(a);
            return err;
        }
    }
    return 0;
}

/* Asks every account for its statement, then closes them all and waits
 * until each has ended normally. Returns the number of failed checks. */
static int audit_and_close(const struct bank *b, long *net, long done, long refused)
{
    int bad = 0;
    long before = 0, after = 0, granted = 0, refusals = 0, deposits = 0, errors = 0;
    for (long i = 0; i < b->accounts; i++) {
        weft_msg reply;
        int err = weft_call(b->pid[i], TAG_BALANCE, NULL, 0, &reply, WEFT_FOREVER);
        if (err || reply.tag != TAG_OK || reply.size != sizeof(struct statement)) {
            fprintf(stderr, "bank: account %ld: no statement (%s)\n", i, weft_strerror(err));
            if (err == 0)
                weft_msg_free(&reply);
            bad++;
            continue;
        }
        struct statement s;
        memcpy(&s, reply.data, sizeof s);
        weft_msg_free(&reply);
        before += b->initial[i];
        after += s.balance;
        granted += s.granted;
        refusals += s.refused;
        deposits += s.deposits;
        errors += s.errors;
        if (s.balance != b->initial[i] + net[i] || s.balance < 0) {
            fprintf(stderr, "bank: account %ld holds %ld, expected %ld + %ld\n", i, s.balance,
                    b->initial[i], net[i]);
            bad++;
        }
    }
    if (after != before) {
        fprintf(stderr, "bank: the accounts hold %ld, they held %ld\n", after, before);
        bad++;
    }
    if (granted != done || deposits != done || refusals != refused || errors != 0) {
        fprintf(stderr,
                "bank: the accounts saw %ld withdrawals, %ld deposits, %ld refusals and %ld "
                "errors; the tellers %ld transfers done and %ld refused\n",
                granted, deposits, refusals, errors, done, refused);
        bad++;
    }

    /* Close: monitor each account, ask it to end, and wait for its DOWN. */
    long closing = 0;
    for (long i = 0; i < b->accounts; i++) {
        uint64_t ref;
        int err = weft_monitor(b->pid[i], &ref);
        if (err == 0)
            err = weft_send(b->pid[i], TAG_CLOSE, NULL, 0, 0);
        if (err) {
            fprintf(stderr, "bank: closing account %ld: %s\n", i, weft_strerror(err));
            bad++;
        } else {
            closing++;
        }
    }
    for (; closing > 0; closing--) {
        weft_msg down;
        weft_match match = {.tag = WEFT_TAG_DOWN};
        int err = weft_recv(&down, &match, WEFT_FOREVER);
        if (err) {
            fprintf(stderr, "bank: waiting for the accounts to close: %s\n", weft_strerror(err));
            return bad + 1;
        }
        if (down.reason != WEFT_EXIT_NORMAL) {
            fprintf(stderr, "bank: an account ended with reason %" PRIdPTR "\n", down.reason);
            bad++;
        }
        weft_msg_free(&down);
    }
    printf("bank: %ld accounts hold %ld in all, before and after\n", b->accounts, after);
    return bad;
}

/* app: opens the accounts, lets the tellers loose, joins them, audits. */
static intptr_t app(void *arg)
{
    struct bank *b = arg;
    int bad = 0;
    b->pid = calloc((size_t)b->accounts, sizeof *b->pid);
    b->initial = calloc((size_t)b->accounts, sizeof *b->initial);
    struct teller *t = calloc((size_t)b->tellers, sizeof *t);
    weft_pid *tpid = calloc((size_t)b->tellers, sizeof *tpid);
    long *net = calloc((size_t)b->accounts, sizeof *net);
    long started = 0;
    int err = b->pid && b->initial && t && tpid && net ? open_accounts(b) : -ENOMEM;
    for (; err == 0 && started < b->tellers; started++) {
        t[started] = (struct teller){.bank = b};
        t[started].rng = 0x9E3779B97F4A7C15ull * (uint64_t)(started + 1);
        t[started].net = calloc((size_t)b->accounts, sizeof(long));
        if (!t[started].net) {
            err = -ENOMEM;
            break;
        }
        weft_spawn_opts opts;
        weft_spawn_opts_init(&opts);
        char name[WEFT_NAME_MAX];
        snprintf(name, sizeof name, "teller-%ld", started);
        opts.name = name;
        err = weft_spawn(&tpid[started], teller, &t[started], &opts);
        if (err) {
            free(t[started].net);
            break;
        }
    }
    if (err) {
        fprintf(stderr, "bank: opening: %s\n", weft_strerror(err));
        bad++;
    }

    long done = 0, refused = 0;
    for (long i = 0; i < started; i++) {
        intptr_t result = -1;
        int jerr = weft_join(tpid[i], &result, WEFT_FOREVER);
        if (jerr || result != 0) {
            fprintf(stderr, "bank: teller %ld: %s\n", i,
                    weft_strerror(jerr ? jerr : (int)result));
            bad++;
        }
        if (t[i].done + t[i].refused != b->transfers && jerr == 0 && result == 0) {
            fprintf(stderr, "bank: teller %ld: %ld done + %ld refused, %ld issued\n", i,
                    t[i].done, t[i].refused, b->transfers);
            bad++;
        }
        done += t[i].done;
        refused += t[i].refused;
        for (long a = 0; a < b->accounts; a++)
            net[a] += t[i].net[a];
        free(t[i].net);
    }
    long issued = b->tellers * b->transfers;
    if (err == 0) {
        if (done + refused != issued) {
            fprintf(stderr, "bank: %ld done + %ld refused, %ld issued\n", done, refused, issued);
            bad++;
        }
        bad += audit_and_close(b, net, done, refused);
    }
    printf("bank: %ld tellers issued %ld transfers: %ld done, %ld refused, on %d workers: %s\n",
           b->tellers, issued, done, refused, weft_workers(), bad ? "WRONG" : "ok");
    free(net);
    free(tpid);
    free(t);
    free(b->initial);
    free(b->pid);
    return bad != 0;
}

int main(int argc, char **argv)
{
    weft_config cfg;
    weft_config_init(&cfg);
    struct bank b = {.accounts = 100, .tellers = 8, .transfers = 10000};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--accounts") == 0)
            b.accounts = option_value(argc, argv, &i, 2, 1000000);
        else if (strcmp(argv[i], "--tellers") == 0)
            b.tellers = option_value(argc, argv, &i, 1, 100000);
        else if (strcmp(argv[i], "--transfers") == 0)
            b.transfers = option_value(argc, argv, &i, 0, 100000000);
        else if (strcmp(argv[i], "--workers") == 0)
            cfg.workers = (unsigned)option_value(argc, argv, &i, 0, WEFT_WORKERS_MAX);
        else {
            fprintf(stderr,
                    "usage: %s [--accounts M] [--tellers T] [--transfers K per teller] "
                    "[--workers W]\n",
                    argv[0]);
            return 2;
        }
    }
    intptr_t status = 1;
    int err = weft_run(app, &b, &cfg, &status);
    if (err)
        fprintf(stderr, "bank: weft_run: %s\n", weft_strerror(err));
    return err ? 1 : (int)status;
}
