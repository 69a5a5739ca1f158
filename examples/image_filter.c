/* image_filter.c: a blur and a threshold over a generated grey image, band
 * by band, through a dataflow graph whose stages keep the bands in order.
 *
 * The graph (weft_graph_*):
 *
 *   bands --band--> blur --band--> threshold --band--> store
 *   SOURCE          MAP            MAP                 SINK
 *                   parallel W,    parallel W,
 *                   ordered        ordered
 *
 *  - bands emits the image's bands of rows in order: band i covers rows
 *    i*R .. i*R+R-1 (R = --band). A band value is its index and a pointer to
 *    its rows in the working image.
 *  - blur (a 3x3 box blur) computes the band's rows of the working image from
 *    the input image, reading one row above and one below the band. The
 *    input never changes during the run and the firings write disjoint rows,
 *    so W firings run at once without locks.
 *  - threshold turns the band's blurred rows into black and white, in place.
 *  - store copies each band into the output image, and checks that the
 *    bands come in order 0, 1, 2, ... (both maps are ordered: however their
 *    parallel firings finish, each hands its results on in the order of its
 *    inputs). A band out of order fails store with -EILSEQ, which cancels
 *    the run.
 * The output is then compared with the same filters applied sequentially.
 *
 * Usage: example-image_filter [--size N] [--band R] [--workers W] [--dot]
 *   --size N     the image is N x N pixels (default 4096)
 *   --band R     rows per band (default 32)
 *   --workers W  runtime workers, and firings of each map at once (0: one per CPU)
 *   --dot        print the graph in Graphviz DOT and exit (try: | dot -Tsvg)
 * Exits 0 only when the graph's output equals the sequential one. */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weft.h"
#include "options.h"

enum { LEVEL = 128 }; /* threshold: blurred pixels at or above it turn white */

struct image {
    int width, height;
    uint8_t *px; /* height rows of width pixels */
};

/* Allocates a size x size image and writes every pixel once, so that the
 * kernel's first-touch page faults happen here and not inside the timings.
 * (Mid grey, not 0: the compiler may turn malloc and a zero memset into
 * calloc, which leaves fresh pages untouched.) false: no memory. */
static int image_init(struct image *img, int size)
{
    img->width = img->height = size;
    img->px = malloc((size_t)size * size);
    if (!img->px)
        return 0;
    memset(img->px, 128, (size_t)size * size);
    return 1;
}

/* ---- The filters, shared by the graph and the sequential check ------------------ */

/* Blurs rows y0..y1-1 of in into the same rows of out: each pixel becomes
 * the rounded mean of the 3x3 square around it, with the image's edge
 * repeated beyond it. Reads rows y0-1..y1 of in. */
static void blur_rows(const struct image *in, struct image *out, int y0, int y1)
{
    int w = in->width;
    for (int y = y0; y < y1; y++) {
        const uint8_t *up = in->px + (size_t)(y > 0 ? y - 1 : 0) * w;
        const uint8_t *row = in->px + (size_t)y * w;
        const uint8_t *down = in->px + (size_t)(y + 1 < in->height ? y + 1 : y) * w;
        uint8_t *dst = out->px + (size_t)y * w;
        /* Column sums, slid along the row: left, here, right. */
        unsigned left = (unsigned)up[0] + row[0] + down[0], here = left;
        for (int x = 0; x < w; x++) {
            unsigned right = x + 1 < w ? (unsigned)up[x + 1] + row[x + 1] + down[x + 1] : here;
            dst[x] = (uint8_t)((left + here + right + 4) / 9);
            left = here;
            here = right;
        }
    }
}

/* Turns rows y0..y1-1 of img into 0 (below LEVEL) and 255, in place. */
static void threshold_rows(struct image *img, int y0, int y1)
{
    uint8_t *p = img->px + (size_t)y0 * img->width;
    size_t n = (size_t)(y1 - y0) * img->width;
    for (size_t i = 0; i < n; i++)
        p[i] = p[i] >= LEVEL ? 255 : 0;
}

/* xorshift64*: the image's noise. */
static uint64_t next_random(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1Dull;
}

/* Draws the input: a checkerboard of 64-pixel squares, grey 96 and 160,
 * under noise of +-48 that the blur mostly evens out, so the threshold
 * brings the squares back with ragged edges. */
