/* wordfreq.c: word frequencies of a generated text, counted by a dataflow
 * graph and checked against a sequential count.
 *
 * The graph (weft_graph_*):
 *
 *   read --chunk--> count (parallel W, unordered) --table *--> merge
 *   SOURCE          MAP                                        SINK
 *
 *  - read cuts the corpus into chunks of about CHUNK_BYTES, each ending at
 *    a word boundary, and emits each as a struct chunk (pointer, length).
 *  - count tokenizes its chunk and counts the words into an empty table of
 *    its own, then emits the table's pointer: the table belongs from then on
 *    to whoever receives it. Up to W firings run at once; their tables come
 *    out in whatever order they finish (the merge does not care).
 *  - merge folds each table into the total, which empties the table, and
 *    gives it back to count through a pool: a buffered weft channel of table
 *    pointers. count takes its tables from the pool and makes a new one only
 *    when the pool is empty, so a run allocates a handful of tables rather
 *    than one per chunk (and the allocator's page faults and trims stay out
 *    of the parallel part). merge fires one at a time, so the total needs no
 *    lock.
 * When the run has ended, the ten most frequent words are printed and the
 * total is compared with a sequential count of the same corpus made by the
 * same counting code (count_words), without a graph.
 *
 * The corpus is made up front, in memory: words of a made-up vocabulary of
 * VOCAB words drawn from a seeded generator with Zipf's law (the word of
 * rank r comes up about 1/r as often as the most frequent one), separated
 * by spaces, commas and full stops.
 *
 * Usage: example-wordfreq [--workers W] [--mb M] [--sequential]
 *   --workers W   runtime workers, and firings of count at once (0: one per CPU)
 *   --mb M        corpus size in MiB (default 64)
 *   --sequential  time the sequential count alone
 * The last line is `wordfreq <weft|sequential> <W> <words> <seconds>
 * <ns_per_word>`, where seconds is the time of the count alone. Exits 0 only
 * when the graph's counts equal the sequential ones. */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weft.h"
#include "options.h"

enum {
    VOCAB = 4000,               /* distinct words the corpus is drawn from */
    CHUNK_BYTES = 256 * 1024,   /* read's chunk size, before the cut at a word's end */
    PART_SLOTS = 8192,          /* first capacity of count's tables: VOCAB fits at half load */
    TOTAL_SLOTS = 8192,         /* first capacity of the total */
    TOP = 10                    /* words printed */
};

static const uint64_t SEED = 0x5eed0f3e7cull;

/* ---- Counting: an open-addressing hash table of words ----------------------- */

/* One word and its count. The word points into the corpus, which outlives
 * every table; word == NULL marks a free slot. */
struct entry {
    const char *word;
    uint32_t len;
    uint32_t hash;  /* of the word's bytes, kept so that folding never rehashes */
    uint64_t count;
};

/* A table of slot[cap] entries, cap a power of two, at most 3/4 full. */
struct table {
    struct entry *slot;
    size_t cap;
    unsigned bits;  /* log2(cap) */
    size_t used;    /* distinct words */
    uint64_t words; /* sum of the counts */
    long chunk;     /* count's tables: the chunk counted (see struct wordfreq) */
};

/* FNV-1a over a word's bytes. */
static uint32_t hash_step(uint32_t h, unsigned char c)
{
    return (h ^ c) * 16777619u;
}
#define HASH_START 2166136261u

/* The first slot to probe for hash: Fibonacci hashing takes the top bits of
 * a multiplication, which mixes every bit of the hash into the index. */
static size_t home_slot(const struct table *t, uint32_t hash)
{
    return (uint32_t)(hash * 2654435769u) >> (32 - t->bits);
}

/* Allocates an empty table of cap slots (a power of two). NULL: no memory. */
static struct table *table_create(size_t cap)
{
    struct table *t = malloc(sizeof *t);
    if (!t)
        return NULL;
    t->slot = calloc(cap, sizeof *t->slot);
    if (!t->slot) {
        free(t);
        return NULL;
    }
    t->cap = cap;
    t->bits = 0;
    while (((size_t)1 << t->bits) < cap)
        t->bits++;
    t->used = 0;
    t->words = 0;
    t->chunk = -1;
    return t;
}

