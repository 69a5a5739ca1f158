/* chameneos.c: chameneos-redux of the Computer Language Benchmarks Game,
 * written with stackless actors.
 *
 * The game: creatures of three colours (blue, red, yellow) go to a meeting
 * place, the mall, over and over. Two creatures in the mall meet: each
 * learns the other's colour and takes the complement of the two (the same
 * colour if both are alike, else the third one), then goes back to the
 * mall. After N meetings the mall closes. The program prints the table of
 * complements, then plays two games, one of 3 creatures (blue red yellow)
 * and one of 10 (blue red yellow red yellow blue red yellow red blue): for
 * each, the starting colours, then per creature the number of creatures it
 * met and, spelled out digit by digit, the number of times it met itself
 * (zero), then the spelled-out total of meetings counted by the creatures,
 * which is 2*N since every meeting has two sides.
 *
 * Actors and the protocol between them (every creature and every mall is a
 * stackless actor; app, the main process, only starts the games and reads
 * the results):
 *  - app -> creature GO {ticket}: enter the mall for the first time.
 *  - creature -> mall ARRIVE {ticket, id, colour}: here I am.
 *  - mall -> creature MEET {ticket, partner id, partner colour}: you met
 *    this partner; come back with this ticket.
 *  - mall -> creature STOP: the mall has closed (N meetings are done).
 *  - creature -> app RESULT {meetings, self-meetings}, then it ends.
 *  - mall -> app CLOSED {meetings held, protocol errors}, once every
 *    creature has been sent home; then it ends.
 *
 * The mall's queue. The Benchmarks Game's programs let the creatures race
 * for the mall, so who meets whom, and the per-creature counts, change from
 * run to run (its output check compares only some fields). Here the output
 * must equal the reference output byte for byte, so the mall serves its
 * door by tickets, like a bakery: a creature's ticket is given when it
 * leaves a meeting (the two partners get the next two numbers, the longer
 * waiter first), and the mall pairs tickets strictly in order, waiting for
 * the holder of the next ticket if it is not back yet. Who meets whom is
 * then fixed by the rule alone, whatever the scheduler does, while the
 * meetings themselves (the creatures' handlers) still run in parallel on
 * every worker. Tickets go round a ring of n slots: n tickets are always
 * out, one per creature.
 *
 * What is checked (the program exits 0 only if all hold): each creature's
 * spelled-out self-meeting count is zero, the creatures' meetings add up to
 * 2*N, the mall held exactly N meetings, and the protocol never went wrong
 * (no ticket arrived twice, no malformed message). The CTest test also
 * compares the output for N=600 with chameneos.expected, the reference
 * output.
 *
 * Usage: example-chameneos [--n N] [--workers W]. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weft.h"
#include "options.h"

enum { BLUE, RED, YELLOW, COLOURS };

static const char *const colour_name[COLOURS] = {"blue", "red", "yellow"};

/* The colour a creature of colour a takes after meeting one of colour b. */
static int complement(int a, int b)
{
    return a == b ? a : COLOURS - a - b; /* 0+1+2 = 3: the third colour */
}

/* Message tags. */
enum { TAG_GO = 1, TAG_ARRIVE, TAG_MEET, TAG_STOP, TAG_RESULT, TAG_CLOSED };

struct go_msg {
    long ticket;
};

struct arrive_msg {
    long ticket;
    int id;
    int colour;
};

struct meet_msg {
    long ticket; /* the creature's next ticket */
    int partner_id;
    int partner_colour;
};

struct result_msg {
    int game;
    int id;
    long met;      /* creatures met */
    long self_met; /* times it met itself */
    long errors;   /* malformed messages, failed sends */
};

struct closed_msg {
    int game;
    long meetings; /* meetings held */
    long errors;   /* protocol errors seen by the mall, failed sends */
};

/* A creature's state, owned by its actor (freed by on_exit). */
struct creature {
    int game, id, colour;
    long met, self_met;
    long errors; /* malformed messages, failed sends */
    weft_pid mall, app;
};

