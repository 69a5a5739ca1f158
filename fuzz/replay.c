/* replay.c: runs fuzz inputs (files, or every file of a directory) through
 * the same interpreter as the fuzzer, without libFuzzer, so that the corpus
 * and the regression inputs run as ordinary tests in every build.
 * Usage: weft-fuzz-replay [-v|-vv] path...  A violation, or an input that
 * runs for a minute, aborts (naming the input); otherwise it prints how many
 * inputs ran and exits 0. */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "program.h"

static unsigned long ran;

enum { WATCHDOG_S = 60 }; /* one input runs in milliseconds: a hang is a bug */

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "\nfuzz: the input hangs (60 s): ";
    write(2, msg, sizeof msg - 1);
    if (fz_input_name)
        write(2, fz_input_name, strlen(fz_input_name));
    write(2, "\n", 1);
    abort();
}

static void replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(2);
    }
    static uint8_t buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    fz_input_name = path;
    if (fz_verbose)
        fprintf(stderr, "replay: %s (%zu bytes)\n", path, n);
    alarm(WATCHDOG_S);
    fz_run(buf, n);
    alarm(0);
    fz_input_name = NULL;
    ran++;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A directory's regular files, in name order (hidden and .md files skipped). */
static void replay_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        perror(dir);
        exit(2);
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t nl = strlen(e->d_name);
        if (e->d_name[0] == '.' || (nl > 3 && strcmp(e->d_name + nl - 3, ".md") == 0))
            continue; /* hidden files and notes are no inputs */
        if (n == cap && !(names = realloc(names, (cap = cap ? 2 * cap : 64) * sizeof *names)))
            abort();
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        if (!(names[n] = malloc(len)))
            abort();
        snprintf(names[n++], len, "%s/%s", dir, e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, by_name);
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        if (stat(names[i], &st) == 0 && S_ISREG(st.st_mode))
            replay_file(names[i]);
        free(names[i]);
    }
    free(names);
}

int main(int argc, char **argv)
{
    signal(SIGALRM, on_alarm);
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++)
        fz_verbose = strcmp(argv[i], "-vv") == 0 ? 2 : 1;
    if (i == argc) {
        fprintf(stderr, "usage: %s [-v|-vv] file-or-directory...\n", argv[0]);
        return 2;
    }
    for (; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            perror(argv[i]);
            return 2;
        }
        if (S_ISDIR(st.st_mode))
            replay_dir(argv[i]);
        else
            replay_file(argv[i]);
    }
    printf("replay: %lu inputs, every invariant held\n", ran);
    return 0;
}