static void table_destroy(struct table *t)
{
    if (!t)
        return;
    free(t->slot);
    free(t);
}

/* The slot holding the word, or the free slot where it would go. */
static struct entry *table_slot(const struct table *t, const char *word, uint32_t len,
                                uint32_t hash)
{
    size_t mask = t->cap - 1;
    for (size_t i = home_slot(t, hash);; i = (i + 1) & mask) {
        struct entry *e = &t->slot[i];
        if (!e->word ||
            (e->hash == hash && e->len == len && memcmp(e->word, word, len) == 0))
            return e;
    }
}

/* Doubles t's capacity. Returns 0 or -ENOMEM (t is then unchanged). */
static int table_grow(struct table *t)
{
    struct table bigger = *t;
    bigger.cap = t->cap * 2;
    bigger.bits = t->bits + 1;
    bigger.slot = calloc(bigger.cap, sizeof *bigger.slot);
    if (!bigger.slot)
        return -ENOMEM;
    for (size_t i = 0; i < t->cap; i++)
        if (t->slot[i].word)
            *table_slot(&bigger, t->slot[i].word, t->slot[i].len, t->slot[i].hash) = t->slot[i];
    free(t->slot);
    *t = bigger;
    return 0;
}

/* Adds count to the word's entry, making it if needed. Returns 0 or -ENOMEM. */
static int table_add(struct table *t, const char *word, uint32_t len, uint32_t hash,
                     uint64_t count)
{
    struct entry *e = table_slot(t, word, len, hash);
    if (!e->word) {
        if ((t->used + 1) * 4 > t->cap * 3) { /* keep the probes short */
            int err = table_grow(t);
            if (err)
                return err;
            e = table_slot(t, word, len, hash);
        }
        *e = (struct entry){.word = word, .len = len, .hash = hash, .count = 0};
        t->used++;
    }
    e->count += count;
    t->words += count;
    return 0;
}

/* Moves every count of part into total, leaving part empty: the same pass
 * reads and clears each slot, so emptying costs nothing more. Returns 0 or
 * -ENOMEM (total then holds only some of part's counts). */
static int table_fold(struct table *total, struct table *part)
{
    for (size_t i = 0; i < part->cap; i++) {
        struct entry *e = &part->slot[i];
        if (e->word) {
            int err = table_add(total, e->word, e->len, e->hash, e->count);
            if (err)
                return err;
            e->word = NULL;
        }
    }
    part->used = 0;
    part->words = 0;
    return 0;
}

static int is_letter(char c)
{
    return (unsigned char)(c - 'a') < 26;
}

/* The one counting routine, shared by the graph and the sequential count:
 * counts the words (runs of a..z) of text[0..len) into t. The text must
 * outlive t, whose entries point into it. Returns 0 or -ENOMEM. */
static int count_words(struct table *t, const char *text, size_t len)
{
    size_t i = 0;
    while (i < len) {
        while (i < len && !is_letter(text[i]))
            i++;
        size_t start = i;
        uint32_t hash = HASH_START;
        while (i < len && is_letter(text[i]))
            hash = hash_step(hash, (unsigned char)text[i++]);
        if (i > start) {
            int err = table_add(t, text + start, (uint32_t)(i - start), hash, 1);
            if (err)
                return err;
        }
    }
    return 0;
}

/* ---- The corpus ---------------------------------------------------------------- */

/* xorshift64*, seeded through splitmix64 so that any seed works. */
static uint64_t next_random(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1Dull;
}

static uint64_t seed_random(uint64_t seed)
{
    uint64_t z = seed + 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return z ? z : 1;
}

/* The word of rank r: r's digits in base 20, each spelt as a two-letter
 * syllable (5 consonants times 4 vowels). Distinct ranks give distinct
 * words, and the frequent words (small ranks) are the short ones, as in
 * natural languages. Returns the length written into buf: 2 bytes per
 * digit, so at most 6 for r below 8000. */
static size_t make_word(unsigned r, char *buf)
{
    static const char consonant[] = "klmnr";
    static const char vowel[] = "aeio";
    size_t n = 0;
    do {
        buf[n++] = consonant[r % 20 % 5];
        buf[n++] = vowel[r % 20 / 5];
        r /= 20;
    } while (r > 0);
    return n;
}