static void draw(struct image *img)
{
    uint64_t rng = 0x1a2b3c4d5e6f7788ull;
    for (int y = 0; y < img->height; y++)
        for (int x = 0; x < img->width; x++) {
            int base = ((x >> 6) + (y >> 6)) & 1 ? 160 : 96;
            int noise = (int)(next_random(&rng) >> 57) - 64; /* -64..63 */
            int v = base + noise * 3 / 4;
            img->px[(size_t)y * img->width + x] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
}

/* FNV-1a over the pixels: the checksum printed for both outputs. */
static uint64_t checksum(const struct image *img)
{
    uint64_t h = 0xcbf29ce484222325ull;
    size_t n = (size_t)img->width * img->height;
    for (size_t i = 0; i < n; i++)
        h = (h ^ img->px[i]) * 0x100000001b3ull;
    return h;
}

/* ---- The graph's nodes --------------------------------------------------------- */

/* What flows along every edge: one band. */
struct band {
    long index;   /* 0, 1, 2, ...: rows index*rows .. */
    uint8_t *px;  /* its first row in the working image */
};

/* The images and counters the nodes share. Firings of blur and threshold
 * only read the fields set before the run and write their own band's rows;
 * bands' and store's counters belong to those nodes (one firing at a time). */
struct filter {
    struct image in;    /* the generated image, read-only during the run */
    struct image work;  /* blurred, then thresholded, band by band */
    struct image out;   /* store's copy */
    int rows;           /* rows per band */
    long bands;         /* bands in the image */
    long next_band;     /* bands: the next to emit */
    long stored;        /* store: bands stored so far, i.e. the next expected */
};

static int band_first_row(const struct filter *f, long index)
{
    return (int)(index * f->rows);
}

static int band_end_row(const struct filter *f, long index)
{
    long end = (index + 1) * f->rows;
    return end < f->in.height ? (int)end : f->in.height;
}

/* bands (SOURCE): emits band 0, 1, ..., then ends. */
static int bands_fn(void *state, const void *const *in, void *const *out)
{
    (void)in;
    struct filter *f = state;
    if (f->next_band == f->bands)
        return WEFT_NODE_END;
    struct band b = {f->next_band, f->work.px + (size_t)band_first_row(f, f->next_band) *
                                                    f->work.width};
    f->next_band++;
    memcpy(out[0], &b, sizeof b);
    return 0;
}

/* blur (MAP, parallel): blurs the band into the working image; passes the
 * band on. */
static int blur_fn(void *state, const void *const *in, void *const *out)
{
    struct filter *f = state;
    const struct band *b = in[0];
    blur_rows(&f->in, &f->work, band_first_row(f, b->index), band_end_row(f, b->index));
    memcpy(out[0], b, sizeof *b);
    return 0;
}

/* threshold (MAP, parallel): thresholds the band's rows; passes it on. */
static int threshold_fn(void *state, const void *const *in, void *const *out)
{
    struct filter *f = state;
    const struct band *b = in[0];
    threshold_rows(&f->work, band_first_row(f, b->index), band_end_row(f, b->index));
    memcpy(out[0], b, sizeof *b);
    return 0;
}

/* store (SINK): copies the band into the output; a band out of order fails
 * the node with -EILSEQ. */
static int store_fn(void *state, const void *const *in, void *const *out)
{
    (void)out;
    struct filter *f = state;
    const struct band *b = in[0];
    if (b->index != f->stored) {
        fprintf(stderr, "image_filter: band %ld arrived, expected band %ld\n", b->index,
                f->stored);
        return -EILSEQ;
    }
    int y0 = band_first_row(f, b->index), y1 = band_end_row(f, b->index);
    memcpy(f->out.px + (size_t)y0 * f->out.width, b->px, (size_t)(y1 - y0) * f->out.width);
    f->stored++;
    return 0;
}

/* Adds a one-input, one-output map of bands. */
static int add_map(weft_graph g, const char *name, weft_node_fn fn, struct filter *f,
                   unsigned parallel, weft_node *node)
{
    weft_node_spec spec = {
        .name = name, .kind = WEFT_NODE_MAP, .inputs = 1, .outputs = 1,
        .in_size = {sizeof(struct band)}, .out_size = {sizeof(struct band)},
        .fn = fn, .state = f, .parallel = parallel, .ordered = 1,
    };
    return weft_graph_add(g, &spec, node);
}

/* Builds bands -> blur -> threshold -> store into g, the maps firing up to
 * workers times at once. Each edge holds 2 * workers bands, so that every
 * firing of the next stage finds its input ready. Returns 0 or a weft error. */
static int build_graph(weft_graph g, struct filter *f, unsigned workers)
{
    weft_node_spec source = {
        .name = "bands", .kind = WEFT_NODE_SOURCE, .outputs = 1,
        .out_size = {sizeof(struct band)}, .fn = bands_fn, .state = f,
    };
    weft_node_spec sink = {
        .name = "store", .kind = WEFT_NODE_SINK, .inputs = 1,
        .in_size = {sizeof(struct band)}, .fn = store_fn, .state = f,
    };
    size_t cap = 2 * (size_t)workers;
    weft_node src, blur, thr, store;
    int err = weft_graph_add(g, &source, &src);
    if (!err)
        err = add_map(g, "blur", blur_fn, f, workers, &blur);
    if (!err)
        err = add_map(g, "threshold", threshold_fn, f, workers, &thr);
    if (!err)
        err = weft_graph_add(g, &sink, &store);
    if (!err)
        err = weft_graph_connect(g, src, 0, blur, 0, cap);
    if (!err)
        err = weft_graph_connect(g, blur, 0, thr, 0, cap);
    if (!err)
        err = weft_graph_connect(g, thr, 0, store, 0, cap);
    return err;
}

/* Prints g in Graphviz DOT on standard output. Returns 0 or a weft error. */
static int print_dot(weft_graph g)
{
    char why[160];
    int err = weft_graph_validate(g, why, sizeof why);
    if (err) {
        fprintf(stderr, "image_filter: invalid graph: %s\n", why);
        return err;
    }
    int len = weft_graph_dot(g, NULL, 0); /* the length, as snprintf */
    if (len < 0)
        return len;
    char *text = malloc((size_t)len + 1);
    if (!text)
        return -ENOMEM;
    err = weft_graph_dot(g, text, (size_t)len + 1);
    if (err >= 0) {
        fputs(text, stdout);
        err = 0;
    }
    free(text);
    return err;
}

/* Runs g to its end. Returns 0 or the error that ended the run. */
static int run_graph(weft_graph g)
{
    int err = weft_graph_run(g, WEFT_FOREVER);
    if (err)
        return err;
    err = weft_graph_wait(g, WEFT_FOREVER);
    if (err) {
        /* A node's error is a code of the node function's choosing (store's
         * -EILSEQ), which weft_strerror need not know: the C library's
         * strerror names every errno value. */
        weft_graph_stats st;
        if (weft_graph_get_stats(g, &st) == 0 && st.failed_node >= 0)
            fprintf(stderr, "image_filter: node '%s' failed: %s\n", st.failed_name,
                    strerror(-err));
    }
    return err;
}

struct options {
    int size, rows;
    int dot;
};

/* app: builds and runs the graph (or prints it), then checks the output
 * against the sequential filters. Returns the exit status. */
static intptr_t app(void *arg)
{
    const struct options *o = arg;
    int workers = weft_workers();
    if (workers < 1)
        return 1;
    size_t npx = (size_t)o->size * o->size;
    struct filter f = {.rows = o->rows, .bands = (o->size + o->rows - 1) / o->rows};
    struct image expect;
    int status = 1, made = 0;
    weft_graph g;
    int64_t t0, graph_ns, seq_ns;
    f.in.px = f.work.px = f.out.px = expect.px = NULL;
    int err = weft_graph_make(&g, "image_filter");
    if (err)
        goto out;
    made = 1;
    err = build_graph(g, &f, (unsigned)workers);
    if (err)
        goto out;
    if (o->dot) {
        err = print_dot(g);
        status = err != 0;
        goto out;
    }
    /* Each call runs only if the one before succeeded; what failed stays NULL. */
    err = -ENOMEM;
    if (!image_init(&f.in, o->size) || !image_init(&f.work, o->size) ||
        !image_init(&f.out, o->size) || !image_init(&expect, o->size))
        goto out;
    draw(&f.in);

    t0 = weft_now();
    err = run_graph(g);
    graph_ns = weft_now() - t0;
    if (err)
        goto out;

    t0 = weft_now();
    blur_rows(&f.in, &expect, 0, o->size);
    threshold_rows(&expect, 0, o->size);
    seq_ns = weft_now() - t0;
    uint64_t got = checksum(&f.out), want = checksum(&expect);
    int same = got == want && memcmp(f.out.px, expect.px, npx) == 0;
    printf("image %dx%d in %ld bands of %d rows, %ld stored in order\n", o->size, o->size,
           f.bands, o->rows, f.stored);
    printf("graph on %d worker(s): %.1f ms, sequential: %.1f ms\n", workers, graph_ns / 1e6,
           seq_ns / 1e6);
    printf("checksum %016" PRIx64 ", sequential %016" PRIx64 ": %s\n", got, want,
           same ? "equal" : "DIFFERENT");
    status = !same || f.stored != f.bands;
out:
    if (err)
        fprintf(stderr, "image_filter: %s\n", strerror(-err));
    if (made) {
        int rerr = weft_graph_release(g);
        if (rerr) {
            fprintf(stderr, "image_filter: weft_graph_release: %s\n", weft_strerror(rerr));
            status = 1;
        }
    }
    free(f.in.px);
    free(f.work.px);
    free(f.out.px);
    free(expect.px);
    return status;
}

int main(int argc, char **argv)
{
    weft_config cfg;
    weft_config_init(&cfg);
    struct options o = {.size = 4096, .rows = 32};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--size") == 0)
            o.size = (int)option_value(argc, argv, &i, 1, 32768);
        else if (strcmp(argv[i], "--band") == 0)
            o.rows = (int)option_value(argc, argv, &i, 1, 32768);
        else if (strcmp(argv[i], "--workers") == 0)
            cfg.workers = (unsigned)option_value(argc, argv, &i, 0, WEFT_WORKERS_MAX);
        else if (strcmp(argv[i], "--dot") == 0)
            o.dot = 1;
        else {
            fprintf(stderr, "usage: %s [--size N] [--band R] [--workers W] [--dot]\n", argv[0]);
            return 2;
        }
    }
    intptr_t status = 1;
    int err = weft_run(app, &o, &cfg, &status);
    if (err)
        fprintf(stderr, "image_filter: weft_run: %s\n", weft_strerror(err));
    return err ? 1 : (int)status;
}