/* One slot of the mall's ring of tickets. */
struct slot {
    int present; /* the ticket's holder is in the mall */
    int id, colour;
    weft_pid pid;
};

/* The mall's state, owned by its actor. Invariant: next - serve == n, the
 * tickets serve..next-1 are out, and ticket t lives in slot t % n. */
struct mall {
    int game, n;
    long meetings, held; /* meetings to hold (N), meetings held so far */
    long serve, next;    /* the next ticket to serve, the next one to give */
    int sent_home;       /* creatures sent STOP */
    long errors;
    weft_pid app;
    struct slot *ring;   /* [n] */
};

static void free_state(void *state, intptr_t reason)
{
    (void)reason;
    free(state);
}

static void free_mall(void *state, intptr_t reason)
{
    (void)reason;
    struct mall *m = state;
    free(m->ring);
    free(m);
}

/* creature: on GO or MEET goes (back) to the mall; on STOP reports and ends. */
static void creature(void *state, weft_msg *msg)
{
    struct creature *c = state;
    long ticket;
    if (msg->tag == TAG_GO && msg->size == sizeof(struct go_msg)) {
        ticket = ((const struct go_msg *)msg->data)->ticket;
    } else if (msg->tag == TAG_MEET && msg->size == sizeof(struct meet_msg)) {
        const struct meet_msg *m = msg->data;
        c->met++;
        if (m->partner_id == c->id)
            c->self_met++;
        c->colour = complement(c->colour, m->partner_colour);
        ticket = m->ticket;
    } else if (msg->tag == TAG_STOP) {
        struct result_msg r = {c->game, c->id, c->met, c->self_met, c->errors};
        weft_send(c->app, TAG_RESULT, &r, sizeof r, 0);
        weft_exit(WEFT_EXIT_NORMAL); /* ends the actor when we return */
        return;
    } else {
        c->errors++; /* malformed */
        return;
    }
    struct arrive_msg a = {ticket, c->id, c->colour};
    if (weft_send(c->mall, TAG_ARRIVE, &a, sizeof a, 0) != 0)
        c->errors++;
}

/* Sends creature s home (the mall has closed). */
static void send_home(struct mall *m, struct slot *s)
{
    if (weft_send(s->pid, TAG_STOP, NULL, 0, 0) != 0)
        m->errors++;
    s->present = 0;
    m->sent_home++;
}

/* Holds meetings while the holders of the next two tickets are both here. */
static void hold_meetings(struct mall *m)
{
    while (m->held < m->meetings) {
        struct slot *a = &m->ring[m->serve % m->n];
        struct slot *b = &m->ring[(m->serve + 1) % m->n];
        if (!a->present || !b->present)
            return;
        struct meet_msg to_a = {m->next, b->id, b->colour};
        struct meet_msg to_b = {m->next + 1, a->id, a->colour};
        if (weft_send(a->pid, TAG_MEET, &to_a, sizeof to_a, 0) != 0 ||
            weft_send(b->pid, TAG_MEET, &to_b, sizeof to_b, 0) != 0)
            m->errors++;
        a->present = b->present = 0;
        m->serve += 2;
        m->next += 2;
        m->held++;
    }
}

/* mall: takes arrivals into the ring, holds meetings in ticket order, and
 * once N are held sends every creature home, then reports and ends. */
static void mall(void *state, weft_msg *msg)
{
    struct mall *m = state;
    const struct arrive_msg *a = msg->data;
    if (msg->tag != TAG_ARRIVE || msg->size != sizeof *a || a->ticket < m->serve ||
        a->ticket >= m->next || m->ring[a->ticket % m->n].present) {
        m->errors++; /* a malformed message, or a ticket that is not out */
        return;
    }
    struct slot *s = &m->ring[a->ticket % m->n];
    *s = (struct slot){1, a->id, a->colour, msg->from};
    hold_meetings(m);
    if (m->held < m->meetings)
        return;
    for (int i = 0; i < m->n; i++) /* closed: whoever is here goes home */
        if (m->ring[i].present)
            send_home(m, &m->ring[i]);
    if (m->sent_home == m->n) {
        struct closed_msg c = {m->game, m->held, m->errors};
        weft_send(m->app, TAG_CLOSED, &c, sizeof c, 0);
        weft_exit(WEFT_EXIT_NORMAL);
    }
}