struct corpus {
    char *text;
    size_t len;
    uint64_t words; /* words written: every count must add up to this */
};

/* Zipf's law over the VOCAB ranks: rank r weighs 1/(r+1), and cdf[r] is
 * the share of ranks 0..r in the total weight. guide[i] is the first rank
 * whose cdf is above i/GUIDE: a draw u in [i/GUIDE, (i+1)/GUIDE) starts its
 * search there (the guide-table method), so it takes a step or two rather
 * than a binary search over every rank. */
enum { GUIDE = 4096 };
struct zipf {
    double cdf[VOCAB];
    unsigned guide[GUIDE];
};

static void zipf_init(struct zipf *z)
{
    double sum = 0;
    for (unsigned r = 0; r < VOCAB; r++) {
        sum += 1.0 / (r + 1);
        z->cdf[r] = sum;
    }
    for (unsigned r = 0; r < VOCAB; r++)
        z->cdf[r] /= sum;
    z->cdf[VOCAB - 1] = 1.0; /* above every draw, whatever the rounding: searches stop */
    unsigned r = 0;
    for (unsigned i = 0; i < GUIDE; i++) {
        while (z->cdf[r] <= (double)i / GUIDE)
            r++;
        z->guide[i] = r;
    }
}

/* A rank drawn by Zipf's law: the first r whose cdf is above a uniform u. */
static unsigned zipf_draw(const struct zipf *z, uint64_t *rng)
{
    double u = (double)(next_random(rng) >> 11) * 0x1.0p-53; /* [0, 1) */
    unsigned r = z->guide[(unsigned)(u * GUIDE)];
    while (z->cdf[r] <= u)
        r++;
    return r;
}

/* Fills c with about bytes of text: words drawn by Zipf's law, each
 * followed by a space, or (one time in 16 each) a comma and a space or a
 * full stop and a newline. Returns 0 or -ENOMEM. */
static int corpus_make(struct corpus *c, size_t bytes)
{
    enum { WORD_MAX = 8 };
    char vocab[VOCAB][WORD_MAX];
    size_t vocab_len[VOCAB];
    struct zipf *z = malloc(sizeof *z);
    c->text = malloc(bytes);
    if (!z || !c->text) {
        free(z);
        free(c->text);
        return -ENOMEM;
    }
    zipf_init(z);
    for (unsigned r = 0; r < VOCAB; r++)
        vocab_len[r] = make_word(r, vocab[r]);
    uint64_t rng = seed_random(SEED);
    size_t pos = 0;
    c->words = 0;
    while (pos + WORD_MAX + 2 <= bytes) {
        unsigned r = zipf_draw(z, &rng);
        memcpy(c->text + pos, vocab[r], vocab_len[r]);
        pos += vocab_len[r];
        c->words++;
        unsigned sep = (unsigned)(next_random(&rng) >> 60); /* 0..15 */
        if (sep == 0)
            c->text[pos++] = ',';
        else if (sep == 1)
            c->text[pos++] = '.';
        c->text[pos++] = sep == 1 ? '\n' : ' ';
    }
    c->len = pos;
    free(z);
    return 0;
}

/* ---- The graph's nodes ------------------------------------------------------- */

/* A piece of the corpus, ending at a word boundary: read's output. */
struct chunk {
    const char *text;
    size_t len;
    long index; /* 0, 1, 2, ... in corpus order */
};

/* Everything the nodes share. partial[i] is the table counted from chunk i
 * while it is in flight: count sets it, merge clears it as it takes the
 * table's counts. A cancelled run may drop tables in the graph's edges;
 * the slots that are still set afterwards are exactly those, and the app
 * frees them. (The graph moves the pointers and knows nothing of what they
 * own.) The pool holds the empty tables, owned by the pool until taken. */
struct wordfreq {
    const struct corpus *corpus;
    size_t pos;              /* read: where the next chunk starts */
    long chunks;             /* read: chunks emitted so far */
    struct table **partial;  /* max_chunks slots */
    long max_chunks;
    weft_chan pool;          /* empty tables (struct table *) */
    struct table *total;     /* merge's */
};

/* Chunks that read can cut from len bytes: each but the last has at least
 * CHUNK_BYTES. */
