/* options.h: the command-line parsing the examples share. */
#ifndef WEFT_EXAMPLES_OPTIONS_H
#define WEFT_EXAMPLES_OPTIONS_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

/* Parses the value of a numeric option; exits with a message if it is bad. */
static inline long option_value(int argc, char **argv, int *i, long min, long max)
{
    const char *flag = argv[*i];
    if (*i + 1 >= argc) {
        fprintf(stderr, "%s needs a value\n", flag);
        exit(2);
    }
    char *end;
    errno = 0;
    long v = strtol(argv[++*i], &end, 10);
    if (errno || *end || end == argv[*i] || v < min || v > max) {
        fprintf(stderr, "%s: expected a number in %ld..%ld\n", flag, min, max);
        exit(2);
    }
    return v;
}

#endif