enum { GAMES = 2, MOST = 10 };

/* A game's setup and what its actors reported. */
struct game {
    int n;
    int colour[MOST];        /* starting colours */
    weft_pid pid[MOST];
    long met[MOST], self_met[MOST];
    long errors;             /* the creatures' protocol errors */
    int reported;            /* creatures that reported */
    int closed;              /* the mall reported */
    long held, mall_errors;  /* the mall's report */
};

/* Spawns an actor with state; frees the state if the spawn fails. */
static int spawn_actor(weft_pid *pid, weft_actor_fn fn, void *state, const char *name,
                       void (*on_exit)(void *, intptr_t))
{
    weft_actor_opts opts;
    weft_actor_opts_init(&opts);
    opts.name = name;
    opts.on_exit = on_exit;
    int err = weft_actor_spawn(pid, fn, state, &opts);
    if (err)
        on_exit(state, 0);
    return err;
}

/* Starts game g: its mall, its creatures, and sends every creature in. */
static int start_game(struct game *g, int index, long meetings)
{
    struct mall *m = calloc(1, sizeof *m);
    struct slot *ring = calloc((size_t)g->n, sizeof *ring);
    if (!m || !ring) {
        free(m);
        free(ring);
        return -ENOMEM;
    }
    *m = (struct mall){.game = index, .n = g->n, .meetings = meetings, .next = g->n,
                       .app = weft_self(), .ring = ring};
    weft_pid mall_pid;
    int err = spawn_actor(&mall_pid, mall, m, "mall", free_mall);
    for (int i = 0; i < g->n && err == 0; i++) {
        struct creature *c = malloc(sizeof *c);
        if (!c)
            return -ENOMEM;
        *c = (struct creature){index, i, g->colour[i], 0, 0, 0, mall_pid, weft_self()};
        char name[WEFT_NAME_MAX];
        snprintf(name, sizeof name, "creature-%d.%d", index, i);
        err = spawn_actor(&g->pid[i], creature, c, name, free_state);
    }
    for (int i = 0; i < g->n && err == 0; i++) {
        struct go_msg go = {i}; /* the first tickets, in creature order */
        err = weft_send(g->pid[i], TAG_GO, &go, sizeof go, 0);
    }
    return err;
}

/* Takes one report (a creature's or a mall's) into its game. */
static int take_report(struct game games[], const weft_msg *msg)
{
    if (msg->tag == TAG_RESULT && msg->size == sizeof(struct result_msg)) {
        const struct result_msg *r = msg->data;
        if (r->game < 0 || r->game >= GAMES || r->id < 0 || r->id >= games[r->game].n)
            return -EPROTO;
        struct game *g = &games[r->game];
        g->met[r->id] = r->met;
        g->self_met[r->id] = r->self_met;
        g->errors += r->errors;
        g->reported++;
        return 0;
    }
    if (msg->tag == TAG_CLOSED && msg->size == sizeof(struct closed_msg)) {
        const struct closed_msg *c = msg->data;
        if (c->game < 0 || c->game >= GAMES)
            return -EPROTO;
        games[c->game].held = c->meetings;
        games[c->game].mall_errors = c->errors;
        games[c->game].closed = 1;
        return 0;
    }
    return -EPROTO;
}

/* Writes n's decimal digits as words, each after a space: " one two". */
static void spell(long n, FILE *out)
{
    static const char *const digit[] = {"zero", "one", "two",   "three", "four",
                                        "five", "six", "seven", "eight", "nine"};
    char buf[32];
    snprintf(buf, sizeof buf, "%ld", n);
    for (const char *p = buf; *p; p++)
        if (*p >= '0' && *p <= '9')
            fprintf(out, " %s", digit[*p - '0']);
        else
            fprintf(out, " %c", *p); /* a minus sign: never for a good run */
    fputc('\n', out);
}