static long max_chunks(size_t len)
{
    return (long)(len / CHUNK_BYTES) + 1;
}

/* read (SOURCE): emits the next chunk, cut at the first non-letter at or
 * after CHUNK_BYTES, or ends when the corpus is used up. */
static int read_fn(void *state, const void *const *in, void *const *out)
{
    (void)in;
    struct wordfreq *wf = state;
    const struct corpus *c = wf->corpus;
    if (wf->pos >= c->len)
        return WEFT_NODE_END;
    size_t end = wf->pos + CHUNK_BYTES < c->len ? wf->pos + CHUNK_BYTES : c->len;
    while (end < c->len && is_letter(c->text[end]))
        end++;
    struct chunk chunk = {c->text + wf->pos, end - wf->pos, wf->chunks++};
    memcpy(out[0], &chunk, sizeof chunk);
    wf->pos = end;
    return 0;
}

/* count (MAP, several firings at once): counts a chunk into an empty table
 * (from the pool, or a new one) and emits its pointer, handing the table to
 * the receiver. Only partial[i] of the shared state is written, for this
 * firing's own chunk i; the pool is a channel, safe for every firing. */
static int count_fn(void *state, const void *const *in, void *const *out)
{
    struct wordfreq *wf = state;
    struct chunk chunk;
    memcpy(&chunk, in[0], sizeof chunk);
    struct table *t;
    int err = weft_chan_recv(wf->pool, &t, sizeof t, 0); /* deadline 0: never waits */
    if (err == -ETIMEDOUT) {                              /* the pool is empty */
        t = table_create(PART_SLOTS);
        if (!t)
            return -ENOMEM;
    } else if (err) {
        return err;
    }
    err = count_words(t, chunk.text, chunk.len);
    if (err) {
        table_destroy(t);
        return err; /* cancels the graph; weft_graph_wait reports it */
    }
    t->chunk = chunk.index;
    wf->partial[chunk.index] = t;
    memcpy(out[0], &t, sizeof t);
    return 0;
}

/* merge (SINK, one firing at a time): folds a table into the total, then
 * puts the emptied table into the pool (or frees it if the pool is full). */
static int merge_fn(void *state, const void *const *in, void *const *out)
{
    (void)out;
    struct wordfreq *wf = state;
    struct table *t;
    memcpy(&t, in[0], sizeof t);
    int err = table_fold(wf->total, t);
    if (err)
        return err; /* t stays in partial[] for the app to free */
    wf->partial[t->chunk] = NULL;
    if (weft_chan_send(wf->pool, &t, sizeof t, 0) != 0)
        table_destroy(t);
    return 0;
}

/* Builds read -> count -> merge into g, with count firing up to workers
 * times at once. Each edge holds 2 * workers values, enough to keep every
 * firing of count busy while merge catches up. Stores merge's index in
 * *merge. Returns 0 or a weft error. */
static int build_graph(weft_graph g, struct wordfreq *wf, unsigned workers, weft_node *merge)
{
    weft_node_spec read = {
        .name = "read", .kind = WEFT_NODE_SOURCE, .outputs = 1,
        .out_size = {sizeof(struct chunk)}, .fn = read_fn, .state = wf,
    };
    weft_node_spec count = {
        .name = "count", .kind = WEFT_NODE_MAP, .inputs = 1, .outputs = 1,
        .in_size = {sizeof(struct chunk)}, .out_size = {sizeof(struct table *)},
        .fn = count_fn, .state = wf, .parallel = workers, .ordered = 0,
    };
    weft_node_spec sink = {
        .name = "merge", .kind = WEFT_NODE_SINK, .inputs = 1,
        .in_size = {sizeof(struct table *)}, .fn = merge_fn, .state = wf,
    };
    weft_node r, c;
    int err = weft_graph_add(g, &read, &r);
    if (!err)
        err = weft_graph_add(g, &count, &c);
    if (!err)
        err = weft_graph_add(g, &sink, merge);
    if (!err)
        err = weft_graph_connect(g, r, 0, c, 0, 2 * (size_t)workers);
    if (!err)
        err = weft_graph_connect(g, c, 0, *merge, 0, 2 * (size_t)workers);
    return err;
}

/* Frees the tables left in the pool, then the pool. */
static int pool_destroy(weft_chan pool)
{
    struct table *t;
    while (weft_chan_recv(pool, &t, sizeof t, 0) == 0)
        table_destroy(t);
    return weft_chan_release(pool);
}

/* Runs the graph over wf's corpus, filling wf->total. Returns 0 or the
 * error that ended the run (printed, with the failed node's name). */
static int count_graph(struct wordfreq *wf, unsigned workers)
{
    /* Tables exist only while in count's firings (workers), in the edge to
     * merge (2 * workers), in merge (1) or in the pool: a pool of this size
     * takes back every table. */
    int err = weft_chan_make(&wf->pool, sizeof(struct table *), 3 * (size_t)workers + 1);
    if (err)
        return err;
    weft_graph g;
    err = weft_graph_make(&g, "wordfreq");
    if (err) {
        pool_destroy(wf->pool);
        return err;
    }
    weft_node merge;
    err = build_graph(g, wf, workers, &merge);
    if (err)
        goto out;
    err = weft_graph_run(g, WEFT_FOREVER);
    if (err)
        goto out;
    /* The merge is the last to finish: once it has, the total is complete.
     * weft_graph_wait then returns the run's result once all is over. */
    int merged = weft_graph_wait_node(g, merge, WEFT_FOREVER);
    err = weft_graph_wait(g, WEFT_FOREVER);
    if (!err && merged)
        err = merged;
    if (err) {
        weft_graph_stats st;
        if (weft_graph_get_stats(g, &st) == 0)
            fprintf(stderr, "wordfreq: the run failed in node '%s': %s\n", st.failed_name,
                    weft_strerror(err));
    }
out:;
    int rerr = weft_graph_release(g);
    int perr = pool_destroy(wf->pool);
    return err ? err : rerr ? rerr : perr;
}

/* ---- Results ------------------------------------------------------------------- */

/* Most frequent first; equal counts in alphabetical order. */
static int by_count(const void *a, const void *b)
{
    const struct entry *x = *(const struct entry *const *)a;
    const struct entry *y = *(const struct entry *const *)b;
    if (x->count != y->count)
        return x->count < y->count ? 1 : -1;
    uint32_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->word, y->word, n);
    return c ? c : (int)x->len - (int)y->len;
}

/* Prints the TOP most frequent words of t. Returns 0 or -ENOMEM. */
static int print_top(const struct table *t)
{
    const struct entry **all = malloc((t->used ? t->used : 1) * sizeof *all);
    if (!all)
        return -ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < t->cap; i++)
        if (t->slot[i].word)
            all[n++] = &t->slot[i];
    qsort(all, n, sizeof *all, by_count);
    printf("top %d of %zu distinct words:\n", TOP, n);
    for (size_t i = 0; i < n && i < TOP; i++)
        printf("  %2zu  %-8.*s %10" PRIu64 "\n", i + 1, (int)all[i]->len, all[i]->word,
               all[i]->count);
    free(all);
    return 0;
}

/* 0 if got holds exactly the counts of expect, else 1 (differences printed). */
static int compare(const struct table *got, const struct table *expect)
{
    int bad = 0;
    if (got->used != expect->used || got->words != expect->words) {
        fprintf(stderr, "wordfreq: %zu distinct words and %" PRIu64 " in all, expected %zu and %"
                PRIu64 "\n", got->used, got->words, expect->used, expect->words);
        bad = 1;
    }
    for (size_t i = 0; i < expect->cap; i++) {
        const struct entry *e = &expect->slot[i];
        if (!e->word)
            continue;
        const struct entry *g = table_slot(got, e->word, e->len, e->hash);
        uint64_t n = g->word ? g->count : 0;
        if (n != e->count) {
            if (bad++ < 5)
                fprintf(stderr, "wordfreq: '%.*s' counted %" PRIu64 " times, expected %" PRIu64
                        "\n", (int)e->len, e->word, n, e->count);
        }
    }
    return bad != 0;
}

/* Counts the corpus sequentially into a new table: *out, or NULL on
 * failure (-ENOMEM). */
static int count_sequential(const struct corpus *c, struct table **out)
{
    struct table *t = table_create(TOTAL_SLOTS);
    int err = t ? count_words(t, c->text, c->len) : -ENOMEM;
    if (err) {
        table_destroy(t);
        t = NULL;
    }
    *out = t;
    return err;
}