/* Prints game g as the Benchmarks Game does; returns the number of broken
 * invariants. */
static int report_game(const struct game *g, long meetings)
{
    int bad = 0;
    for (int i = 0; i < g->n; i++)
        printf(" %s", colour_name[g->colour[i]]);
    printf("\n");
    long total = 0;
    for (int i = 0; i < g->n; i++) {
        printf("%ld", g->met[i]);
        spell(g->self_met[i], stdout);
        total += g->met[i];
        if (g->self_met[i] != 0) {
            fprintf(stderr, "chameneos: creature %d met itself %ld times\n", i, g->self_met[i]);
            bad++;
        }
    }
    spell(total, stdout);
    printf("\n");
    if (total != 2 * meetings) {
        fprintf(stderr, "chameneos: %ld meetings counted by %d creatures, expected %ld\n", total,
                g->n, 2 * meetings);
        bad++;
    }
    if (g->reported != g->n || !g->closed || g->held != meetings || g->mall_errors != 0 ||
        g->errors != 0) {
        fprintf(stderr,
                "chameneos: %d of %d creatures reported, the mall held %ld meetings (expected "
                "%ld); protocol errors: %ld in the mall, %ld in the creatures\n",
                g->reported, g->n, g->held, meetings, g->mall_errors, g->errors);
        bad++;
    }
    return bad;
}

struct options {
    long meetings; /* N */
};

/* app: prints the complements, plays both games at once, prints them. */
static intptr_t app(void *arg)
{
    const struct options *o = arg;
    static struct game games[GAMES] = {
        {.n = 3, .colour = {BLUE, RED, YELLOW}},
        {.n = 10, .colour = {BLUE, RED, YELLOW, RED, YELLOW, BLUE, RED, YELLOW, RED, BLUE}},
    };
    for (int a = 0; a < COLOURS; a++)
        for (int b = 0; b < COLOURS; b++)
            printf("%s + %s -> %s\n", colour_name[a], colour_name[b],
                   colour_name[complement(a, b)]);
    printf("\n");

    int err = 0;
    for (int i = 0; i < GAMES && err == 0; i++)
        err = start_game(&games[i], i, o->meetings);
    /* Every creature reports once and every mall once. */
    int reports = 0, expected = 0;
    for (int i = 0; i < GAMES; i++)
        expected += games[i].n + 1;
    while (err == 0 && reports < expected) {
        weft_msg msg;
        err = weft_recv(&msg, NULL, WEFT_FOREVER);
        if (err == 0) {
            err = take_report(games, &msg);
            weft_msg_free(&msg);
            reports++;
        }
    }
    if (err) {
        fprintf(stderr, "chameneos: %s\n", weft_strerror(err));
        return 1;
    }
    int bad = 0;
    for (int i = 0; i < GAMES; i++)
        bad += report_game(&games[i], o->meetings);
    fflush(stdout);
    return bad != 0;
}

int main(int argc, char **argv)
{
    weft_config cfg;
    weft_config_init(&cfg);
    struct options o = {.meetings = 600};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--n") == 0)
            o.meetings = option_value(argc, argv, &i, 0, 1000000000);
        else if (strcmp(argv[i], "--workers") == 0)
            cfg.workers = (unsigned)option_value(argc, argv, &i, 0, WEFT_WORKERS_MAX);
        else {
            fprintf(stderr, "usage: %s [--n N] [--workers W]\n", argv[0]);
            return 2;
        }
    }
    intptr_t status = 1;
    int err = weft_run(app, &o, &cfg, &status);
    if (err)
        fprintf(stderr, "chameneos: weft_run: %s\n", weft_strerror(err));
    return err ? 1 : (int)status;
}