static void print_result(const char *how, int workers, uint64_t words, int64_t ns)
{
    printf("wordfreq %s %d %" PRIu64 " %.3f %.2f\n", how, workers, words, ns / 1e9,
           words ? (double)ns / (double)words : 0.0);
}

/* app: the graph's count, timed, then the sequential one to check it.
 * Returns the exit status. */
static intptr_t app(void *arg)
{
    const struct corpus *c = arg;
    int workers = weft_workers();
    if (workers < 1)
        return 1;
    struct wordfreq wf = {.corpus = c, .max_chunks = max_chunks(c->len)};
    wf.partial = calloc((size_t)wf.max_chunks, sizeof *wf.partial);
    wf.total = table_create(TOTAL_SLOTS);
    struct table *expect = NULL;
    int status = 1;
    int64_t t0, ns;
    int err;
    if (!wf.partial || !wf.total) {
        fprintf(stderr, "wordfreq: out of memory\n");
        goto out;
    }

    t0 = weft_now();
    err = count_graph(&wf, (unsigned)workers);
    ns = weft_now() - t0;
    if (err) {
        fprintf(stderr, "wordfreq: graph: %s\n", weft_strerror(err));
        goto out;
    }
    if (print_top(wf.total) || count_sequential(c, &expect)) {
        fprintf(stderr, "wordfreq: out of memory\n");
        goto out;
    }
    status = compare(wf.total, expect);
    if (wf.total->words != c->words) {
        fprintf(stderr, "wordfreq: %" PRIu64 " words counted, %" PRIu64 " written\n",
                wf.total->words, c->words);
        status = 1;
    }
    printf("%ld chunks counted by up to %d firings at once, merged: %s\n", wf.chunks, workers,
           status ? "DIFFERENT from the sequential count" : "equal to the sequential count");
    print_result("weft", workers, wf.total->words, ns);
out:
    if (wf.partial)
        for (long i = 0; i < wf.max_chunks; i++)
            table_destroy(wf.partial[i]); /* only those a failed run left behind */
    free(wf.partial);
    table_destroy(wf.total);
    table_destroy(expect);
    return status;
}

/* --sequential: the count alone, without a runtime. Returns the exit status. */
static int run_sequential(const struct corpus *c)
{
    struct table *t;
    int64_t t0 = weft_now();
    int err = count_sequential(c, &t);
    int64_t ns = weft_now() - t0;
    if (err || print_top(t)) {
        fprintf(stderr, "wordfreq: out of memory\n");
        table_destroy(t);
        return 1;
    }
    int status = t->words != c->words;
    print_result("sequential", 1, t->words, ns);
    table_destroy(t);
    return status;
}

int main(int argc, char **argv)
{
    weft_config cfg;
    weft_config_init(&cfg);
    long mb = 64;
    int sequential = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--workers") == 0)
            cfg.workers = (unsigned)option_value(argc, argv, &i, 0, WEFT_WORKERS_MAX);
        else if (strcmp(argv[i], "--mb") == 0)
            mb = option_value(argc, argv, &i, 1, 4095);
        else if (strcmp(argv[i], "--sequential") == 0)
            sequential = 1;
        else {
            fprintf(stderr, "usage: %s [--workers W] [--mb M] [--sequential]\n", argv[0]);
            return 2;
        }
    }

    struct corpus c;
    int64_t t0 = weft_now();
    if (corpus_make(&c, (size_t)mb << 20)) {
        fprintf(stderr, "wordfreq: out of memory for %ld MiB of text\n", mb);
        return 1;
    }
    printf("corpus: %ld MiB, %" PRIu64 " words of a %d-word vocabulary, made in %.2f s\n", mb,
           c.words, VOCAB, (weft_now() - t0) / 1e9);

    int status;
    if (sequential) {
        status = run_sequential(&c);
    } else {
        intptr_t r = 1;
        int err = weft_run(app, &c, &cfg, &r);
        if (err)
            fprintf(stderr, "wordfreq: weft_run: %s\n", weft_strerror(err));
        status = err ? 1 : (int)r;
    }
    free(c.text);
    return status;
}
